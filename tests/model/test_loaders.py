import json

import gguf
import numpy as np
import pytest

from fpgallm.errors import UserError
from fpgallm.model.gguf_file import load_gguf, save_gguf
from fpgallm.model.hf_dir import load_hf, save_hf
from fpgallm.model.load import load_model, load_preset, seeded_weights
from fpgallm.model.model import Model, QuantizedModel, quantize_model
from fpgallm.model.npz_file import load_npz, save_npz
from fpgallm.model.quant import Q4_0, Q4_1, Q8_0, QuantTensor, int4_group
from fpgallm.model.reference import Reference
from fpgallm.model.spec import PRESETS, RopeStyle

IDS = [256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100]


def _logits(model):
    return Reference(model).logits(IDS)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_seeded_presets_are_reproducible(name):
    p = PRESETS[name]
    print(f"seed {p.seed}")
    a, b = seeded_weights(p.spec, p.seed), seeded_weights(p.spec, p.seed)
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert not np.array_equal(a["token_embd.weight"], seeded_weights(p.spec, p.seed + 1)["token_embd.weight"])


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_gguf_round_trip_float(name, tmp_path):
    m = load_preset(name)
    f = save_gguf(m, tmp_path / f"{name}.gguf")
    back = load_gguf(f)
    assert back.spec.replace(name=name, rope_style=m.spec.rope_style, bos_token_id=m.spec.bos_token_id,
                             eos_token_id=m.spec.eos_token_id) == m.spec
    if m.spec.arch.value == "llama":
        assert back.spec.rope_style is RopeStyle.ADJACENT
    np.testing.assert_allclose(_logits(back), _logits(m), rtol=0, atol=2e-5 * np.abs(_logits(m)).max())


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
@pytest.mark.parametrize("scheme", [Q8_0, Q4_0, Q4_1], ids=lambda s: s.name)
def test_gguf_keeps_quantized_tensors_as_stored(name, scheme, tmp_path):
    q = quantize_model(load_preset(name), scheme)
    back = load_gguf(save_gguf(q, tmp_path / "q.gguf"))
    assert back.storage_summary()[scheme.name] == len(q.spec.matrix_names())
    qm = QuantizedModel.from_model(back)
    rq = q.with_rope_style(back.spec.rope_style)
    for n in q.spec.matrix_names():
        a, b = qm.tensors[n], rq.tensors[n]
        assert isinstance(a, QuantTensor) and np.array_equal(a.to_gguf_bytes(), b.to_gguf_bytes()), n
    np.testing.assert_allclose(_logits(back), _logits(q), rtol=0, atol=2e-5 * np.abs(_logits(q)).max())


def test_rope_styles_give_the_same_logits():
    m = load_preset("tiny-llama")
    adj = m.with_rope_style(RopeStyle.ADJACENT)
    assert not np.array_equal(adj.tensors["blk.0.attn_q.weight"], m.tensors["blk.0.attn_q.weight"])
    np.testing.assert_allclose(_logits(adj), _logits(m), rtol=0, atol=1e-5 * np.abs(_logits(m)).max())
    back = adj.with_rope_style(RopeStyle.HALVES)
    assert np.array_equal(back.tensors["blk.1.attn_k.weight"], m.tensors["blk.1.attn_k.weight"])


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_hf_and_npz_round_trip(name, tmp_path):
    m = load_preset(name)
    hf = load_hf(save_hf(m, tmp_path / "hf"))
    assert hf.tokenizer is not None and hf.tokenizer.encode("hi") == m.tokenizer.encode("hi")
    assert np.array_equal(_logits(hf), _logits(m))
    q = quantize_model(m, int4_group(64, with_min=True))
    nz = load_npz(save_npz(q, tmp_path / "m.npz"))
    assert nz.spec == q.spec and nz.storage_summary() == q.storage_summary()
    assert np.array_equal(_logits(nz), _logits(q))
    assert load_model(str(tmp_path / "m.npz")).spec == q.spec
    assert load_model(str(tmp_path / "hf")).spec.name == "hf"


