"""A wheel (a non-editable install) carries everything fpgallm reads at run time: the board
files, the project templates, the simulation models, the estimator's data; and
``fpgallm.paths`` finds the data folders inside the installed package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fpgallm import paths

ROOT = Path(__file__).resolve().parents[1]
# what the wheel must carry: (folder in the checkout, glob, folder inside the wheel)
DATA = (("boards", "*.yaml", f"fpgallm/{paths.INSTALLED_BOARDS}"),
        ("rtl_templates", "*.j2", f"fpgallm/{paths.INSTALLED_TEMPLATES}"),
        ("rtl_templates/readme", "*.j2", f"fpgallm/{paths.INSTALLED_TEMPLATES}/readme"),
        ("sim/models", "*.v", "fpgallm/sim/models"),
        ("sim/tb", "*.py", "fpgallm/sim/tb"),
        ("fpgallm/hdl/sim_models", "*.v", "fpgallm/hdl/sim_models"),
        ("fpgallm/estimate/data", "*.json", "fpgallm/estimate/data"))


@pytest.mark.slow
def test_wheel_carries_the_data_folders(tmp_path):
    src = tmp_path / "src"      # build from a copy: setuptools writes build/ into the tree
    for name in ("fpgallm", "sim", "boards", "rtl_templates"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                        str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("fpgallm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pattern, inside in DATA:
        files = sorted((ROOT / folder).glob(pattern))
        assert files, folder
        missing = [f.name for f in files if f"{inside}/{f.name}" not in names]
        assert missing == [], f"{folder}: not in the wheel under {inside}: {missing}"


def test_data_folders_in_a_checkout_and_in_an_installed_package(tmp_path, monkeypatch):
    assert paths.BOARDS_DIR == ROOT / "boards" and paths.TEMPLATES_DIR == ROOT / "rtl_templates"
    site = tmp_path / "site-packages"           # an installed package: no pyproject.toml beside it
    (site / "boards").mkdir(parents=True)       # some other distribution's top-level "boards"
    monkeypatch.setattr(paths, "ROOT", site)
    monkeypatch.setattr(paths, "PACKAGE", site / "fpgallm")
    assert paths._data_dir("boards", paths.INSTALLED_BOARDS) == site / "fpgallm" / "board_files"
    assert paths._data_dir("rtl_templates", paths.INSTALLED_TEMPLATES) == site / "fpgallm" / "rtl_templates"
