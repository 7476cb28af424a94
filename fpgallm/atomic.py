"""Folders written all or nothing: projects (``generate``) and reports (``estimate --report``);
cache files written whole, under a lock shared by concurrent processes.

The files go into a temporary folder next to the target (same file system), which is then
renamed into place; a folder already there is moved aside first and removed afterwards.  On
any error -- also KeyboardInterrupt -- the temporary folder is removed and the previous
folder put back, so a half-written folder is never left behind.  Whether an existing
folder may be replaced is the caller's decision, made before any work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from fpgallm.errors import UserError


@contextlib.contextmanager
def staged_folder(out: Path, flag: str, what: str):
    """Yield an empty temporary folder; when the block succeeds it becomes ``out``.

    An :class:`OSError` (a full disk, a folder that cannot be renamed) becomes
    ``UserError("FLAG OUT: cannot write WHAT: reason")``."""
    out = Path(out).resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as exc:
        raise UserError(f"{flag} {out}: cannot write {what}: {exc.strerror or exc}") from None
    old: Path | None = None
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "previous")
        os.rename(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "previous").exists() and not out.exists():
            os.rename(old / "previous", out)   # put the previous folder back
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if isinstance(exc, OSError):
            raise UserError(f"{flag} {out}: cannot write {what}: {exc.strerror or exc}") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive lock on ``path`` (created if missing) for the block: concurrent
    processes (pytest-xdist workers) building the same cache entry wait for the first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole: into a temporary file beside it, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
