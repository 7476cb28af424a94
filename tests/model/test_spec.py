import pytest

from fpgallm.model.spec import PRESETS, Architecture, ModelSpec, RopeStyle, WeightSource, preset


def _tiny(**kw):
    base = dict(name="t", arch=Architecture.LLAMA, n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, d_ffn=96,
                vocab_size=100, max_seq_len=32)
    base.update(kw)
    return ModelSpec(**base)


@pytest.mark.parametrize("field,value,msg", [
    ("n_layers", 0, "ModelSpec.n_layers=0: must be a positive integer"),
    ("d_model", 66, "ModelSpec.d_model=66: must be a multiple of n_heads=4"),
    ("n_kv_heads", 3, "ModelSpec.n_kv_heads=3: must divide n_heads=4"),
    ("norm_eps", 0.0, "ModelSpec.norm_eps=0.0: must be in (0, 1)"),
    ("rope_theta", 1.0, "ModelSpec.rope_theta=1.0: must be > 1"),
    ("arch", "llama", "ModelSpec.arch='llama': must be an Architecture (llama, gpt2)"),
    ("rope_style", "halves", "ModelSpec.rope_style='halves': must be a RopeStyle (halves, adjacent)"),
    ("eos_token_id", 100, "ModelSpec.eos_token_id=100: must be None or a token id in [0, 100)"),
    ("tied_embeddings", 1, "ModelSpec.tied_embeddings=1: must be a bool"),
])
def test_invalid_fields_are_named(field, value, msg):
    with pytest.raises(ValueError) as e:
        _tiny(**{field: value})
    assert str(e.value) == msg


def test_gpt2_needs_mha_and_llama_even_head_dim():
    with pytest.raises(ValueError, match=r"ModelSpec.n_kv_heads=2: must equal n_heads=4 for gpt2"):
        _tiny(arch=Architecture.GPT2)
    with pytest.raises(ValueError, match=r"odd head_dim=3"):
        _tiny(d_model=12)


def test_frozen_and_dict_round_trip():
    s = PRESETS["smollm2-135m"].spec
    with pytest.raises(Exception):
        s.d_model = 1
    assert ModelSpec.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown field 'hidden'"):
        ModelSpec.from_dict({**s.to_dict(), "hidden": 3})


def test_smollm2_preset_matches_the_published_shapes():
    p = preset("smollm2-135m")
    s = p.spec
    assert (s.n_layers, s.d_model, s.n_heads, s.n_kv_heads, s.d_ffn, s.vocab_size) == (30, 576, 9, 3, 1536, 49152)
    assert s.tied_embeddings and s.rope_theta == 100000.0 and s.head_dim == 64 and s.group_size == 3
    assert p.source is WeightSource.PACKAGE and s.rope_style is RopeStyle.ADJACENT


@pytest.mark.parametrize("name,params", [
    ("smollm2-135m", 134_515_008), ("gpt2", 124_439_808), ("gpt2-medium", 354_823_168),
    ("llama2-7b", 6_738_415_616), ("llama3-8b", 8_030_261_248), ("tinyllama-1.1b", 1_100_048_384),
])
def test_parameter_counts_match_the_published_models(name, params):
    assert PRESETS[name].spec.n_params == params


def test_presets_cover_both_families_and_tiny_ones_are_seeded():
    assert {p.spec.arch for p in PRESETS.values()} == set(Architecture)
    for n in ("tiny-llama", "tiny-gpt2"):
        assert PRESETS[n].source is WeightSource.SEEDED and PRESETS[n].seed is not None
    with pytest.raises(KeyError, match="unknown preset 'nope'; presets: tiny-llama, tiny-gpt2"):
        preset("nope")


def test_tensor_shapes_and_matrix_names():
    s = PRESETS["tiny-llama"].spec
    sh = s.tensor_shapes()
    assert sh["blk.1.attn_k.weight"] == (s.kv_dim, s.d_model) and sh["output.weight"] == (258, 128)
    assert "blk.0.ffn_gate.weight" in s.matrix_names() and "output.weight" in s.matrix_names()
    g = PRESETS["tiny-gpt2"].spec
    assert "output.weight" not in g.tensor_shapes() and "token_embd.weight" in g.matrix_names()
    assert g.tensor_shapes()["blk.0.attn_q.bias"] == (128,)
