"""The board database: every board loads, key numbers, strict loader errors, the CLI."""

import json
import subprocess
import sys

import pytest
import yaml

from fpgallm.boards import Board, BoardError, all_boards, get_board, load_board
from fpgallm.cli import main
from fpgallm.errors import UserError
from fpgallm.paths import BOARDS_DIR

REQUIRED = ("u280", "u250", "u55c", "v80", "vcu128", "vck190", "zcu102", "zcu104", "kv260",
            "pynq-z2", "arty-a7-100t", "s10mx", "ulx3s", "icebreaker")


def test_every_required_board_loads():
    boards = all_boards()
    assert set(REQUIRED) <= set(boards)
    for b in boards.values():
        assert isinstance(b, Board)
        assert b.sources and all(s.strip() for s in b.sources)
        assert b.resources.dsp_type and b.memory
        assert b.power.device_static_w <= b.power.max_w


@pytest.mark.parametrize("name, gbps, dsp", [
    ("u280", 460.8 + 38.4, 9024), ("u55c", 460.8, 9024), ("u250", 76.8, 12288),
    ("v80", 819.2 + 25.6, 10848), ("vcu128", 460.8 + 19.2, 9024), ("s10mx", 512.0, 3960),
    ("ulx3s", 0.332, 156), ("icebreaker", 0.025, 8), ("arty-a7-100t", 2.67, 240),
])
def test_key_numbers(name, gbps, dsp):
    b = get_board(name)
    assert b.offchip_bandwidth_gbps() == pytest.approx(gbps)
    assert b.resources.dsp == dsp


def test_soc_boards_keep_ps_and_pl_memory_apart():
    zcu102 = get_board("zcu102")
    assert zcu102.offchip_bandwidth_gbps("ps") == pytest.approx(19.2)
    assert zcu102.offchip_bandwidth_gbps("pl") == pytest.approx(4.8)
    kv260 = get_board("kv260")
    assert kv260.memories("pl") == () and kv260.offchip_bandwidth_gbps("ps") == pytest.approx(19.2)


def test_shell_reserves_resources():
    u280 = get_board("u280")
    avail = u280.available
    assert avail["lut"] < u280.resources.lut and avail["uram"] == u280.resources.uram
    assert get_board("vcu128").available == get_board("vcu128").resources.counts()


def test_open_source_boards_have_pins():
    ulx3s = get_board("ulx3s")
    assert (ulx3s.clocks.reference.pin, ulx3s.clocks.reference.mhz) == ("G2", 25.0)
    assert len(ulx3s.io.leds) == 8
    ice = get_board("icebreaker")
    assert (ice.clocks.reference.pin, ice.clocks.reference.mhz) == ("35", 12.0)


def test_icebreaker_flash_is_read_only():
    ice = get_board("icebreaker")
    assert ice.offchip_capacity_bytes(writable_only=True) == 0
    assert ice.offchip_capacity_bytes() == 16 * 2**20


# --- strict loader: one line naming the file and the field ---------------------------------

