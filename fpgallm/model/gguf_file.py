"""GGUF files (through the ``gguf`` package): read into a :class:`Model`, and write one.

Reading maps the ``{arch}.*`` metadata to a :class:`ModelSpec` (``llama`` and ``gpt2``),
keeps F32 and F16 tensors as float arrays and Q8_0 / Q4_0 / Q4_1 tensors as
:class:`QuantTensor` (stored values, scales and minimums unchanged), and builds the tokenizer
from the embedded vocabulary.  llama files keep their Q/K rows as stored, so the spec says
``rope_style=ADJACENT``; gpt2's fused ``attn_qkv`` is split into ``attn_q/k/v``.
Every problem raises :class:`GGUFError` (a :class:`~fpgallm.errors.UserError`) naming the
file and, for tensors, the tensor and its type.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

from fpgallm.errors import UserError, reading
from fpgallm.model.model import Model, QuantTensor
from fpgallm.model.quant import GGUF_SCHEMES
from fpgallm.model.spec import Architecture, ModelSpec, RopeStyle
from fpgallm.model import tokenizer as tok

SUPPORTED_TYPES = (QT.F32, QT.F16, QT.Q8_0, QT.Q4_0, QT.Q4_1)


class GGUFError(UserError):
    """A GGUF file that cannot be loaded (the message names file, tensor and what is supported)."""


def _meta(reader: gguf.GGUFReader) -> dict:
    out = {}
    for k, f in reader.fields.items():
        if k.startswith("GGUF."):
            continue
        try:
            out[k] = f.contents()
        except Exception:  # noqa: BLE001 - an unreadable field is simply absent
            pass
    return out


def read_metadata(path) -> dict:
    """All metadata key/values of a GGUF file (for inspection)."""
    return _meta(_open(Path(path)))


class _Reader(gguf.GGUFReader):
    """A GGUFReader that says when a read runs past the end of the file (a truncated file)
    instead of failing later with an index or reshape error."""

    def _get(self, offset, dtype, count=1, override_order=None):
        end = offset + int(np.empty([], dtype=dtype).itemsize) * int(count)
        if end > len(self.data):
            raise GGUFError(f"truncated: at least {end} bytes expected, the file has {len(self.data)}")
        return super()._get(offset, dtype, count, override_order)


def _open(path: Path) -> gguf.GGUFReader:
    if not path.exists():
        raise GGUFError(f"no such file: {path}")
    if not path.is_file():
        raise GGUFError(f"not a file: {path}")
    try:
        return _Reader(str(path))
    except GGUFError as exc:
        raise GGUFError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file to the user
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GGUFError(f"{path}: not a readable GGUF file ({msg})") from None


def load_gguf(path, name: str | None = None, with_tokenizer: bool = True) -> Model:
    """Load a llama or gpt2 GGUF file into a :class:`Model` (quantized tensors kept quantized)."""
    path = Path(path)
    with reading(path, error=GGUFError):
        return _load(path, name, with_tokenizer)


def _load(path: Path, name: str | None, with_tokenizer: bool) -> Model:
    reader = _open(path)
    meta = _meta(reader)
    arch_s = meta.get("general.architecture")
    try:
        arch = Architecture(arch_s)
    except ValueError:
        raise GGUFError(f"{path}: unsupported architecture {arch_s!r}; supported: "
                        f"{', '.join(a.value for a in Architecture)}") from None
    raw = {t.name: t for t in reader.tensors}
    tensors: dict = {}
    for t in reader.tensors:
        if t.tensor_type not in SUPPORTED_TYPES:
            raise GGUFError(f"{path}: tensor {t.name!r} has type {t.tensor_type.name}; supported: "
                            f"{', '.join(x.name for x in SUPPORTED_TYPES)}")
        tensors[t.name] = _tensor(t)

    def m(key, default=None, required=True):
        v = meta.get(f"{arch.value}.{key}", default)
        if v is None and required:
            raise GGUFError(f"{path}: missing metadata {arch.value}.{key}")
        return v

    if "token_embd.weight" not in raw:
        raise GGUFError(f"{path}: missing tensor 'token_embd.weight'")
    n_heads = int(m("attention.head_count"))
    eps_key = "attention.layer_norm_rms_epsilon" if arch is Architecture.LLAMA else "attention.layer_norm_epsilon"
    if arch is Architecture.LLAMA and "rope_freqs.weight" in raw:
        raise GGUFError(f"{path}: tensor 'rope_freqs.weight' (RoPE frequency scaling) is not supported")
    vocab = tensors["token_embd.weight"].shape[0]
    tied = "output.weight" not in raw
    if arch is Architecture.GPT2 and not tied:
        # llama.cpp writes gpt2's LM head as a copy of the embedding; keep it tied when equal
        a, b = tensors["output.weight"], tensors["token_embd.weight"]
        if type(a) is type(b) and isinstance(a, np.ndarray) and np.array_equal(a, b):
            del tensors["output.weight"]
            tied = True
    bos, eos = meta.get("tokenizer.ggml.bos_token_id"), meta.get("tokenizer.ggml.eos_token_id")
    try:
        spec = ModelSpec(
            name=name or path.stem, arch=arch, n_layers=int(m("block_count")),
            d_model=int(m("embedding_length")), n_heads=n_heads,
            n_kv_heads=int(m("attention.head_count_kv", n_heads)), d_ffn=int(m("feed_forward_length")),
            vocab_size=int(vocab), max_seq_len=int(m("context_length")), norm_eps=_f32(m(eps_key, 1e-5)),
            rope_theta=_f32(m("rope.freq_base", 10000.0)), rope_style=RopeStyle.ADJACENT,
            tied_embeddings=tied,
            bos_token_id=int(bos) if bos is not None and int(bos) < vocab else None,
            eos_token_id=int(eos) if eos is not None and int(eos) < vocab else None)
    except ValueError as exc:
        raise GGUFError(f"{path}: {exc}") from None
    if arch is Architecture.GPT2:
        _split_qkv(tensors, spec, path)
    tokenizer = None
    if with_tokenizer and "tokenizer.ggml.tokens" in meta:
        try:
            tokenizer = tok.from_gguf_metadata(meta)
        except tok.TokenizerError as exc:
            raise GGUFError(f"{path}: {exc}") from None
    try:
        return Model(spec, tensors, tokenizer, str(path))
    except ValueError as exc:
        raise GGUFError(f"{path}: {exc}") from None


def _f32(v) -> float:
    """A float32 metadata value as the shortest decimal that rounds to it (9.99999975e-06 -> 1e-05)."""
    return float(repr(np.float32(v)).removeprefix("np.float32(").removesuffix(")"))


def _tensor(t):
    data = np.asarray(t.data)
    if t.tensor_type is QT.F32:
        return np.array(data, dtype=np.float32)
    if t.tensor_type is QT.F16:
        return np.array(data, dtype=np.float16)
    if data.ndim != 2:
        raise GGUFError(f"tensor {t.name!r} of type {t.tensor_type.name} is not a matrix")
    return QuantTensor.from_gguf_bytes(data, t.tensor_type)


def _split_qkv(tensors: dict, spec: ModelSpec, path) -> None:
    d = spec.d_model
    for i in range(spec.n_layers):
        for part in ("weight", "bias"):
            n = f"blk.{i}.attn_qkv.{part}"
            if n not in tensors:
                raise GGUFError(f"{path}: missing tensor {n!r}")
            t = tensors.pop(n)
            for j, m in enumerate(("attn_q", "attn_k", "attn_v")):
                rows = slice(j * d, (j + 1) * d)
                tensors[f"blk.{i}.{m}.{part}"] = t.take_rows(rows) if isinstance(t, QuantTensor) else t[rows]


def save_gguf(model: Model, path, tokenizer_meta: dict | None = None) -> Path:
    """Write ``model`` as a GGUF file (llama Q/K in the adjacent-pair convention).

    Float tensors are written as stored (F32 or F16); :class:`QuantTensor` s must use a GGUF
    scheme (Q8_0, Q4_0, Q4_1) and are written as their block bytes.  ``tokenizer_meta``
    (``tokenizer.ggml.*`` keys) is copied into the file when given, else it is derived from
    the model's tokenizer (byte-level BPE).
    """
    from fpgallm.model.spec import RopeStyle as RS

    path = Path(path)
    spec = model.spec
    if spec.arch is Architecture.LLAMA:
        model = model.with_rope_style(RS.ADJACENT)
    a = spec.arch.value
    w = gguf.GGUFWriter(str(path), a)
    w.add_name(spec.name)
    w.add_uint32(f"{a}.block_count", spec.n_layers)
    w.add_uint32(f"{a}.context_length", spec.max_seq_len)
    w.add_uint32(f"{a}.embedding_length", spec.d_model)
    w.add_uint32(f"{a}.feed_forward_length", spec.d_ffn)
    w.add_uint32(f"{a}.attention.head_count", spec.n_heads)
    if spec.arch is Architecture.LLAMA:
        w.add_uint32(f"{a}.attention.head_count_kv", spec.n_kv_heads)
        w.add_float32(f"{a}.rope.freq_base", spec.rope_theta)
        w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", spec.norm_eps)
    else:
        w.add_float32(f"{a}.attention.layer_norm_epsilon", spec.norm_eps)
    if tokenizer_meta is None and model.tokenizer is not None:
        tokenizer_meta = tok.gguf_metadata(model.tokenizer)
    for k, v in (tokenizer_meta or {}).items():
        _add_meta(w, k, v)
    tensors = dict(model.tensors)
    if spec.arch is Architecture.GPT2:
        for i in range(spec.n_layers):
            for part in ("weight", "bias"):
                ts = [tensors.pop(f"blk.{i}.{m}.{part}") for m in ("attn_q", "attn_k", "attn_v")]
                if all(isinstance(t, QuantTensor) for t in ts):
                    fused = QuantTensor(ts[0].scheme, np.concatenate([t.q for t in ts]),
                                        np.concatenate([t.scale for t in ts]),
                                        None if ts[0].min is None else np.concatenate([t.min for t in ts]))
                else:
                    fused = np.concatenate([np.asarray(t) for t in ts])
                tensors[f"blk.{i}.attn_qkv.{part}"] = fused
    for n, t in tensors.items():
        if isinstance(t, QuantTensor):
            qt = t.scheme.gguf_type
            if qt is None:
                raise GGUFError(f"tensor {n!r}: scheme {t.scheme.name} has no GGUF type; "
                                f"GGUF schemes: {', '.join(s.name for s in GGUF_SCHEMES.values())}")
            w.add_tensor(n, t.to_gguf_bytes(), raw_dtype=qt)
        else:
            w.add_tensor(n, np.ascontiguousarray(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _add_meta(w, k, v):
    if isinstance(v, bool):
        w.add_bool(k, v)
    elif isinstance(v, int):
        w.add_uint32(k, v)
    elif isinstance(v, float):
        w.add_float32(k, v)
    elif isinstance(v, str):
        w.add_string(k, v)
    elif isinstance(v, (list, tuple)):
        w.add_array(k, list(v))
    else:
        raise TypeError(f"metadata {k}: unsupported value type {type(v).__name__}")
