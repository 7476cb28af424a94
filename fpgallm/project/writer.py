"""Put a :class:`~fpgallm.project.plan.ProjectPlan` on disk, atomically.

The files are written into a temporary folder next to the target (same file system), then
the folder is renamed into place.  A non-empty target is refused unless ``force``; with
``force`` the old folder is moved aside, the new one renamed in, and the old one removed.
On any error -- also KeyboardInterrupt -- the temporary folder is removed, so a
half-written project is never left behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from fpgallm.errors import UserError
from fpgallm.project.plan import ProjectPlan


def check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"--out {out}: folder is not empty; use --force to replace it")


def _write_file(root: Path, rel: str, content: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
        return
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(content)


def write_project(plan: ProjectPlan, out: Path | str, force: bool = False) -> Path:
    """Write ``plan`` to ``out``; returns the folder.  All or nothing."""
    out = Path(out).absolute()
    check_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    old: Path | None = None
    try:
        for rel, text in plan.files.items():
            _write_file(tmp, rel, text)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "project")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "project").exists() and not out.exists():
            os.rename(old / "project", out)   # put the previous project back
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out
