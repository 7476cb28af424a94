"""The ``fpgallm`` command line.

Each subcommand is a module in :mod:`fpgallm.commands` that defines ``NAME``, ``HELP``,
``configure(parser)`` and ``run(args) -> int``.  Modules are discovered, so a new
subcommand needs no change here.  :class:`~fpgallm.errors.UserError` becomes one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"fpgallm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fpgallm {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:         # stdout closed early (`fpgallm boards | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