def test_model_checks_shapes():
    m = load_preset("tiny-llama")
    t = dict(m.tensors)
    t["blk.0.attn_k.weight"] = t["blk.0.attn_k.weight"][:-1]
    with pytest.raises(ValueError, match=r"tensor 'blk.0.attn_k.weight' has shape \(63, 128\), spec wants \(64, 128\)"):
        Model(m.spec, t)
    del t["blk.0.attn_k.weight"]
    with pytest.raises(ValueError, match="missing tensor 'blk.0.attn_k.weight'"):
        Model(m.spec, t)
    with pytest.raises(ValueError, match="matrix 'token_embd.weight' is not quantized"):
        QuantizedModel.from_model(m)


# ----- errors: one clear message naming the problem ------------------------------------------

def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(UserError, match=r"^no such file: .*nope\.gguf$"):
        load_model(str(tmp_path / "nope.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00garbage")
    with pytest.raises(UserError, match=r"bad\.gguf: truncated: at least 24 bytes expected, the file has 15$"):
        load_model(str(bad))
    notgguf = tmp_path / "text.gguf"
    notgguf.write_text("hello")
    with pytest.raises(UserError, match=r"text\.gguf: not a readable GGUF file"):
        load_model(str(notgguf))
    badnpz = tmp_path / "bad.npz"
    badnpz.write_bytes(b"PK\x03\x04 nope")
    with pytest.raises(UserError, match=r"bad\.npz: not a readable \.npz file"):
        load_model(str(badnpz))
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(UserError, match=r"plain\.npz: no __fpgallm__ entry"):
        load_model(str(tmp_path / "plain.npz"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty: no config\.json"):
        load_model(str(tmp_path / "empty"))
    (tmp_path / "x.bin").write_bytes(b"")
    with pytest.raises(UserError, match=r"unknown model file type '\.bin'"):
        load_model(str(tmp_path / "x.bin"))


def _write_gguf(path, arch, tensors):
    w = gguf.GGUFWriter(str(path), arch)
    w.add_uint32(f"{arch}.block_count", 1)
    for n, (data, raw) in tensors.items():
        w.add_tensor(n, data, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_unsupported_architecture_and_tensor_type(tmp_path):
    f = tmp_path / "qwen.gguf"
    _write_gguf(f, "qwen2", {"token_embd.weight": (np.zeros((4, 32), np.float32), None)})
    with pytest.raises(UserError, match=r"qwen\.gguf: unsupported architecture 'qwen2'; supported: llama, gpt2$"):
        load_gguf(f)
    g = tmp_path / "q5.gguf"
    raw = gguf.quants.quantize(np.ones((4, 32), np.float32), gguf.GGMLQuantizationType.Q5_0)
    _write_gguf(g, "llama", {"token_embd.weight": (raw, gguf.GGMLQuantizationType.Q5_0)})
    with pytest.raises(UserError, match=r"q5\.gguf: tensor 'token_embd.weight' has type Q5_0; "
                                        r"supported: F32, F16, Q8_0, Q4_0, Q4_1$"):
        load_gguf(g)


def test_unsupported_hf_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    with pytest.raises(UserError, match=r"unsupported model_type 'mamba'; supported: llama, gpt2$"):
        load_hf(tmp_path)


def test_gguf_carries_the_tokenizer(tmp_path):
    m = load_preset("tiny-llama")
    back = load_gguf(save_gguf(m, tmp_path / "t.gguf"))
    for text in ("Hello <|eos|>", "ünï"):
        assert back.tokenizer.encode(text) == m.tokenizer.encode(text)
        assert back.tokenizer.decode(back.tokenizer.encode(text)) == m.tokenizer.decode(m.tokenizer.encode(text))


def test_gguf_f16_tensors_stay_f16(tmp_path):
    m = load_preset("tiny-llama")
    half = Model(m.spec, {n: (t.astype(np.float16) if t.ndim == 2 else t) for n, t in m.tensors.items()},
                 m.tokenizer)
    back = load_gguf(save_gguf(half, tmp_path / "h.gguf"))
    assert back.storage_summary() == {"F16": len(m.spec.matrix_names()) + 0, "F32": 5}
    assert back.tensors["blk.0.ffn_up.weight"].dtype == np.float16
    np.testing.assert_allclose(_logits(back), _logits(half), rtol=0, atol=2e-5 * np.abs(_logits(half)).max())
