"""Bad input never crashes: broken model files, tokenizers, manifests and values give one
line on stderr and exit 2; nothing is written."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from fpgallm.cli import main
from fpgallm.model.gguf_file import save_gguf
from fpgallm.model.hf_dir import save_hf
from fpgallm.model.load import load_preset
from fpgallm.model.npz_file import META, save_npz
from fpgallm.model.tokenizer import gguf_metadata


def _fails(capsys, argv) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one stderr line (returned)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, err
    return err.rstrip("\n")


@pytest.fixture(scope="module")
def tiny():
    return load_preset("tiny-llama")


@pytest.fixture
def hf(tmp_path, tiny):
    return save_hf(tiny, tmp_path / "hf")


def _rewrite_npz(src, dst, **changes):
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    np.savez(dst, **arrays)
    return dst


# --- tokenizers ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["{}", '{"model": 3}', "not json"])
def test_broken_hf_tokenizer_json(capsys, hf, text):
    (hf / "tokenizer.json").write_text(text)
    err = _fails(capsys, ["run", str(hf), "--prompt", "hi"])
    assert err.startswith(f"fpgallm run: error: {hf}: tokenizer.json: not a usable tokenizer (")
    # the estimator needs shapes only: the tokenizer is not read
    assert main(["estimate", str(hf), "--board", "kv260", "--json"]) == 0


def test_gguf_tokenizer_with_malformed_merges(capsys, tmp_path, tiny):
    meta = {**gguf_metadata(tiny.tokenizer), "tokenizer.ggml.merges": ["a b", "nospace"]}
    f = save_gguf(tiny, tmp_path / "m.gguf", tokenizer_meta=meta)
    assert _fails(capsys, ["run", str(f), "--prompt", "hi"]) == (
        f"fpgallm run: error: {f}: tokenizer.ggml.merges[1] = 'nospace' is not 'LEFT RIGHT'")
    assert main(["estimate", str(f), "--board", "kv260", "--json"]) == 0


def test_npz_with_garbage_tokenizer_json(capsys, tmp_path, tiny):
    good = save_npz(tiny, tmp_path / "good.npz")
    with np.load(good) as z:
        meta = json.loads(str(z[META]))
    meta["tokenizer"] = "{garbage"
    bad = _rewrite_npz(good, tmp_path / "bad.npz", **{META: np.array(json.dumps(meta))})
    err = _fails(capsys, ["run", str(bad), "--prompt", "hi"])
    assert err.startswith(f"fpgallm run: error: {bad}: tokenizer JSON: not a usable tokenizer (")
    assert main(["estimate", str(bad), "--board", "kv260", "--json"]) == 0


# --- files that are not what they claim ----------------------------------------------------

@pytest.mark.parametrize("text", ["[]", "3", '"x"'])
def test_hf_config_that_is_not_an_object(capsys, hf, text):
    (hf / "config.json").write_text(text)
    assert _fails(capsys, ["estimate", str(hf), "--board", "kv260"]) == (
        f'fpgallm estimate: error: {hf / "config.json"}: not a JSON object (a Hugging Face config is '
        '{"model_type": ..., ...})')


def test_truncated_gguf_says_so(capsys, tmp_path, tiny):
    whole = save_gguf(tiny, tmp_path / "whole.gguf").read_bytes()
    for cut in (len(whole) - 100, len(whole) // 2, 10):
        f = tmp_path / "cut.gguf"
        f.write_bytes(whole[:cut])
        err = _fails(capsys, ["run", str(f), "--prompt", "hi"])
        assert err.startswith(f"fpgallm run: error: {f}: truncated: at least "), err
        assert err.endswith(f" bytes expected, the file has {cut}"), err


def test_truncated_npz(capsys, tmp_path, tiny):
    whole = save_npz(tiny, tmp_path / "whole.npz").read_bytes()
    f = tmp_path / "cut.npz"
    f.write_bytes(whole[:len(whole) // 2])
    err = _fails(capsys, ["run", str(f), "--prompt", "hi"])
    assert err.startswith(f"fpgallm run: error: {f}: "), err


# --- NaN and Inf weights -------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused_at_load_time(capsys, tmp_path, tiny, hf, bad):
    name = "blk.0.ffn_up.weight"
    t = tiny.tensors[name].copy()
    t[1, 2] = bad
    want = f"model 'tiny-llama': tensor {name!r} holds NaN or Inf (first at index [1, 2]: {bad})"
    f = _rewrite_npz(save_npz(tiny, tmp_path / "m.npz"), tmp_path / "nan.npz", **{name: t})
    assert _fails(capsys, ["run", str(f), "--prompt", "hi"]) == f"fpgallm run: error: {f}: {want}"

    g = save_gguf(tiny, tmp_path / "n.gguf")       # then the tensor's bytes patched in place
    raw = bytearray(g.read_bytes())
    clean = tiny.tensors[name].astype(np.float32).tobytes()
    at = bytes(raw).find(clean)
    assert at > 0
    raw[at:at + len(clean)] = t.astype(np.float32).tobytes()
    g.write_bytes(bytes(raw))
    err = _fails(capsys, ["generate", str(g), "--board", "kv260", "--out", str(tmp_path / "p")])
    assert err == f"fpgallm generate: error: {g}: {want.replace('tiny-llama', 'n')}"
    assert not (tmp_path / "p").exists()

    st = hf / "model.safetensors"
    arrays = load_file(str(st))
    key = next(k for k, v in arrays.items() if v.shape == t.shape and np.array_equal(v, tiny.tensors[name]))
    arrays[key] = t
    save_file(arrays, str(st))
    err = _fails(capsys, ["estimate", str(hf), "--board", "kv260"])
    assert err == f"fpgallm estimate: error: {hf}: {want.replace('tiny-llama', 'hf')}"


# --- fpgallm test --project: the manifest is validated ------------------------------------

# The parts of an engine project's manifest.json that `fpgallm test --project` reads, as
# `fpgallm generate tiny-llama --board kv260` writes them with a small engine (generating
# the project takes most of a minute; the checks below stop before its RTL is needed).
MANIFEST = {
    "fpgallm": "0.1.0",
    "design": {"name": "engine", "top": "fpgallm_engine", "generator": "fpgallm.engine.rtl.top.Engine",
               "stand_in": False,
               "params": {"act_format": "int8", "batch": 1, "clock_mhz": 250.0, "gemv_lanes": 2,
                          "gemv_macs": 16, "kv_format": "int8", "max_context": 32, "max_dim": 128,
                          "max_ffn": 256, "max_head_dim": 32, "max_vocab": 258, "mem_bytes": 4294967296,
                          "mem_latency": 45, "mem_ports": 2, "port_width": 128, "prefetch_words": 0,
                          "vector_lanes": 2, "vregs": 8, "weight_formats": ["int8-group"]}},
    "engine": {"batch": 1, "context": 32, "memory": "ps_ddr", "model": "tiny-llama"},
}


def write_project(folder, manifest=MANIFEST):
    (folder / "sw").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


@pytest.fixture
def copy(tmp_path):
    return write_project(tmp_path / "p")


def test_the_stand_in_manifest_gets_as_far_as_the_images(capsys, copy):
    assert _fails(capsys, ["test", "--project", str(copy)]) == (
        f"fpgallm test: error: --project {copy}: sw/mem0.bin is missing")


def _set_manifest(p, change):
    man = json.loads((p / "manifest.json").read_text())
    change(man)
    (p / "manifest.json").write_text(json.dumps(man))


@pytest.mark.parametrize("text,msg", [
    ("{not json", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("{}", "design: missing, or not an object with a name and a top"),
    ("[]", "not a JSON object (not a manifest written by fpgallm generate)"),
    ('{"design": 3}', "design: missing, or not an object with a name and a top"),
    (b"\xff\xfe", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
])
def test_manifest_that_is_not_one(capsys, copy, text, msg):
    f = copy / "manifest.json"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert _fails(capsys, ["test", "--project", str(copy)]) == f"fpgallm test: error: {f}: {msg}"


@pytest.mark.parametrize("change,msg", [
    (lambda m: m["design"]["params"].update(gemv_lanes=0),
     "design.params: EngineParams.gemv_lanes must be an integer in [1, 1024], got 0"),
    (lambda m: m["design"]["params"].update(kv_format="int3"), "design.params: 'int3' is not a valid KVFormat"),
    (lambda m: m["design"]["params"].pop("weight_formats"), "design.params: weight_formats"),
    (lambda m: m["design"]["params"].update(bogus=1),
     "design.params: EngineParams.__init__() got an unexpected keyword argument 'bogus'"),
    (lambda m: m["design"].pop("params"), "design.params: missing or not an object"),
    (lambda m: m["engine"].update(context=0), "engine.context: must be an integer >= 1, got 0"),
    (lambda m: m["engine"].update(model=7), "engine.model: must be a model name or file, got 7"),
])
def test_manifest_with_impossible_engine(capsys, copy, change, msg):
    _set_manifest(copy, change)
    f = copy / "manifest.json"
    assert _fails(capsys, ["test", "--project", str(copy)]) == f"fpgallm test: error: {f}: {msg}"


def test_project_tokens_beyond_the_context_are_refused(capsys, copy):
    # 'The cat' is 8 tokens (byte-level, with the BOS); the project's context is 32
    assert _fails(capsys, ["test", "--project", str(copy), "--tokens", "1000"]) == (
        "fpgallm test: error: --tokens 1000: the prompt (8 tokens) and 1000 new tokens exceed the "
        "project's context of 32 tokens; at most 24 new tokens")


# --- noise and leftovers -------------------------------------------------------------------

INTERRUPT_DURING_GENERATE = """
import sys
from amaranth.hdl import Elaboratable, Module
from amaranth.hdl._ir import Fragment
from fpgallm.project import build

