"""``fpgallm test``: run the cocotb testbenches of the registered units."""

from __future__ import annotations

import sys
import time

from fpgallm import cli_args as A
from fpgallm.errors import UserError

NAME = "test"
HELP = "run the cocotb testbenches of the named units (all when none is named)"


def configure(p):
    p.add_argument("units", nargs="*", metavar="UNIT", help="unit names (see --list)")
    p.add_argument("--list", action="store_true", help="list the units and their parameter points")
    p.add_argument("--seed", type=A.int_in(0, 2**32 - 1, name="seed"), default=None,
                   help="cocotb random seed (printed when not given)")
    p.add_argument("--waves", action="store_true", help="dump FST waveforms into each run directory")
    p.add_argument("--point", action="append", default=None, metavar="LABEL",
                   help="only these parameter points (repeatable)")
    p.add_argument("--out", type=A.nonempty, default=None,
                   help="folder for run directories (default: a temp folder)")
    p.add_argument("--project", type=A.nonempty, default=None, metavar="DIR",
                   help="re-verify a project written by `fpgallm generate`: its engine RTL in Verilator "
                        "against the golden engine, token by token")
    p.add_argument("--prompt", type=A.text, default=None, help="--project: the prompt (default 'The cat')")
    p.add_argument("--tokens", type=A.positive_int, default=None,
                   help="--project: tokens to generate (default 8; the prompt and these fit the project's context)")
    p.add_argument("--board-top", action="store_true",
                   help="--project (open-source boards): simulate the whole board design -- board top, "
                        "engine, SDRAM controller, UART host bridge -- with an SDRAM model, through the "
                        "serial line only")


def run(args) -> int:
    from pathlib import Path
    import tempfile

    from fpgallm.sim.bench import benches, run_point
    from fpgallm.sim.runner import default_seed

    if args.project is not None:
        if args.units or args.list or args.point:
            raise UserError("--project takes no UNIT, --list or --point")
        return _run_project(args)
    if args.board_top:
        raise UserError("--board-top needs --project DIR")
    found = benches()
    if args.list:
        for name, bench in found.items():
            print(f"{name:16s} {bench.description}")
            for pt in bench.points:
                print(f"{'':16s}   {pt.label}")
        return 0
    names = args.units or list(found)
    unknown = [n for n in names if n not in found]
    if unknown:
        raise UserError(f"unknown unit {unknown[0]!r}; units: {', '.join(found)}")
    selected = {}
    for name in names:
        bench = found[name]
        points = bench.points
        if args.point:
            points = tuple(p for p in points if p.label in args.point)
            if not points:
                raise UserError(f"unit {name!r} has none of the points {args.point}; points: "
                                f"{', '.join(p.label for p in bench.points)}")
        selected[name] = points
    seed = default_seed() if args.seed is None else args.seed
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fpgallm-test-"))
    print(f"seed {seed} (replay with --seed {seed}); run directories under {out}")
    total = failed = 0
    for name, points in selected.items():
        bench = found[name]
        for pt in points:
            t0 = time.monotonic()
            report = run_point(bench, pt, seed=seed, waves=args.waves or None,
                               test_dir=out / name / pt.label,
                               log=lambda m: print(f"  {m}", flush=True))
            n_ok = sum(t.passed for t in report.tests)
            total += len(report.tests)
            failed += len(report.tests) - n_ok
            status = "PASS" if report.passed else "FAIL"
            print(f"{status} {name}[{pt.label}] {n_ok}/{len(report.tests)} tests "
                  f"({time.monotonic() - t0:.1f} s)", flush=True)
            for t in report.failures:
                print(f"     {t.name}: {t.message.splitlines()[0] if t.message else ''}")
    print(f"{total - failed} passed, {failed} failed")
    sys.stdout.flush()
    return 0 if failed == 0 and total > 0 else 1


def _run_project(args) -> int:
    from pathlib import Path

    from fpgallm.project import verify
    from fpgallm.sim.runner import default_seed

    tokens = verify.DEFAULT_TOKENS if args.tokens is None else args.tokens
    seed = default_seed() if args.seed is None else args.seed
    print(f"seed {seed} (replay with --seed {seed})", flush=True)
    t0 = time.monotonic()
    how = verify.verify_board_top if args.board_top else verify.verify_project
    check = how(Path(args.project), prompt=args.prompt or verify.DEFAULT_PROMPT,
                new_tokens=tokens, seed=seed, log=lambda m: print(f"  {m}", flush=True))
    took = time.monotonic() - t0
    what = "the board design (over its serial line)" if args.board_top else "the project's RTL"
    if check.passed:
        print(f"PASS {args.project}: {check.runs} program runs of {check.model} on {what} equal "
              f"the golden engine (logits and next tokens), {min(check.cycles)}..{max(check.cycles)} "
              f"cycles per run ({took:.1f} s)")
        return 0
    print(f"FAIL {args.project}: {check.mismatch or 'no run completed'} ({check.runs} runs matched first)")
    return 1