def _write(tmp_path, mutate, name="ulx3s"):
    data = yaml.safe_load((BOARDS_DIR / f"{name}.yaml").read_text())
    mutate(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _error(path):
    with pytest.raises(BoardError) as exc:
        load_board(path)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_channels_zero(tmp_path):
    p = _write(tmp_path, lambda d: d["memory"]["sdram"].update(channels=0))
    assert _error(p) == f"{p}: memory.sdram.channels: must be > 0, got 0"


def test_negative_count(tmp_path):
    p = _write(tmp_path, lambda d: d["resources"].update(dsp=-1))
    assert _error(p) == f"{p}: resources.dsp: must be > 0, got -1"


def test_missing_field(tmp_path):
    p = _write(tmp_path, lambda d: d["power"].pop("max_w"))
    assert _error(p) == f"{p}: power.max_w: missing"


def test_unknown_key(tmp_path):
    p = _write(tmp_path, lambda d: d["resources"].update(luts=5))
    assert _error(p) == (f"{p}: resources.luts: unknown key; allowed: lut, lut_inputs, ff, dsp, "
                         "dsp_type, bram, bram_kbit, uram, uram_kbit, bram_type, uram_type")


def test_unknown_top_level_key(tmp_path):
    p = _write(tmp_path, lambda d: d.update(colour="red"))
    assert _error(p).startswith(f"{p}: colour: unknown key; allowed: name, title, vendor, ")


def test_wrong_type(tmp_path):
    p = _write(tmp_path, lambda d: d["resources"].update(lut="many"))
    assert _error(p) == f"{p}: resources.lut: must be an integer, got 'many'"


def test_peak_bandwidth_must_follow_from_channels(tmp_path):
    p = _write(tmp_path, lambda d: d["memory"]["sdram"].update(peak_gbps=3.32))
    assert _error(p) == (f"{p}: memory.sdram.peak_gbps: 3.32 GB/s does not follow from channels x "
                         "width_bits x rate_mtps = 0.332 GB/s (tolerance 5%)")


def test_name_must_match_file(tmp_path):
    p = _write(tmp_path, lambda d: d.update(name="other"))
    assert _error(p) == f"{p}: name: must match the file name 'ulx3s', got 'other'"


def test_shell_fraction(tmp_path):
    p = _write(tmp_path, lambda d: d["shell"]["reserved"].update(lut=1.5), name="u280")
    assert _error(p) == f"{p}: shell.reserved.lut: must be a fraction in [0, 1), got 1.5"


def test_idle_power_above_max(tmp_path):
    p = _write(tmp_path, lambda d: d["power"].update(board_idle_w=99))
    assert _error(p) == f"{p}: power.board_idle_w: 99 W exceeds power.max_w 2.5 W"


def test_toolchain_vendor_mismatch(tmp_path):
    p = _write(tmp_path, lambda d: d.update(toolchain="vivado"))
    assert _error(p) == f"{p}: toolchain: 'vivado' does not build for vendor 'lattice'"


def test_open_board_needs_clock_pin(tmp_path):
    p = _write(tmp_path, lambda d: d["clocks"]["reference"].pop("pin"))
    assert _error(p) == (f"{p}: clocks.reference.pin: missing (required for the "
                         "yosys-nextpnr-ecp5 board top)")


def test_duplicate_key_and_bad_yaml(tmp_path):
    p = tmp_path / "ulx3s.yaml"
    p.write_text("name: ulx3s\nname: again\n")
    assert _error(p) == f"{p}: line 2: invalid YAML: duplicate key 'name'"
    p.write_text("name: [ulx3s\n")
    assert _error(p).startswith(f"{p}: line ")


def test_board_files_in_repo_are_named_relative():
    with pytest.raises(UserError, match=r"^unknown board 'nope'; boards: arty-a7-100t, "):
        get_board("nope")
    assert get_board("u280").path == "boards/u280.yaml"


# --- CLI -----------------------------------------------------------------------------------

def test_cli_list(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in REQUIRED:
        assert f"\n{name} " in out
    assert "460.8" in out and "MULT18X18D" in out


def test_cli_show(capsys):
    assert main(["boards", "show", "u280"]) == 0
    out = capsys.readouterr().out
    assert "HBM2 8 GiB 32x64b @ 1800 MT/s = 460.8 GB/s (PL)" in out
    assert "DS963" in out and "available" in out


def test_cli_json(capsys):
    assert main(["boards", "show", "ulx3s", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["derived"]["offchip_bandwidth_gbps"] == 0.332
    assert data["memory"]["sdram"]["type"] == "SDRAM"


def test_cli_unknown_board_exit_2():
    out = subprocess.run([sys.executable, "-m", "fpgallm", "boards", "show", "nope"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    names = ", ".join(sorted(p.stem for p in BOARDS_DIR.glob("*.yaml")))
    assert out.stderr == (f"fpgallm boards: error: unknown board 'nope'; boards: {names} (or a path to a "
                          "board file, see: fpgallm boards show NAME --yaml)\n")


# --- users' own board files (--board PATH) -------------------------------------------------

def _own_board(tmp_path, mutate=None, name="myboard"):
    """A board file of one's own, made as docs/boards.md says: from the kv260 template."""
    text = (BOARDS_DIR / "kv260.yaml").read_text().replace("name: kv260", f"name: {name}", 1)
    data = yaml.safe_load(text)
    if mutate:
        mutate(data)
        text = yaml.safe_dump(data, sort_keys=False)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_show_yaml_is_the_board_file(capsys):
    assert main(["boards", "show", "kv260", "--yaml"]) == 0
    assert capsys.readouterr().out == (BOARDS_DIR / "kv260.yaml").read_text()


def test_own_board_file_everywhere(tmp_path, capsys):
    path = _own_board(tmp_path)
    assert main(["boards", "show", str(path)]) == 0
    assert capsys.readouterr().out.startswith("myboard: AMD Kria KV260")
    assert main(["boards", "show", str(path), "--yaml"]) == 0
    assert capsys.readouterr().out == path.read_text()
    assert main(["estimate", "tiny-llama", "--board", str(path), "--json"]) == 0
    mine = json.loads(capsys.readouterr().out)
    assert main(["estimate", "tiny-llama", "--board", "kv260", "--json"]) == 0
    builtin = json.loads(capsys.readouterr().out)
    assert mine["board"] == "myboard" and mine["tokens_per_s"] == builtin["tokens_per_s"]
    out = tmp_path / "p"
    assert main(["generate", "tiny-llama", "--board", str(path), "--design", "elementwise", "--lanes", "1",
                 "--out", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["board"]["name"] == "myboard" and man["board"]["file"] == str(path)


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d["resources"].update(luts=5), "resources.luts: unknown key; allowed: lut, lut_inputs, ff, "
                                              "dsp, dsp_type, bram, bram_kbit, uram, uram_kbit, bram_type, uram_type"),
    (lambda d: d["resources"].update(dsp=0), "resources.dsp: must be > 0, got 0"),
    (lambda d: d["resources"].update(ff=-3), "resources.ff: must be > 0, got -3"),
    (lambda d: d.pop("memory"), "memory: missing"),
])
def test_own_board_file_is_checked_like_the_built_in_ones(tmp_path, capsys, mutate, msg):
    path = _own_board(tmp_path, mutate)
    for argv in (["boards", "show", str(path)], ["estimate", "tiny-llama", "--board", str(path)],
                 ["generate", "--board", str(path), "--out", str(tmp_path / "p")]):
        assert main(argv) == 2
        out = capsys.readouterr()
        assert out.err == f"fpgallm {argv[0]}: error: {path}: {msg}\n"
    assert not (tmp_path / "p").exists()


def test_own_board_file_that_is_not_text_or_missing(tmp_path, capsys):
    path = tmp_path / "myboard.yaml"
    path.write_bytes(b"name: my\xffboard\n")
    assert main(["boards", "show", str(path)]) == 2
    assert capsys.readouterr().err == (f"fpgallm boards: error: {path}: not UTF-8 text (byte 0xff at "
                                       "position 8)\n")
    assert main(["estimate", "tiny-llama", "--board", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err == f"fpgallm estimate: error: board file {tmp_path / 'nope.yaml'}: no such file\n"
