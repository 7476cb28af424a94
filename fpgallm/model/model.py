"""The in-memory model: a :class:`ModelSpec`, named tensors and (optionally) a tokenizer.

Every loader (GGUF, Hugging Face directory, npz, seeded preset) produces a :class:`Model`.
Tensor names and layouts follow :meth:`ModelSpec.tensor_shapes`: GGUF names, matrices
``[out_features, in_features]``.  A tensor is either a NumPy float array (float32, or float16
as stored in the file) or a :class:`~fpgallm.model.quant.QuantTensor` kept in its stored
quantized form.  :meth:`Model.dense` gives any of them as float32.

A :class:`QuantizedModel` is a :class:`Model` whose every matrix (``spec.matrix_names()``) is
a :class:`QuantTensor`; norms, biases and position tables stay float.  This is what the
quantized golden engine and the compiler consume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import numpy as np

from fpgallm.model.quant import QuantScheme, QuantTensor, quantize
from fpgallm.model.spec import Architecture, ModelSpec, RopeStyle

if TYPE_CHECKING:
    from fpgallm.model.tokenizer import Tokenizer

Tensor = Union[np.ndarray, QuantTensor]


def tensor_shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _float_parts(t):
    """The floating-point arrays of a tensor: itself, or a QuantTensor's scales and minimums."""
    if isinstance(t, np.ndarray):
        return [("", t)]
    parts = [(" scale", t.scale), (" min", t.min)]
    return [(p, a) for p, a in parts if isinstance(a, np.ndarray) and a.dtype.kind == "f"]


@dataclass(eq=False)
class Model:
    """A model in memory.  Construction checks every tensor against ``spec.tensor_shapes()``."""

    spec: ModelSpec
    tensors: dict[str, Tensor]
    tokenizer: "Tokenizer | None" = None
    source: str = ""
    _dense: dict = field(default_factory=dict, repr=False, init=False)

    def __post_init__(self):
        want = self.spec.tensor_shapes()
        missing = [n for n in want if n not in self.tensors]
        if missing:
            raise ValueError(f"model {self.spec.name!r}: missing tensor {missing[0]!r} "
                             f"({len(missing)} missing)")
        extra = [n for n in self.tensors if n not in want]
        if extra:
            raise ValueError(f"model {self.spec.name!r}: unexpected tensor {extra[0]!r}")
        for n, shp in want.items():
            t = self.tensors[n]
            if tensor_shape(t) != shp:
                raise ValueError(f"model {self.spec.name!r}: tensor {n!r} has shape {tensor_shape(t)}, "
                                 f"spec wants {shp}")
            if isinstance(t, np.ndarray) and t.dtype not in (np.float32, np.float16):
                raise ValueError(f"model {self.spec.name!r}: tensor {n!r} has dtype {t.dtype}; "
                                 "float32, float16 or QuantTensor")
            for part, a in _float_parts(t):
                if not np.isfinite(a).all():
                    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
                    raise ValueError(f"model {self.spec.name!r}: tensor {n!r}{part} holds NaN or Inf "
                                     f"(first at index {list(bad)}: {a[bad]})")

    @property
    def name(self) -> str:
        return self.spec.name

    def dense(self, name: str) -> np.ndarray:
        """Tensor ``name`` as float32 (dequantized once and cached)."""
        got = self._dense.get(name)
        if got is None:
            t = self.tensors[name]
            got = t.dequantize() if isinstance(t, QuantTensor) else np.asarray(t, dtype=np.float32)
            self._dense[name] = got
        return got

    def quantized_names(self) -> list[str]:
        return [n for n, t in self.tensors.items() if isinstance(t, QuantTensor)]

    def storage_summary(self) -> dict[str, int]:
        """Tensor count per stored type (``F32``, ``F16`` or a scheme name)."""
        out: dict[str, int] = {}
        for t in self.tensors.values():
            k = t.scheme.name if isinstance(t, QuantTensor) else ("F16" if t.dtype == np.float16 else "F32")
            out[k] = out.get(k, 0) + 1
        return out

    def with_rope_style(self, style: RopeStyle) -> "Model":
        """The same model with Q/K rows permuted to ``style`` (works on quantized rows too)."""
        spec = self.spec
        if spec.arch is not Architecture.LLAMA or spec.rope_style is style:
            return self
        hd = spec.head_dim
        # adjacent pair (2i, 2i+1) <-> halves (i, i + hd/2)
        to_adj = np.empty(hd, dtype=np.int64)
        to_adj[0::2] = np.arange(hd // 2)
        to_adj[1::2] = np.arange(hd // 2) + hd // 2
        perm_head = to_adj if style is RopeStyle.ADJACENT else np.argsort(to_adj)
        tensors = dict(self.tensors)
        for i in range(spec.n_layers):
            for m, heads in (("attn_q", spec.n_heads), ("attn_k", spec.n_kv_heads)):
                n = f"blk.{i}.{m}.weight"
                idx = (np.arange(heads)[:, None] * hd + perm_head[None, :]).reshape(-1)
                t = tensors[n]
                tensors[n] = t.take_rows(idx) if isinstance(t, QuantTensor) else t[idx]
        return Model(spec.replace(rope_style=style), tensors, self.tokenizer, self.source)


class QuantizedModel(Model):
    """A :class:`Model` whose every matrix is a :class:`QuantTensor` (checked on construction)."""

    def __post_init__(self):
        super().__post_init__()
        floats = [n for n in self.spec.matrix_names() if not isinstance(self.tensors[n], QuantTensor)]
        if floats:
            raise ValueError(f"QuantizedModel {self.spec.name!r}: matrix {floats[0]!r} is not quantized")

    def scheme_of(self, name: str) -> QuantScheme:
        return self.tensors[name].scheme

    @classmethod
    def from_model(cls, model: Model) -> "QuantizedModel":
        """View an already quantized model (e.g. a Q4_1 GGUF) as a QuantizedModel."""
        return cls(model.spec, dict(model.tensors), model.tokenizer, model.source)


def quantize_model(model: Model, scheme: QuantScheme, embed_scheme: QuantScheme | None = None) -> QuantizedModel:
    """Quantize every matrix of ``model`` (from its float32 values) into ``scheme``.

    ``embed_scheme`` (default ``scheme``) is used for ``token_embd.weight`` and
    ``output.weight``.  Already-quantized matrices are dequantized first and re-quantized.
    """
    embed_scheme = embed_scheme or scheme
    tensors = dict(model.tensors)
    for n in model.spec.matrix_names():
        s = embed_scheme if n in ("token_embd.weight", "output.weight") else scheme
        tensors[n] = quantize(model.dense(n), s)
    return QuantizedModel(model.spec, tensors, model.tokenizer, f"{model.source} quantized {scheme.name}")


def dequantize_model(model: Model) -> Model:
    """The same model with every tensor as float32."""
    return Model(model.spec, {n: model.dense(n) for n in model.tensors}, model.tokenizer, model.source)
