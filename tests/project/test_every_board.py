"""Every board's default project: the planner's engine is the one whose ``fpgallm generate``
was measured (benchmarks/generate_boards.py: wall time and peak memory within 3 minutes and
4 GB on a 2-core machine), and the largest HBM board's engine is generated and linted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fpgallm.boards import all_boards, get_board
from fpgallm.engine import compiler as C
from fpgallm.estimate import perf as P
from fpgallm.estimate.engine_plan import NoEngineError
from fpgallm.estimate.estimator import engine_for_model
from fpgallm.hdl.emit import Emitted, params_dict
from fpgallm.model.load import load_model
from fpgallm.project import build
from fpgallm.project.engine_design import DEFAULT_CONTEXT
from fpgallm.project.verify import verify_project
from fpgallm.sim.runner import lint
from tests.benchutil import load_benchmark

bench = load_benchmark("generate_boards")
MEASURED_ALL = json.loads(bench.DATA.read_text())
MEASURED = MEASURED_ALL["tiny-llama"]
MODELS = ("tiny-llama", "smollm2-135m")


@pytest.fixture(scope="module", params=MODELS)
def model_formats(request):
    m = load_model(request.param)
    return m, C.model_weight_formats(m)


@pytest.mark.parametrize("board", sorted(all_boards()))
def test_default_engine_is_the_measured_one(board, model_formats):
    """The planner's engine at default knobs is the engine the benchmark generated on this
    board, within the bound (re-run the benchmark with --write when the planner changes)."""
    model, formats = model_formats
    row = MEASURED_ALL[model.spec.name][board]
    assert row["ok"] and row["seconds"] <= bench.MAX_SECONDS and row["peak_bytes"] <= bench.MAX_BYTES, row
    spec = model.spec
    b = get_board(board)
    try:
        params, _mem, _notes = engine_for_model(spec, b, formats, 1, min(DEFAULT_CONTEXT, spec.max_seq_len),
                                                P.Knobs())
    except NoEngineError:
        assert row["design"] != "engine", row
        return
    if row["design"] == "engine":
        assert params_dict(params) == row["params"]


@pytest.mark.slow
def test_largest_hbm_board_generates_and_lints(tmp_path):
    """U280 at default knobs (16 x 256-bit ports, the widest engine of any board): the
    project is written with the measured engine, its Verilog no larger than measured, and
    the whole design is ``verilator --lint-only -Wall`` clean (but for the file-name rule)."""
    res = build.generate("tiny-llama", get_board("u280"), tmp_path / "p")
    manifest = json.loads((res.out / "manifest.json").read_text())
    assert manifest["design"]["params"] == MEASURED["u280"]["params"]
    verilog = sorted((res.out / "rtl").glob("*.v"))
    assert sum(p.stat().st_size for p in verilog) <= MEASURED["u280"]["verilog_bytes"]
    top = f"rtl/{manifest['top']}.v"
    others = [s for s in manifest["sources"] if s != top]
    design = Emitted(top=manifest["top"], text=(res.out / top).read_text(), ports=())
    assert lint(design, extra_args=("-Wno-DECLFILENAME",),
                extra_sources=tuple((Path(s).name, (res.out / s).read_text()) for s in others)) == []


@pytest.mark.heavy
def test_default_u55c_project_runs_tokens_on_its_rtl(tmp_path, seed):
    """The default U55C project (16 x 256-bit HBM ports) re-verified as a user would with
    ``fpgallm test --project``: its own RTL in Verilator gives the golden engine's logits and
    tokens for a short prompt and two new tokens."""
    out = build.generate("tiny-llama", get_board("u55c"), tmp_path / "u55c").out
    check = verify_project(out, new_tokens=2, seed=seed)
    prompt = load_model("tiny-llama").tokenizer.encode("The cat")
    assert check.passed and check.runs == len(prompt) + 2 - 1, check
