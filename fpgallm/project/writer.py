"""Put a :class:`~fpgallm.project.plan.ProjectPlan` on disk, atomically.

The files are written into a temporary folder next to the target (same file system), then
the folder is renamed into place (:func:`fpgallm.atomic.staged_folder`).  A non-empty
target is refused unless ``force``, and ``force`` only replaces an earlier fpgallm project (its ``manifest.json`` says so): the old
folder is moved aside, the new one renamed in, and the old one removed.  Any other folder
-- a user's own files, the current folder or one of its parents -- is refused before
anything is written.  On any error -- also KeyboardInterrupt -- the temporary folder is
removed, so a half-written project is never left behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fpgallm.atomic import staged_folder
from fpgallm.errors import UserError
from fpgallm.project.plan import MANIFEST, ProjectPlan


def is_project(folder: Path) -> bool:
    """Whether ``folder`` holds a project written by ``fpgallm generate`` (its manifest)."""
    try:
        man = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(man, dict) and "fpgallm" in man and isinstance(man.get("design"), dict)


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_target(out: Path, force: bool) -> None:
    """Refuse a target that cannot or must not be replaced, before any work is done."""
    if not str(out):
        raise UserError("--out: must not be empty")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    real, cwd = out.resolve(), Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        raise UserError(f"--out {out}: is the current folder or one of its parents, which a project "
                        "cannot replace; name a new folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise UserError(f"--out {out}: folder is not empty; use --force to replace it")
        if not is_project(out):
            raise UserError(f"--out {out}: folder is not an fpgallm project (no {MANIFEST} written by "
                            "fpgallm generate); --force only replaces a project or an empty folder")
    parent = _existing_ancestor(real.parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: cannot write in {parent}")


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
    check_target(Path(out), force)
    with staged_folder(Path(out), "--out", "the project") as tmp:
        for rel, text in plan.files.items():
            _write_file(tmp, rel, text)
    return Path(out).resolve()
