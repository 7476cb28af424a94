"""cocotb performance runs for the matrix-engine benchmarks (not part of ``fpgallm test``).

``FPGALLM_PERF_JOBS`` holds a JSON list of shapes (GEMV ``[rows, cols]``, GEMM ``[m, k, n]``);
each runs with no stalls and its measured cycles go to the JSON file ``FPGALLM_PERF_OUT``.
"""

from __future__ import annotations

import json
import os

import cocotb

from fpgallm.sim.bench import params_from_env
from fpgallm.sim.stream import Pattern, np_rng_for


@cocotb.test()
async def perf_gemv(dut):
    from fpgallm.sim.tb import gemv as tb
    from fpgallm.units.gemv import GemvParams

    p = params_from_env(GemvParams)
    shapes = json.loads(os.environ["FPGALLM_PERF_JOBS"])
    rng = np_rng_for("perf")
    jobs = [tb.make_job(p, rng, r, c, False) for r, c in shapes]
    cyc = await tb.run_jobs(dut, p, jobs, Pattern.NONE, Pattern.NONE, "perf")
    with open(os.environ["FPGALLM_PERF_OUT"], "w") as fh:
        json.dump([{"shape": s, "cycles": c} for s, c in zip(shapes, cyc)], fh)


@cocotb.test()
async def perf_gemm(dut):
    from fpgallm.sim.tb import gemm as tb
    from fpgallm.units.gemm import GemmParams

    p = params_from_env(GemmParams)
    shapes = json.loads(os.environ["FPGALLM_PERF_JOBS"])
    rng = np_rng_for("perf")
    jobs = [tb.make_job(p, rng, m, k, n, False) for m, k, n in shapes]
    cyc = await tb.run_jobs(dut, p, jobs, Pattern.NONE, Pattern.NONE, "perf")
    with open(os.environ["FPGALLM_PERF_OUT"], "w") as fh:
        json.dump([{"shape": s, "cycles": c} for s, c in zip(shapes, cyc)], fh)
