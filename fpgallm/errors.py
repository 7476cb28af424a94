"""Errors a user can cause.  The CLI turns them into one line on stderr and exit 2."""

from __future__ import annotations

import contextlib
import zipfile


class UserError(Exception):
    """Bad input or a missing tool: the message names the problem and what is allowed."""


class ToolMissing(UserError):
    """A required external tool (C++ compiler, Verilator, Yosys ...) is not usable."""


# What the libraries that read users' files raise on bad content: the standard exceptions
# below, plus anything defined by these packages (safetensors' SafetensorError, yaml's
# YAMLError, ...).  Programming errors elsewhere (AttributeError, NameError ...) stay tracebacks.
LOADER_ERRORS = (ValueError, TypeError, KeyError, IndexError, OSError, EOFError, zipfile.BadZipFile,
                 OverflowError, MemoryError)
LOADER_LIBRARIES = ("safetensors", "gguf", "yaml", "numpy", "tokenizers", "json", "zlib")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type name."""
    text = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_loader_error(exc: BaseException) -> bool:
    return isinstance(exc, LOADER_ERRORS) or type(exc).__module__.split(".")[0] in LOADER_LIBRARIES


@contextlib.contextmanager
def reading(path, what: str = "", error: type[UserError] = UserError):
    """Turn what a library raises while reading ``path`` into ``error("PATH: [WHAT: ]problem")``.

    The one place where loaders' exceptions (gguf, safetensors, tokenizers, numpy, yaml,
    json) become user errors; a :class:`UserError` passes unchanged."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        if not is_loader_error(exc):
            raise
        raise error(f"{path}: {what + ': ' if what else ''}{first_line(exc)}") from None
