"""The float reference transformer in NumPy: prefill, decode with a KV cache, greedy generation.

Arithmetic is float32 (``dtype`` can be raised to float64 for error studies).  The model's
tensors are dequantized once at construction; Q/K/V and gate/up matrices are fused so a
decode step is a handful of matrix-vector products.

Contracts
---------
* ``forward(ids, cache)`` runs the tokens ``ids`` at positions ``cache.length ...`` and
  appends their keys and values to the cache; it returns the logits of every position
  (``[len(ids), vocab]``).  A prefill followed by single-token decode steps gives the same
  logits as one forward pass over the whole sequence (up to float rounding).
* ``trace``: pass a dict and it is filled with the intermediate values of that call, keyed
  ``embd``, ``blk.{i}.attn_in`` (normed input), ``blk.{i}.q`` / ``.k`` (after RoPE, the
  model's ``rope_style`` order), ``blk.{i}.v``, ``blk.{i}.attn`` (attention output before the
  output projection), ``blk.{i}.attn_out``, ``blk.{i}.ffn_in``, ``blk.{i}.ffn_hidden`` (after
  the activation / gate), ``blk.{i}.ffn_out``, ``blk.{i}.out`` (residual stream after the
  block), ``output_norm``, ``logits``; arrays are ``[T, width]``.  This is the hook the
  quantized golden engine compares against, layer by layer.
* ``act_quant=True`` is the fake-quant mode: the input vector of every matrix multiply is
  rounded to INT8 with a per-vector scale (``quant.fake_quant_activations_int8``); weights are
  whatever the model holds (quantized tensors dequantized).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from fpgallm.model.model import Model
from fpgallm.model.quant import fake_quant_activations_int8
from fpgallm.model.spec import Architecture, RopeStyle


@dataclass
class KVCache:
    """Keys and values per layer, ``[n_kv_heads, capacity, head_dim]``; ``length`` positions used."""

    k: list[np.ndarray]
    v: list[np.ndarray]
    length: int = 0

    @property
    def capacity(self) -> int:
        return self.k[0].shape[1]


@dataclass
class Generation:
    """Result of :meth:`Reference.generate`."""

    prompt_ids: list[int]
    ids: list[int]                      # generated ids (stop token included if hit)
    last_prompt_logits: np.ndarray      # logits after the prompt's last token
    step_logits: list[np.ndarray] = field(default_factory=list)   # logits that chose each token


class Reference:
    """Float NumPy transformer over a :class:`Model` (llama and gpt2 families)."""

    def __init__(self, model: Model, act_quant: bool = False, dtype=np.float32):
        self.model = model
        self.spec = s = model.spec
        self.act_quant = act_quant
        self.dtype = np.dtype(dtype)
        f = lambda n: np.ascontiguousarray(model.dense(n), dtype=self.dtype)  # noqa: E731
        self.gpt2 = s.arch is Architecture.GPT2
        self.tok_embd = f("token_embd.weight")
        self.lm_head = self.tok_embd if s.tied_embeddings else f("output.weight")
        self.pos_embd = f("position_embd.weight") if self.gpt2 else None
        self.out_norm = (f("output_norm.weight"), f("output_norm.bias") if self.gpt2 else None)
        self.layers = []
        for i in range(s.n_layers):
            b = f"blk.{i}."
            L = {"attn_norm": (f(b + "attn_norm.weight"), f(b + "attn_norm.bias") if self.gpt2 else None),
                 "ffn_norm": (f(b + "ffn_norm.weight"), f(b + "ffn_norm.bias") if self.gpt2 else None),
                 "wqkv": np.concatenate([f(b + "attn_q.weight"), f(b + "attn_k.weight"), f(b + "attn_v.weight")]),
                 "wo": f(b + "attn_output.weight"), "wdown": f(b + "ffn_down.weight")}
            if self.gpt2:
                L["bqkv"] = np.concatenate([f(b + "attn_q.bias"), f(b + "attn_k.bias"), f(b + "attn_v.bias")])
                L["bo"], L["bdown"] = f(b + "attn_output.bias"), f(b + "ffn_down.bias")
                L["wup"], L["bup"] = f(b + "ffn_up.weight"), f(b + "ffn_up.bias")
            else:
                L["wgu"] = np.concatenate([f(b + "ffn_gate.weight"), f(b + "ffn_up.weight")])
            self.layers.append(L)
        hd = s.head_dim
        self.inv_freq = 1.0 / (s.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))

    # building blocks ---------------------------------------------------------------------
    def _mm(self, x, w, b=None):
        if self.act_quant:
            x = fake_quant_activations_int8(x).astype(self.dtype, copy=False)
        y = x @ w.T
        return y if b is None else y + b

    def _norm(self, x, wb):
        w, b = wb
        eps = self.dtype.type(self.spec.norm_eps)
        if b is None:
            return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        return xc / np.sqrt(np.mean(xc * xc, axis=-1, keepdims=True) + eps) * w + b

    def _rope(self, x, pos):
        """Rotate ``x`` ``[T, heads, head_dim]`` at positions ``pos`` ``[T]``."""
        ang = pos[:, None].astype(np.float64) * self.inv_freq[None, :]
        cos = np.cos(ang).astype(self.dtype)[:, None, :]
        sin = np.sin(ang).astype(self.dtype)[:, None, :]
        if self.spec.rope_style is RopeStyle.ADJACENT:
            x0, x1 = x[..., 0::2], x[..., 1::2]
            out = np.empty_like(x)
            out[..., 0::2] = x0 * cos - x1 * sin
            out[..., 1::2] = x0 * sin + x1 * cos
            return out
        h = x.shape[-1] // 2
        x0, x1 = x[..., :h], x[..., h:]
        return np.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)

    @staticmethod
    def _gelu(x):
        """GELU, tanh approximation (GPT-2's ``gelu_new``)."""
        c = np.sqrt(2.0 / np.pi)
        return 0.5 * x * (1.0 + np.tanh(x.dtype.type(c) * (x + x.dtype.type(0.044715) * x * x * x)))

    @staticmethod
    def _silu(x):
        return x / (1.0 + np.exp(-x))

    # cache -----------------------------------------------------------------------------------
    def new_cache(self, capacity: int | None = None) -> KVCache:
        s = self.spec
        cap = capacity or s.max_seq_len
        if cap > s.max_seq_len:
            raise ValueError(f"cache capacity {cap} exceeds max_seq_len={s.max_seq_len} of {s.name}")
        shape = (s.n_kv_heads, cap, s.head_dim)
        return KVCache([np.zeros(shape, self.dtype) for _ in range(s.n_layers)],
                       [np.zeros(shape, self.dtype) for _ in range(s.n_layers)])

    # forward ---------------------------------------------------------------------------------
    def forward(self, ids, cache: KVCache | None = None, trace: dict | None = None) -> np.ndarray:
        """Logits ``[T, vocab]`` for tokens ``ids`` at positions ``cache.length ...``; extends ``cache``."""
        s = self.spec
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        T = ids.shape[0]
        if T == 0:
            raise ValueError("forward: no tokens")
        if ids.min() < 0 or ids.max() >= s.vocab_size:
            raise ValueError(f"forward: token id out of range [0, {s.vocab_size})")
        if cache is None:
            cache = self.new_cache(T)
        p0 = cache.length
        if p0 + T > cache.capacity:
            raise ValueError(f"forward: {p0 + T} positions exceed the cache capacity {cache.capacity}")
        pos = np.arange(p0, p0 + T)
        H, KVH, hd, G = s.n_heads, s.n_kv_heads, s.head_dim, s.group_size
        d, kvd = s.d_model, s.kv_dim
        x = self.tok_embd[ids]
        if self.gpt2:
            x = x + self.pos_embd[pos]
        tr = trace if trace is not None else None
        if tr is not None:
            tr["embd"] = x.copy()
        scale = self.dtype.type(1.0 / np.sqrt(hd))
        L_total = p0 + T
        # causal mask for the new queries against all keys so far
        mask = pos[:, None] >= np.arange(L_total)[None, :]
        for i, L in enumerate(self.layers):
            h = self._norm(x, L["attn_norm"])
            qkv = self._mm(h, L["wqkv"], L.get("bqkv"))
            q = qkv[:, :d].reshape(T, H, hd)
            k = qkv[:, d:d + kvd].reshape(T, KVH, hd)
            v = qkv[:, d + kvd:].reshape(T, KVH, hd)
            if not self.gpt2:
                q, k = self._rope(q, pos), self._rope(k, pos)
            cache.k[i][:, p0:p0 + T] = k.transpose(1, 0, 2)
            cache.v[i][:, p0:p0 + T] = v.transpose(1, 0, 2)
            K = cache.k[i][:, :L_total]                       # [KVH, L, hd]
            V = cache.v[i][:, :L_total]
            qg = q.reshape(T, KVH, G, hd).transpose(1, 2, 0, 3)   # [KVH, G, T, hd]
            sc = (qg @ K[:, None].transpose(0, 1, 3, 2)) * scale  # [KVH, G, T, L]
            sc = np.where(mask, sc, -np.inf)
            sc = sc - sc.max(axis=-1, keepdims=True)
            p = np.exp(sc)
            p /= p.sum(axis=-1, keepdims=True)
            att = (p @ V[:, None]).transpose(2, 0, 1, 3).reshape(T, d)   # [T, H*hd]
            a_out = self._mm(att, L["wo"], L.get("bo"))
            x = x + a_out
            f_in = self._norm(x, L["ffn_norm"])
            if self.gpt2:
                hid = self._gelu(self._mm(f_in, L["wup"], L["bup"]))
            else:
                gu = self._mm(f_in, L["wgu"])
                hid = self._silu(gu[:, :s.d_ffn]) * gu[:, s.d_ffn:]
            f_out = self._mm(hid, L["wdown"], L.get("bdown"))
            x = x + f_out
            if tr is not None:
                b = f"blk.{i}."
                tr[b + "attn_in"], tr[b + "q"], tr[b + "k"], tr[b + "v"] = h, q.reshape(T, d), \
                    k.reshape(T, kvd), v.reshape(T, kvd)
                tr[b + "attn"], tr[b + "attn_out"], tr[b + "ffn_in"] = att, a_out, f_in
                tr[b + "ffn_hidden"], tr[b + "ffn_out"], tr[b + "out"] = hid, f_out, x.copy()
        cache.length = L_total
        hn = self._norm(x, self.out_norm)
        logits = self._mm(hn, self.lm_head)
        if tr is not None:
            tr["output_norm"], tr["logits"] = hn, logits
        return logits

    def logits(self, ids) -> np.ndarray:
        """Full recomputation: logits of every position of ``ids`` with a fresh cache."""
        return self.forward(ids, self.new_cache(len(ids)))

    def prefill(self, ids, cache: KVCache) -> np.ndarray:
        return self.forward(ids, cache)

    def decode(self, token: int, cache: KVCache, trace: dict | None = None) -> np.ndarray:
        """Logits ``[vocab]`` after one more token."""
        return self.forward([token], cache, trace)[0]

    def generate(self, prompt_ids, max_new_tokens: int, stop_at_eos: bool = True,
                 keep_logits: bool = False) -> Generation:
        """Greedy generation: prefill the prompt, then up to ``max_new_tokens`` decode steps.

        Decode steps run with one BLAS thread: a single-token step is a chain of memory-bound
        matrix-vector products, and multithreaded OpenBLAS GEMV loses badly (3-8x measured)
        when the cores are shared.  Prefill keeps the default thread count.
        """
        prompt_ids = [int(t) for t in prompt_ids]
        if not prompt_ids:
            raise ValueError("generate: empty prompt")
        cap = min(self.spec.max_seq_len, len(prompt_ids) + max_new_tokens)
        if len(prompt_ids) > cap:
            raise ValueError(f"generate: prompt of {len(prompt_ids)} tokens exceeds max_seq_len={self.spec.max_seq_len}")
        cache = self.new_cache(cap)
        last = self.prefill(prompt_ids, cache)[-1]
        gen = Generation(prompt_ids, [], last.copy())
        logits = last
        with threadpool_limits(limits=1, user_api="blas"):
            self._greedy(gen, cache, logits, max_new_tokens, stop_at_eos, keep_logits)
        return gen

    def _greedy(self, gen, cache, logits, max_new_tokens, stop_at_eos, keep_logits):
        eos = self.spec.eos_token_id
        for step in range(max_new_tokens):
            t = int(np.argmax(logits))
            gen.ids.append(t)
            if keep_logits:
                gen.step_logits.append(logits.copy())
            if (stop_at_eos and eos is not None and t == eos) or step == max_new_tokens - 1 \
                    or cache.length >= cache.capacity:
                break
            logits = self.decode(t, cache)
