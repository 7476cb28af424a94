import numpy as np
import pytest
import gguf

from fpgallm.model.quant import (INT8_PER_CHANNEL, Q4_0, Q4_1, Q8_0, QuantScheme, QuantTensor, ScaleDType,
                                 fake_quant_activations_int8, int4_group, quantize, quantize_activations_int8)


def _weights(seed, rows=48, cols=256):
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    w[3] = 0.0                       # an all-zero row (scale 0)
    w[5, :32] = 7.5                  # a constant block
    w[6] *= 1e-3
    return w


@pytest.mark.parametrize("scheme", [Q8_0, Q4_0, Q4_1], ids=lambda s: s.name)
def test_gguf_schemes_match_gguf_py_bit_for_bit(scheme, seed):
    w = _weights(seed)
    t = quantize(w, scheme)
    ref = gguf.quants.quantize(w, scheme.gguf_type)
    assert np.array_equal(t.to_gguf_bytes(), ref)                         # same quantizer
    assert np.array_equal(t.dequantize(), gguf.quants.dequantize(ref, scheme.gguf_type))  # same dequantizer
    back = QuantTensor.from_gguf_bytes(ref, scheme.gguf_type)
    assert np.array_equal(back.to_gguf_bytes(), ref)                      # stored values round-trip
    assert np.array_equal(back.q, t.q) and np.array_equal(back.scale.view(np.uint16), t.scale.view(np.uint16))


def test_random_gguf_bytes_round_trip(seed):
    """Arbitrary block bytes (not produced by a quantizer) survive unpack + pack."""
    rng = np.random.default_rng(seed)
    for qt, size in ((gguf.GGMLQuantizationType.Q8_0, 34), (gguf.GGMLQuantizationType.Q4_0, 18),
                     (gguf.GGMLQuantizationType.Q4_1, 20)):
        raw = rng.integers(0, 256, size=(5, 4 * size), dtype=np.uint8)
        assert np.array_equal(QuantTensor.from_gguf_bytes(raw, qt).to_gguf_bytes(), raw)


@pytest.mark.parametrize("scheme", [INT8_PER_CHANNEL, int4_group(32), int4_group(64), int4_group(128),
                                    int4_group(32, True), int4_group(128, True), Q4_1, Q8_0],
                         ids=lambda s: s.name)
def test_quantization_error_is_within_half_a_step(scheme, seed):
    w = _weights(seed)
    t = quantize(w, scheme)
    assert t.q.min() >= scheme.qmin and t.q.max() <= scheme.qmax
    g = t.group
    err = np.abs(t.dequantize() - w).reshape(w.shape[0], -1, g)
    step = np.abs(t.scale.astype(np.float32))[:, :, None]   # Q4_0-style scales are negative
    # half a step, plus the rounding of the stored scale / minimum (f16) over the range
    slack = 0.5 * step + (2e-3 * np.abs(w).reshape(err.shape).max(axis=2, keepdims=True)
                          if scheme.scale_dtype is ScaleDType.F16 else 1e-6)
    if scheme.bits == 4 and not scheme.with_min:
        slack = slack + step      # ggml's Q4_0 rule maps the largest magnitude to -8, the other side clips at 7
    assert np.all(err <= slack)
    assert np.array_equal(t.dequantize()[3], np.zeros(w.shape[1], np.float32))


def test_int8_per_channel_has_one_scale_per_row(seed):
    w = _weights(seed)
    t = quantize(w, INT8_PER_CHANNEL)
    assert t.scale.shape == (w.shape[0], 1) and t.q.dtype == np.int8 and t.group == w.shape[1]
    assert np.allclose(t.scale[:, 0], np.abs(w).max(axis=1) / 127)
    assert INT8_PER_CHANNEL.name == "int8-ch-f32" and Q4_1.name == "Q4_1" and int4_group(64).name == "int4-g64-f32"


def test_take_rows_keeps_blocks(seed):
    w = _weights(seed)
    t = quantize(w, Q4_1)
    idx = np.array([7, 2, 2, 40])
    assert np.array_equal(t.take_rows(idx).dequantize(), t.dequantize()[idx])


def test_scheme_validation_names_field_and_value():
    with pytest.raises(ValueError, match=r"^QuantScheme.bits=3: must be 4 or 8$"):
        QuantScheme(3, 32)
    with pytest.raises(ValueError, match=r"^QuantScheme.group=48: must be 32, 64, 128 or None"):
        QuantScheme(4, 48)
    with pytest.raises(ValueError, match="not a multiple of the group 128"):
        quantize(np.zeros((2, 96), np.float32), int4_group(128))
    with pytest.raises(ValueError, match="QuantTensor.min: required for Q4_1"):
        QuantTensor(Q4_1, np.zeros((1, 32), np.uint8), np.zeros((1, 1), np.float16))


def test_activation_int8_per_vector(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 200)).astype(np.float32) * np.array([[1e-3], [1.0], [50.0]], np.float32)
    q, s = quantize_activations_int8(x)
    assert q.dtype == np.int8 and s.shape == (3, 1) and np.abs(q).max() == 127
    assert np.all(np.abs(fake_quant_activations_int8(x) - x) <= 0.5 * s + 1e-7 * np.abs(x))
    q0, s0 = quantize_activations_int8(np.zeros((1, 8), np.float32))
    assert not q0.any() and s0[0, 0] == 1
