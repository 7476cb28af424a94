import subprocess
import sys

from fpgallm import __version__
from fpgallm.cli import main


def fpgallm(*args):
    return subprocess.run([sys.executable, "-m", "fpgallm", *args], capture_output=True, text=True)


def test_version():
    out = fpgallm("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"fpgallm {__version__}"


def test_help_lists_subcommands():
    out = fpgallm("--help")
    assert out.returncode == 0
    for cmd in ("doctor", "test"):
        assert f"    {cmd} " in out.stdout


def test_test_list_shows_registered_units(capsys):
    assert main(["test", "--list"]) == 0
    out = capsys.readouterr().out
    assert "elementwise" in out and "add-1lane" in out


def test_unknown_unit_is_exit_2_one_line():
    out = fpgallm("test", "nosuchunit")
    assert out.returncode == 2
    from fpgallm.sim.bench import benches

    assert out.stderr.strip().splitlines() == [
        f"fpgallm test: error: unknown unit 'nosuchunit'; units: {', '.join(benches())}"]
    assert "Traceback" not in out.stderr


def test_fpgallm_test_runs_one_point(tmp_path):
    out = fpgallm("test", "elementwise", "--point", "add-1lane", "--seed", "5", "--out", str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS elementwise[add-1lane] 12/12 tests" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "12 passed, 0 failed"
    assert "seed 5" in out.stdout


def test_doctor(tmp_path):
    out = fpgallm("doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    for tool in ("python", "amaranth", "cocotb", "verilator", "c++", "yosys", "nextpnr-ecp5",
                 "simulation"):
        assert f"ok   {tool}" in out.stdout


def test_output_cut_short_by_the_reader_is_not_an_error():
    """``fpgallm boards | head -1``: the reader closes the pipe; no traceback, status 0."""
    proc = subprocess.Popen([sys.executable, "-m", "fpgallm", "boards"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()                     # before the command has printed anything
    err = proc.stderr.read().decode()
    assert proc.wait() == 0, err
    assert err == ""
