"""The unit configurations the resource model is calibrated on, and the ones it is checked on.

``CALIBRATION``: synthesized by ``benchmarks/calibrate_resources.py`` (cell counts stored in
``fpgallm/estimate/data/resource_calibration.json``); the coefficients in
:mod:`fpgallm.estimate.resources` are fitted to them.  ``CHECK``: other configurations
(other lane counts, formats and sizes), synthesized by ``tests/estimate/test_resources.py``
and compared with the model; none of them is in ``CALIBRATION``.

Both are dictionaries ``key -> Params``; :func:`synth` synthesizes one (cached by
:func:`fpgallm.synth.synthesize`).
"""

from __future__ import annotations

import json
from pathlib import Path

from fpgallm.units.activation import ActivationKind, ActivationParams
from fpgallm.units.argmax import ArgmaxParams
from fpgallm.units.elementwise import ElementwiseOp, ElementwiseParams
from fpgallm.units.gemm import GemmParams, GemmWeights
from fpgallm.units.gemv import GemvParams
from fpgallm.units.norm import NormKind, NormParams
from fpgallm.units.quantize import QuantizeParams
from fpgallm.units.rope import RopeConvention, RopeParams
from fpgallm.units.softmax import SoftmaxParams
from fpgallm.units.weights import WeightFormat as F

DATA_FILE = Path(__file__).parent / "data" / "resource_calibration.json"

TARGETS = ("ecp5", "xcup")

ADD, MUL = ElementwiseOp.ADD, ElementwiseOp.MUL

CALIBRATION = {
    "elementwise-add-l2": ElementwiseParams(op=ADD, lanes=2),
    "elementwise-add-l8": ElementwiseParams(op=ADD, lanes=8),
    "elementwise-mul-l2": ElementwiseParams(op=MUL, lanes=2),
    "elementwise-mul-l8": ElementwiseParams(op=MUL, lanes=8),
    "activation-silu-l2": ActivationParams(kind=ActivationKind.SILU, lanes=2),
    "activation-silu-l8": ActivationParams(kind=ActivationKind.SILU, lanes=8),
    "argmax-l4": ArgmaxParams(lanes=4, in_width=16, max_length=65536),
    "argmax-l16": ArgmaxParams(lanes=16, in_width=16, max_length=65536),
    "quantize-l4": QuantizeParams(lanes=4),
    "quantize-l16": QuantizeParams(lanes=16),
    "norm-rms-l2": NormParams(kind=NormKind.RMS, lanes=2, max_len=576),
    "norm-rms-l8": NormParams(kind=NormKind.RMS, lanes=8, max_len=576),
    "norm-layer-l2": NormParams(kind=NormKind.LAYER, lanes=2, max_len=576),
    "norm-layer-l8": NormParams(kind=NormKind.LAYER, lanes=8, max_len=576),
    "softmax-l2": SoftmaxParams(lanes=2, max_length=1024),
    "softmax-l8": SoftmaxParams(lanes=8, max_length=1024),
    "rope-halves-l1": RopeParams(convention=RopeConvention.HALVES, lanes=1, head_dim=64),
    "rope-halves-l4": RopeParams(convention=RopeConvention.HALVES, lanes=4, head_dim=64),
    "gemm-2x2": GemmParams(rows=2, cols=2, max_k=64),
    "gemm-4x4": GemmParams(rows=4, cols=4, max_k=1024),
    "gemm-2x4-int4-pack": GemmParams(rows=2, cols=4, weights=GemmWeights.INT4, max_k=256,
                                     dsp_pack=True),
    "gemv-int8row-p2k4": GemvParams(fmt=F.INT8_ROW, lanes=2, word_bits=64, max_cols=64,
                                    max_rows=16),
    "gemv-int8row-p2k4-pack": GemvParams(fmt=F.INT8_ROW, lanes=2, word_bits=64, max_cols=64,
                                         max_rows=16, dsp_pack=True),
    "gemv-q4g32-p2k8": GemvParams(fmt=F.INT4_GROUP, group=32, lanes=2, word_bits=64,
                                  max_cols=64, max_rows=16),
    "gemv-q4g32-p2k8-pack": GemvParams(fmt=F.INT4_GROUP, group=32, lanes=2, word_bits=64,
                                       max_cols=64, max_rows=16, dsp_pack=True),
    "gemv-int8row-p4k8": GemvParams(fmt=F.INT8_ROW, lanes=4, word_bits=256, max_cols=1024,
                                    max_rows=1024),
    "gemv-q4g32-p4k16": GemvParams(fmt=F.INT4_GROUP, group=32, lanes=4, word_bits=256,
                                   max_cols=1024, max_rows=1024),
    "gemv-q4min-g32-p4k8": GemvParams(fmt=F.INT4_GROUP_MIN, group=32, lanes=4, word_bits=128,
                                      max_cols=1024, max_rows=1024),
    "gemv-q8g32-p8k4-pack": GemvParams(fmt=F.INT8_GROUP, group=32, lanes=8, word_bits=256,
                                       max_cols=1024, max_rows=1024, dsp_pack=True),
    "gemv-q4min-g32-p2k16-pack": GemvParams(fmt=F.INT4_GROUP_MIN, group=32, lanes=2,
                                            word_bits=128, max_cols=1024, max_rows=1024,
                                            dsp_pack=True),
}

