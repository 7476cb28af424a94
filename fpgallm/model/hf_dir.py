"""Hugging Face model directories: ``config.json`` + ``*.safetensors`` (+ ``tokenizer.json``).

:func:`load_hf` maps ``LlamaForCausalLM`` and ``GPT2LMHeadModel`` checkpoints to the
GGUF-named :class:`Model` layout (``rope_style=HALVES`` for llama; GPT-2's ``Conv1D``
weights ``[in, out]`` are transposed and ``c_attn`` split into Q, K, V).  :func:`save_hf`
writes the inverse, so a fpgallm model can be opened by ``transformers`` (the fixture script
does exactly that).  Problems raise :class:`HFError` naming the directory and what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from fpgallm.errors import UserError, reading
from fpgallm.model.model import Model, dequantize_model
from fpgallm.model.spec import Architecture, ModelSpec, RopeStyle
from fpgallm.model import tokenizer as tok

SUPPORTED_MODEL_TYPES = {"llama": Architecture.LLAMA, "gpt2": Architecture.GPT2}


class HFError(UserError):
    """A Hugging Face directory that cannot be loaded."""


def _read_config(d: Path) -> dict:
    cfg = d / "config.json"
    if not cfg.is_file():
        raise HFError(f"{d}: no config.json (a Hugging Face model directory needs config.json and *.safetensors)")
    try:
        doc = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HFError(f"{cfg}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise HFError(f"{cfg}: not a JSON object (a Hugging Face config is {{\"model_type\": ..., ...}})")
    return doc


def spec_from_config(cfg: dict, name: str) -> ModelSpec:
    mt = cfg.get("model_type")
    arch = SUPPORTED_MODEL_TYPES.get(mt)
    if arch is None:
        raise HFError(f"unsupported model_type {mt!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}")
    if arch is Architecture.LLAMA:
        if cfg.get("rope_scaling"):
            raise HFError(f"rope_scaling={cfg['rope_scaling']!r} is not supported")
        n_heads = cfg["num_attention_heads"]
        hd = cfg.get("head_dim")
        if hd is not None and hd * n_heads != cfg["hidden_size"]:
            raise HFError(f"head_dim={hd} with hidden_size={cfg['hidden_size']} is not supported")
        if cfg.get("attention_bias") or cfg.get("mlp_bias"):
            raise HFError("llama checkpoints with attention_bias or mlp_bias are not supported")
        rope_theta = cfg.get("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0))
        return ModelSpec(name=name, arch=arch, n_layers=cfg["num_hidden_layers"], d_model=cfg["hidden_size"],
                         n_heads=n_heads, n_kv_heads=cfg.get("num_key_value_heads") or n_heads,
                         d_ffn=cfg["intermediate_size"], vocab_size=cfg["vocab_size"],
                         max_seq_len=cfg.get("max_position_embeddings", 2048),
                         norm_eps=float(cfg.get("rms_norm_eps", 1e-6)), rope_theta=float(rope_theta),
                         rope_style=RopeStyle.HALVES, tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
                         bos_token_id=_tid(cfg.get("bos_token_id"), cfg["vocab_size"]),
                         eos_token_id=_tid(cfg.get("eos_token_id"), cfg["vocab_size"]))
    act = cfg.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh"):
        raise HFError(f"activation_function={act!r} is not supported; supported: gelu_new")
    d = cfg["n_embd"]
    return ModelSpec(name=name, arch=arch, n_layers=cfg["n_layer"], d_model=d, n_heads=cfg["n_head"],
                     n_kv_heads=cfg["n_head"], d_ffn=cfg.get("n_inner") or 4 * d, vocab_size=cfg["vocab_size"],
                     max_seq_len=cfg["n_positions"], norm_eps=float(cfg.get("layer_norm_epsilon", 1e-5)),
                     tied_embeddings=True, bos_token_id=_tid(cfg.get("bos_token_id"), cfg["vocab_size"]),
                     eos_token_id=_tid(cfg.get("eos_token_id"), cfg["vocab_size"]))


def _tid(v, vocab):
    if isinstance(v, list):
        v = v[0] if v else None
    return v if isinstance(v, int) and 0 <= v < vocab else None


def _read_tensors(d: Path) -> dict[str, np.ndarray]:
    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise HFError(f"{d}: no *.safetensors file (only safetensors checkpoints are supported)")
    out = {}
    for f in files:
        try:
            with safe_open(str(f), framework="numpy") as sf:
                for k in sf.keys():
                    out[k] = sf.get_tensor(k)
        except Exception as exc:  # noqa: BLE001
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HFError(f"{f}: not a readable safetensors file ({msg})") from None
    return out


def _f(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype == np.float32 or a.dtype == np.float16:
        return np.ascontiguousarray(a)
    if a.dtype == np.float64:
        return a.astype(np.float32)
    raise HFError(f"tensor {name!r} has dtype {a.dtype}; supported: float32, float16")


def load_hf(path, name: str | None = None, with_tokenizer: bool = True) -> Model:
    """Load a llama or gpt2 Hugging Face directory (float tensors as stored)."""
    d = Path(path)
    if not d.is_dir():
        raise HFError(f"no such directory: {d}")
    cfg = _read_config(d)
    try:
        spec = spec_from_config(cfg, name or d.name)
    except HFError as exc:
        raise HFError(f"{d}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise HFError(f"{d}: config.json: {exc}") from None
    raw = _read_tensors(d)
    try:
        tensors = _from_hf_names(raw, spec)
    except KeyError as exc:
        raise HFError(f"{d}: missing tensor {exc.args[0]!r}") from None
    if spec.arch is Architecture.LLAMA and not spec.tied_embeddings and "output.weight" not in tensors:
        raise HFError(f"{d}: missing tensor 'lm_head.weight'")
    tokenizer = None
    if with_tokenizer and (d / "tokenizer.json").is_file():
        with reading(d, error=HFError):
            tokenizer = tok.from_tokenizer_json(d / "tokenizer.json", spec.bos_token_id, spec.eos_token_id)
    try:
        return Model(spec, tensors, tokenizer, str(d))
    except ValueError as exc:
        raise HFError(f"{d}: {exc}") from None


def _from_hf_names(raw: dict, spec: ModelSpec) -> dict:
    t = {}
    if spec.arch is Architecture.LLAMA:
        g = lambda k: _f(raw[k], k)  # noqa: E731
        t["token_embd.weight"] = g("model.embed_tokens.weight")
        for i in range(spec.n_layers):
            p, b = f"model.layers.{i}.", f"blk.{i}."
            t[b + "attn_norm.weight"] = g(p + "input_layernorm.weight")
            for hf, ours in (("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
                             ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
                             ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")):
                t[b + ours + ".weight"] = g(p + hf + ".weight")
            t[b + "ffn_norm.weight"] = g(p + "post_attention_layernorm.weight")
        t["output_norm.weight"] = g("model.norm.weight")
        if not spec.tied_embeddings:
            t["output.weight"] = g("lm_head.weight")
        return t
    pre = "transformer." if "transformer.wte.weight" in raw else ""
    g = lambda k: _f(raw[pre + k], pre + k)  # noqa: E731
    d = spec.d_model
    t["token_embd.weight"] = g("wte.weight")
    t["position_embd.weight"] = g("wpe.weight")
    for i in range(spec.n_layers):
        p, b = f"h.{i}.", f"blk.{i}."
        t[b + "attn_norm.weight"], t[b + "attn_norm.bias"] = g(p + "ln_1.weight"), g(p + "ln_1.bias")
        w, bias = g(p + "attn.c_attn.weight"), g(p + "attn.c_attn.bias")   # Conv1D: [in, 3d]
        for j, m in enumerate(("attn_q", "attn_k", "attn_v")):
            t[b + m + ".weight"] = np.ascontiguousarray(w[:, j * d:(j + 1) * d].T)
            t[b + m + ".bias"] = np.ascontiguousarray(bias[j * d:(j + 1) * d])
        for hf, ours in (("attn.c_proj", "attn_output"), ("mlp.c_fc", "ffn_up"), ("mlp.c_proj", "ffn_down")):
            t[b + ours + ".weight"] = np.ascontiguousarray(g(p + hf + ".weight").T)
            t[b + ours + ".bias"] = g(p + hf + ".bias")
        t[b + "ffn_norm.weight"], t[b + "ffn_norm.bias"] = g(p + "ln_2.weight"), g(p + "ln_2.bias")
    t["output_norm.weight"], t["output_norm.bias"] = g("ln_f.weight"), g("ln_f.bias")
    return t


def save_hf(model: Model, path) -> Path:
    """Write ``model`` (dequantized, float32) as a Hugging Face directory ``transformers`` can load."""
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    spec = model.spec
    if spec.arch is Architecture.LLAMA:
        model = model.with_rope_style(RopeStyle.HALVES)
    model = dequantize_model(model)
    t = model.tensors
    out: dict[str, np.ndarray] = {}
    if spec.arch is Architecture.LLAMA:
        cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": spec.d_model,
               "intermediate_size": spec.d_ffn, "num_hidden_layers": spec.n_layers,
               "num_attention_heads": spec.n_heads, "num_key_value_heads": spec.n_kv_heads,
               "vocab_size": spec.vocab_size, "max_position_embeddings": spec.max_seq_len,
               "rms_norm_eps": spec.norm_eps, "rope_theta": spec.rope_theta, "hidden_act": "silu",
               "tie_word_embeddings": spec.tied_embeddings, "attention_bias": False, "mlp_bias": False,
               "torch_dtype": "float32"}
        out["model.embed_tokens.weight"] = t["token_embd.weight"]
        for i in range(spec.n_layers):
            p, b = f"model.layers.{i}.", f"blk.{i}."
            out[p + "input_layernorm.weight"] = t[b + "attn_norm.weight"]
            for hf, ours in (("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
                             ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
                             ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")):
                out[p + hf + ".weight"] = t[b + ours + ".weight"]
            out[p + "post_attention_layernorm.weight"] = t[b + "ffn_norm.weight"]
        out["model.norm.weight"] = t["output_norm.weight"]
        if not spec.tied_embeddings:
            out["lm_head.weight"] = t["output.weight"]
    else:
        cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": spec.d_model,
               "n_layer": spec.n_layers, "n_head": spec.n_heads, "n_inner": spec.d_ffn,
               "vocab_size": spec.vocab_size, "n_positions": spec.max_seq_len,
               "layer_norm_epsilon": spec.norm_eps, "activation_function": "gelu_new",
               "tie_word_embeddings": True, "torch_dtype": "float32"}
        out["transformer.wte.weight"] = t["token_embd.weight"]
        out["transformer.wpe.weight"] = t["position_embd.weight"]
        for i in range(spec.n_layers):
            p, b = f"transformer.h.{i}.", f"blk.{i}."
            out[p + "ln_1.weight"], out[p + "ln_1.bias"] = t[b + "attn_norm.weight"], t[b + "attn_norm.bias"]
            out[p + "attn.c_attn.weight"] = np.concatenate(
                [t[b + m + ".weight"].T for m in ("attn_q", "attn_k", "attn_v")], axis=1)
            out[p + "attn.c_attn.bias"] = np.concatenate([t[b + m + ".bias"] for m in ("attn_q", "attn_k", "attn_v")])
            for hf, ours in (("attn.c_proj", "attn_output"), ("mlp.c_fc", "ffn_up"), ("mlp.c_proj", "ffn_down")):
                out[p + hf + ".weight"] = t[b + ours + ".weight"].T
                out[p + hf + ".bias"] = t[b + ours + ".bias"]
            out[p + "ln_2.weight"], out[p + "ln_2.bias"] = t[b + "ffn_norm.weight"], t[b + "ffn_norm.bias"]
        out["transformer.ln_f.weight"], out["transformer.ln_f.bias"] = t["output_norm.weight"], t["output_norm.bias"]
    if spec.bos_token_id is not None:
        cfg["bos_token_id"] = spec.bos_token_id
    if spec.eos_token_id is not None:
        cfg["eos_token_id"] = spec.eos_token_id
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}, str(d / "model.safetensors"),
              metadata={"format": "pt"})
    (d / "config.json").write_text(json.dumps(cfg, indent=1))
    if model.tokenizer is not None:
        (d / "tokenizer.json").write_text(model.tokenizer.to_json())
    return d