class U(Elaboratable):
    def elaborate(self, platform):
        return Module()

def interrupted(*a, **k):
    Fragment.get(U(), None)          # elaboration has started: unused ones would be warned about
    units = [U() for _ in range(10)]
    raise KeyboardInterrupt

build.make_plan = interrupted
from fpgallm.cli import main
sys.exit(main(["generate", "--out", sys.argv[1]]))
"""


def test_ctrl_c_during_generate_prints_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-c", INTERRUPT_DURING_GENERATE, str(tmp_path / "p")],
                       capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (130, "fpgallm generate: interrupted\n")
    assert list(tmp_path.iterdir()) == []


def test_full_disk_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "fpgallm", "boards", "show", "kv260"], stdout=full,
                           stderr=subprocess.PIPE, text=True)
    assert (r.returncode, r.stderr) == (2, "fpgallm boards: error: cannot write output: No space left on device\n")


def test_interrupted_report_leaves_nothing(tmp_path, monkeypatch, capsys):
    from fpgallm.estimate import report

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "tokens_per_j_plot", interrupted)    # after two plots are written
    assert main(["estimate", "tiny-llama", "--board", "kv260", "--report", str(tmp_path / "rep")]) == 130
    assert capsys.readouterr().err == "fpgallm estimate: interrupted\n"
    assert list(tmp_path.iterdir()) == []


def test_report_into_a_folder_of_ones_own_is_refused(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("mine")
    assert _fails(capsys, ["estimate", "tiny-llama", "--board", "kv260", "--report", str(tmp_path)]) == (
        f"fpgallm estimate: error: --report {tmp_path}: folder is not empty and holds no earlier report; "
        "name a new or empty folder")
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    rep = tmp_path / "rep"
    assert main(["estimate", "tiny-llama", "--board", "kv260", "--report", str(rep)]) == 0
    assert main(["estimate", "tiny-llama", "--board", "u280", "--report", str(rep)]) == 0   # replaced
    assert "u280" in (rep / "index.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt", "rep"]


def test_unknown_point_leaves_no_temporary_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    err = _fails(capsys, ["test", "elementwise", "--point", "nosuch"])
    assert err.startswith("fpgallm test: error: unit 'elementwise' has none of the points ['nosuch']; points: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,err", [
    (["estimate"], "fpgallm estimate: error: the following arguments are required: MODEL, --board "
                   "(see: fpgallm estimate --help)"),
    (["generate", "--batch", "0"], "fpgallm generate: error: argument --batch: must be in 1..8, got 0 "
                                   "(see: fpgallm generate --help)"),
    (["generate", "--context", "0"], "fpgallm generate: error: argument --context: must be >= 1, got 0 "
                                     "(see: fpgallm generate --help)"),
    (["generate", "--clock-mhz", "inf"], "fpgallm generate: error: argument --clock-mhz: must be a finite "
                                         "number, got inf (see: fpgallm generate --help)"),
    (["generate", "--clock-mhz", "1e9"], "fpgallm generate: error: argument --clock-mhz: must be in "
                                         "[1, 1000], got 1e+09 (see: fpgallm generate --help)"),
    (["test", "--project", "p", "--tokens", "0"], "fpgallm test: error: argument --tokens: must be >= 1, "
                                                  "got 0 (see: fpgallm test --help)"),
    (["nosuch"], "fpgallm: error: argument COMMAND: invalid choice: 'nosuch' (choose from 'doctor', "
                 "'models', 'boards', 'run', 'generate', 'test', 'estimate') (see: fpgallm --help)"),
])
def test_usage_errors_are_one_line(capsys, tmp_path, monkeypatch, argv, err):
    monkeypatch.chdir(tmp_path)
    assert _fails(capsys, argv) == err
    assert list(tmp_path.iterdir()) == []