CHECK = {
    "elementwise-add-l4": ElementwiseParams(op=ADD, lanes=4),
    "elementwise-mul-l4": ElementwiseParams(op=MUL, lanes=4),
    "norm-layer-l4": NormParams(kind=NormKind.LAYER, lanes=4, max_len=1024),
    "activation-gelu-l4": ActivationParams(kind=ActivationKind.GELU_TANH, lanes=4),
    "argmax-l8": ArgmaxParams(lanes=8, in_width=16, max_length=65536),
    "quantize-l8": QuantizeParams(lanes=8),
    "norm-rms-l4": NormParams(kind=NormKind.RMS, lanes=4, max_len=576),
    "softmax-l4": SoftmaxParams(lanes=4, in_width=16, out_width=16, max_length=1024),
    "rope-halves-l2": RopeParams(convention=RopeConvention.HALVES, lanes=2, head_dim=64),
    "gemm-2x4": GemmParams(rows=2, cols=4, max_k=256),
    "gemm-4x8-int4-pack": GemmParams(rows=4, cols=8, weights=GemmWeights.INT4, max_k=2048,
                                     dsp_pack=True),
    "gemv-q4g32-p8k8": GemvParams(fmt=F.INT4_GROUP, group=32, lanes=8, word_bits=256,
                                  max_cols=2048, max_rows=2048),
    "gemv-int8row-p4k4-pack": GemvParams(fmt=F.INT8_ROW, lanes=4, word_bits=128, max_cols=512,
                                         max_rows=512, dsp_pack=True),
    # the two larger configurations of benchmarks/gemv_utilization.py
    "gemv-int8row-p8k8": GemvParams(fmt=F.INT8_ROW, lanes=8, word_bits=512, max_cols=2048,
                                    max_rows=2048),
    "gemv-q4min-g64-p4k32-pack": GemvParams(fmt=F.INT4_GROUP_MIN, group=64, lanes=4,
                                            word_bits=512, max_cols=2048, max_rows=2048,
                                            dsp_pack=True),
}


def generate(params):
    """The unit's Verilog (:class:`fpgallm.hdl.emit.Emitted`) for ``params``."""
    import importlib

    from fpgallm.estimate.resources import unit_key

    mod = unit_key(params).split("-")[0]
    return importlib.import_module(f"fpgallm.units.{mod}").generate(params)


def synth(params, target: str):
    """Synthesize ``params`` for ``target`` (``"ecp5"`` or ``"xcup"``); cached."""
    from fpgallm.synth import SynthTarget, synthesize

    return synthesize(generate(params), SynthTarget(target))


def load_data() -> dict:
    """The stored calibration data (``{"tools": ..., "configs": {key: {target: cells}}}``)."""
    return json.loads(DATA_FILE.read_text())


