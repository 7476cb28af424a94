"""``fpgallm test``: run the cocotb testbenches of the registered units."""

from __future__ import annotations

import sys
import time

from fpgallm.errors import UserError

NAME = "test"
HELP = "run the cocotb testbenches of the named units (all when none is named)"


def configure(p):
    p.add_argument("units", nargs="*", metavar="UNIT", help="unit names (see --list)")
    p.add_argument("--list", action="store_true", help="list the units and their parameter points")
    p.add_argument("--seed", type=int, default=None, help="cocotb random seed (printed when not given)")
    p.add_argument("--waves", action="store_true", help="dump FST waveforms into each run directory")
    p.add_argument("--point", action="append", default=None, metavar="LABEL",
                   help="only these parameter points (repeatable)")
    p.add_argument("--out", default=None, help="folder for run directories (default: a temp folder)")


def run(args) -> int:
    from pathlib import Path
    import tempfile

    from fpgallm.sim.bench import benches, run_point
    from fpgallm.sim.runner import default_seed

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
    seed = default_seed() if args.seed is None else args.seed
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fpgallm-test-"))
    print(f"seed {seed} (replay with --seed {seed}); run directories under {out}")
    total = failed = 0
    for name in names:
        bench = found[name]
        points = bench.points
        if args.point:
            points = tuple(p for p in points if p.label in args.point)
            if not points:
                raise UserError(f"unit {name!r} has none of the points {args.point}; points: "
                                f"{', '.join(p.label for p in bench.points)}")
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
