"""``fpgallm doctor``: check that the whole pip-installed toolchain is present and works."""

from __future__ import annotations

import platform
import subprocess
import sys

from fpgallm.errors import ToolMissing

NAME = "doctor"
HELP = "check the toolchain (Python, Amaranth, Yosys, Verilator, cocotb, C++, nextpnr)"


def configure(p):
    p.add_argument("--no-sim", action="store_true", help="skip the build-and-run check")


def _check(label, fn, problems):
    try:
        value = fn()
        print(f"  ok   {label:14s} {value}")
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"  FAIL {label:14s} {first}")
        problems.append(f"{label}: {first}")


def run(args) -> int:
    from fpgallm import __version__
    from fpgallm import toolchain
    from fpgallm.sim import runner

    print(f"fpgallm {__version__}")
    problems: list[str] = []

    def amaranth_v():
        import amaranth

        return amaranth.__version__

    def cocotb_v():
        import cocotb

        return cocotb.__version__

    def cxx_v():
        cxx = runner.cxx_compiler()
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True)
        return out.stdout.splitlines()[0]

    _check("python", lambda: f"{platform.python_version()} ({sys.executable})", problems)
    _check("amaranth", amaranth_v, problems)
    _check("cocotb", cocotb_v, problems)
    _check("verilator", lambda: f"{runner.verilator_version()} at {runner.verilator_root()}", problems)
    _check("c++", cxx_v, problems)
    _check("yosys", lambda: toolchain.tool_version("yosys"), problems)
    _check("nextpnr-ecp5", lambda: toolchain.tool_version("nextpnr-ecp5"), problems)
    _check("yowasp cache", lambda: str(toolchain.yowasp_cache_dir()), problems)
    if not args.no_sim and not problems:
        def sim():
            from fpgallm.sim.bench import benches, run_point

            bench = benches()["elementwise"]
            report = run_point(bench, bench.points[0], seed=1, testcase="test_identity")
            if not report.passed:
                raise RuntimeError(f"tiny design failed: {report.failures[0].message[:200]}")
            return f"built and ran elementwise[{bench.points[0].label}] (cache {runner.cache_root()})"

        _check("simulation", sim, problems)
    if problems:
        raise ToolMissing("; ".join(problems))
    print("all good")
    return 0