# --- the whole engine ---------------------------------------------------------------------
# Engine geometries (model preset, EngineParams knobs; context ENGINE_CONTEXT) synthesized
# block by block by ``benchmarks/engine_resources.py`` (hierarchy kept); the cell counts per
# block are stored in ENGINE_DATA_FILE.  ENGINE_HEAD_LUT in fpgallm.estimate.resources is
# fitted to ENGINE_HEAD_PAIR, then ENGINE_COEFFS to ENGINE_CALIBRATION; ENGINE_CHECK is
# compared with the model by the tests, not fitted.

ENGINE_DATA_FILE = Path(__file__).parent / "data" / "engine_calibration.json"
ENGINE_CONTEXT = 32
ENGINE_POINTS = {
    # the first three: the geometries tests/engine/rtl/test_models.py runs the models on
    "tiny-llama-b1": ("tiny-llama", dict(mem_ports=2, port_width=128, gemv_lanes=4, gemv_macs=16,
                                         vector_lanes=4, batch=1)),
    "tiny-llama-b2": ("tiny-llama", dict(mem_ports=4, port_width=256, gemv_lanes=8, gemv_macs=32,
                                         vector_lanes=8, batch=2)),
    "tiny-gpt2-b2": ("tiny-gpt2", dict(mem_ports=4, port_width=64, gemv_lanes=8, gemv_macs=8,
                                       vector_lanes=8, batch=2)),
    # the smallest engine the RTL builds (one 64-bit port, one GEMV lane, two vector lanes)
    "tiny-llama-min": ("tiny-llama", dict(mem_ports=1, port_width=64, gemv_lanes=1, gemv_macs=16,
                                          vector_lanes=2, batch=1)),
    # the same with the head buffers sized to the model's head_dim (what generate builds)
    "tiny-llama-min-hd32": ("tiny-llama", dict(mem_ports=1, port_width=64, gemv_lanes=1, gemv_macs=16,
                                               vector_lanes=2, batch=1, max_head_dim=32)),
    # a calibration geometry with head buffers of 64 lanes (checks the per-lane terms)
    "tiny-llama-b1-hd64": ("tiny-llama", dict(mem_ports=2, port_width=128, gemv_lanes=4, gemv_macs=16,
                                              vector_lanes=4, batch=1, max_head_dim=64)),
}
# the memory word from 64 to 1024 bits, 2 to 8 vector lanes, batch 1 and 2
ENGINE_CALIBRATION = ("tiny-llama-min", "tiny-llama-b1", "tiny-llama-b2")
# two engines that differ only in max_head_dim: the head buffers' LUTs per lane
ENGINE_HEAD_PAIR = ("tiny-llama-min", "tiny-llama-min-hd32")
# another model (GPT-2: LayerNorm, GELU, no RoPE use, 4 x 64-bit ports); head buffers of 64
# lanes on a calibration geometry
ENGINE_CHECK = ("tiny-gpt2-b2", "tiny-llama-b1-hd64")


def engine_point_params(point: str):
    """The EngineParams of an ENGINE_POINTS geometry (sized for its model, as the tests do)."""
    from fpgallm.engine import compiler as C
    from fpgallm.engine.params import EngineParams
    from fpgallm.model.load import load_model

    name, kw = ENGINE_POINTS[point]
    m = load_model(name)
    s = m.spec
    return EngineParams(max_dim=s.d_model, max_ffn=s.d_ffn, max_vocab=s.vocab_size,
                        max_context=ENGINE_CONTEXT, mem_latency=19,
                        weight_formats=C.model_weight_formats(m), **kw)


def load_engine_data() -> dict:
    """The stored engine synthesis (``{"tools": ..., "points": {point: {target: {block:
    cells}}}}``; blocks as :data:`fpgallm.estimate.resources.ENGINE_BLOCKS`)."""
    return json.loads(ENGINE_DATA_FILE.read_text())


def engine_block_synth(cells: dict, target: str):
    """A block's stored cell counts as :class:`~fpgallm.estimate.resources.Resources`."""
    from fpgallm.estimate.resources import synth_resources
    from fpgallm.synth import SynthResult, SynthTarget

    return synth_resources(SynthResult(SynthTarget(target), "block", dict(cells)))
