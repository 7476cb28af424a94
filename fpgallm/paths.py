"""Where the project's data folders live (boards/, rtl_templates/), and its build cache.

In a checkout (an editable install) they are the top-level folders beside ``fpgallm/``; a
wheel carries them inside the package as ``fpgallm/board_files`` and
``fpgallm/rtl_templates`` (pyproject.toml maps them).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


def _data_dir(checkout: str, installed: str) -> Path:
    top = ROOT / checkout
    in_checkout = (ROOT / "pyproject.toml").is_file() and top.is_dir()
    return top if in_checkout else PACKAGE / installed


INSTALLED_BOARDS = "board_files"          # the folders' names inside an installed package
INSTALLED_TEMPLATES = "rtl_templates"
BOARDS_DIR = _data_dir("boards", INSTALLED_BOARDS)
TEMPLATES_DIR = _data_dir("rtl_templates", INSTALLED_TEMPLATES)


def cache_root() -> Path:
    """The build cache (Verilator models, synthesis counts): ``$FPGALLM_CACHE`` or
    ``~/.cache/fpgallm``."""
    root = os.environ.get("FPGALLM_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "fpgallm"
