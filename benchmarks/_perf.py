"""Shared helper of the utilization benchmarks: run cocotb perf jobs on one parameter point."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from fpgallm.hdl.emit import params_dict
from fpgallm.sim import runner
from fpgallm.sim.bench import PARAMS_ENV


def measure(generate, params, testcase: str, shapes, seed: int = 1) -> list[dict]:
    """Build ``params`` (cached) and return ``[{"shape", "cycles"}]`` measured in Verilator."""
    bld = runner.build(generate(params))
    with tempfile.TemporaryDirectory(prefix="fpgallm-perf-") as tmp:
        out = Path(tmp) / "perf.json"
        env = {PARAMS_ENV: json.dumps(params_dict(params), sort_keys=True),
               "FPGALLM_PERF_JOBS": json.dumps(shapes), "FPGALLM_PERF_OUT": str(out)}
        rep = runner.run(bld, "fpgallm.sim.tb._perf", testcase=testcase, seed=seed, env=env,
                         test_dir=Path(tmp) / "run")
        if not rep.passed:
            raise SystemExit(f"{testcase} failed: {rep.failures[0].message[-2000:]}")
        return json.loads(out.read_text())
