"""The ``fpgallm`` command line.

Each subcommand is a module in :mod:`fpgallm.commands` that defines ``NAME``, ``HELP``,
``configure(parser)`` and ``run(args) -> int``.  Modules are discovered, so a new
subcommand needs no change here.  :class:`~fpgallm.errors.UserError` becomes one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import sys
import warnings
from collections.abc import Sequence

from fpgallm import __version__
from fpgallm.errors import UserError

# The design brief's order; discovered commands not listed here come after.
ORDER = ("doctor", "models", "boards", "run", "generate", "test", "estimate")


def _command_modules():
    import fpgallm.commands as pkg

    mods = [importlib.import_module(f"{pkg.__name__}.{info.name}")
            for info in pkgutil.iter_modules(pkg.__path__) if not info.name.startswith("_")]
    mods = [m for m in mods if hasattr(m, "NAME")]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(mods, key=lambda m: (rank.get(m.NAME, len(ORDER)), m.NAME))


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the message and where the help is, not the whole usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="fpgallm",
        description="Generate, verify and estimate FPGA accelerators for LLM inference.",
    )
    parser.add_argument("--version", action="version", version=f"fpgallm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:       # --help, --version, or a one-line usage error
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        rc = int(args._run(args) or 0)
        sys.stdout.flush()          # a write error (full disk) is reported here, not at exit
        return rc
    except UserError as exc:
        _quiet_warnings()
        print(f"fpgallm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _quiet_warnings()
        print(f"fpgallm {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:         # stdout closed early (`fpgallm boards | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
        return 0
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
            raise
        # stdout or an output file could not be written (`> /dev/full`, a full disk)
        _quiet_stdout()
        _quiet_warnings()
        print(f"fpgallm {args.command}: error: cannot write output: {exc.strerror}", file=sys.stderr)
        return 2


def _quiet_warnings() -> None:
    """After a stop, the one line is all: no warnings about work left half done (Amaranth's
    unused-elaboratable warnings when the objects are collected at exit, ...)."""
    warnings.simplefilter("ignore")


def _quiet_stdout() -> None:
    """Drop what is still buffered for a stdout that cannot be written (no second error at exit)."""
    try:
        sys.stdout.flush()
    except OSError:
        pass
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    raise SystemExit(main())
