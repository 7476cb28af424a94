"""The registry of unit testbenches behind ``fpgallm test`` and the pytest suite.

A testbench module in :mod:`fpgallm.sim.tb` defines ``BENCH = Bench(...)``: the unit's name,
a few named parameter points, the generator and the cocotb test functions (in the same
module).  Modules are discovered, so a new unit shows up in ``fpgallm test --list``
without touching the CLI.  Inside the simulator a testbench gets its Params back with
:func:`params_from_env`.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpgallm.hdl.emit import Emitted, params_dict, params_from_dict
from fpgallm.sim import runner

PARAMS_ENV = "FPGALLM_PARAMS"


@dataclass(frozen=True)
class Point:
    """One hardware parameter point of a bench, built once and stimulated many ways."""

    label: str
    params: Any


@dataclass(frozen=True)
class Bench:
    unit: str
    description: str
    points: tuple[Point, ...]
    generate: Callable[[Any], Emitted]
    test_module: str
    # optional: write input files into the run directory; returns simulator plusargs
    prepare: Callable[[Any, Path], tuple[str, ...]] | None = None

    def point(self, label: str) -> Point:
        for p in self.points:
            if p.label == label:
                return p
        raise KeyError(f"{self.unit} has no point {label!r}; points: "
                       f"{', '.join(p.label for p in self.points)}")


def benches() -> dict[str, Bench]:
    """Every registered bench by unit name, in name order."""
    import fpgallm.sim.tb as pkg

    found: dict[str, Bench] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for bench in getattr(mod, "BENCHES", ()) or ((mod.BENCH,) if hasattr(mod, "BENCH") else ()):
            found[bench.unit] = bench
    return dict(sorted(found.items()))


def params_from_env(cls: type) -> Any:
    """Inside a cocotb test: the Params the bench was built with."""
    return params_from_dict(cls, json.loads(os.environ[PARAMS_ENV]))


def run_point(bench: Bench, point: Point, *, seed: int | None = None, waves: bool | None = None,
              test_dir: Path | None = None, testcase=None, log=None) -> runner.RunReport:
    """Build ``point`` (cached) and run the bench's cocotb tests on it."""
    design = bench.generate(point.params)
    bld = runner.build(design, waves=waves, log=log)
    env = {PARAMS_ENV: json.dumps(params_dict(point.params), sort_keys=True)}
    plusargs: tuple[str, ...] = ()
    if bench.prepare is not None:
        import tempfile

        test_dir = Path(test_dir) if test_dir else Path(tempfile.mkdtemp(prefix="fpgallm-run-"))
        test_dir.mkdir(parents=True, exist_ok=True)
        plusargs = bench.prepare(point.params, test_dir)
    return runner.run(bld, bench.test_module, seed=seed, env=env, test_dir=test_dir,
                      testcase=testcase, waves=waves, plusargs=plusargs)
