"""Text <-> token ids, built on the ``tokenizers`` library.

Three ways to get one:

* :func:`from_gguf_metadata` - a byte-level BPE (``tokenizer.ggml.model == "gpt2"``) from the
  vocabulary, merges and token types embedded in a GGUF file; control tokens (type 3) and
  user-defined tokens (type 4) become special added tokens, so ``<|im_start|>`` in a prompt
  is one token.  The pre-tokenizer follows ``tokenizer.ggml.pre`` (llama.cpp's regexes).
* :func:`from_tokenizer_json` - a Hugging Face ``tokenizer.json``.
* :func:`byte_level` - the tiny presets' tokenizer: one token per byte (ids 0..255 in byte
  order), then ``<|bos|>`` = 256 and ``<|eos|>`` = 257.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from tokenizers import AddedToken, Regex, Tokenizer as _HFTokenizer, decoders, models, pre_tokenizers, processors

from fpgallm.errors import first_line

# llama.cpp pre-tokenizer regexes (llama-vocab.cpp), by tokenizer.ggml.pre
_GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_DIGITS_FIRST = {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"}


class TokenizerError(ValueError):
    """The tokenizer description is missing, unsupported or rejected by the tokenizers library."""


@contextlib.contextmanager
def _built(what: str):
    """The tokenizers library raises plain ``Exception`` on a bad description: name it."""
    try:
        yield
    except TokenizerError:
        raise
    except Exception as exc:  # noqa: BLE001 - the library's only exception type
        raise TokenizerError(f"{what}: not a usable tokenizer ({first_line(exc)})") from None


@dataclass(eq=False)
class Tokenizer:
    """Encode text to ids and decode ids to text.

    Special tokens a model wants around a prompt (a BOS) come from the ``tokenizers``
    post-processor, so they survive ``tokenizer.json``; see :func:`with_bos`.
    """

    hf: _HFTokenizer
    bos_id: int | None = None
    eos_id: int | None = None

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=True).ids

    def decode(self, ids, skip_special: bool = True) -> str:
        return self.hf.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def to_json(self) -> str:
        return self.hf.to_str()


def with_bos(hf: _HFTokenizer, bos_id: int) -> None:
    """Make ``hf`` prepend token ``bos_id`` when encoding (a ``TemplateProcessing`` post-processor)."""
    bos = hf.id_to_token(bos_id)
    hf.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                      special_tokens=[(bos, bos_id)])


def _pre_tokenizer(pre: str):
    if pre in ("llama-bpe", "llama3", "smaug-bpe"):
        split = pre_tokenizers.Split(Regex(_LLAMA3_RE), behavior="isolated")
        return pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    steps = []
    if pre in _DIGITS_FIRST:
        steps.append(pre_tokenizers.Digits(individual_digits=True))
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    return pre_tokenizers.Sequence(steps)


def from_gguf_metadata(meta: dict) -> Tokenizer:
    """Build from GGUF ``tokenizer.ggml.*`` metadata (a dict of field name -> value)."""
    with _built("tokenizer.ggml.*"):
        return _from_gguf_metadata(meta)


def _from_gguf_metadata(meta: dict) -> Tokenizer:
    kind = meta.get("tokenizer.ggml.model")
    if kind is None:
        raise TokenizerError("no tokenizer.ggml.model in the file")
    if kind != "gpt2":
        raise TokenizerError(f"tokenizer.ggml.model={kind!r} is not supported; supported: gpt2 (byte-level BPE)")
    tokens = meta["tokenizer.ggml.tokens"]
    merges = meta.get("tokenizer.ggml.merges") or []
    types = meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ", 1)) if isinstance(m, str) else () for m in merges]
    bad = next((i for i, p in enumerate(pairs) if len(p) != 2), None)
    if bad is not None:
        raise TokenizerError(f"tokenizer.ggml.merges[{bad}] = {merges[bad]!r} is not 'LEFT RIGHT'")
    hf = _HFTokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
    hf.pre_tokenizer = _pre_tokenizer(meta.get("tokenizer.ggml.pre", "default"))
    hf.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty in (3, 4)]
    if specials:
        hf.add_special_tokens(specials)
    bos = meta.get("tokenizer.ggml.bos_token_id")
    if meta.get("tokenizer.ggml.add_bos_token", False) and bos is not None:
        with_bos(hf, int(bos))
    return Tokenizer(hf, bos, meta.get("tokenizer.ggml.eos_token_id"))


def from_tokenizer_json(path, bos_id: int | None = None, eos_id: int | None = None) -> Tokenizer:
    """Load a Hugging Face ``tokenizer.json`` (its post-processor decides about a BOS)."""
    with _built("tokenizer.json"):
        return Tokenizer(_HFTokenizer.from_file(str(path)), bos_id, eos_id)


def from_json_str(text: str, bos_id=None, eos_id=None) -> Tokenizer:
    with _built("tokenizer JSON"):
        return Tokenizer(_HFTokenizer.from_str(text), bos_id, eos_id)


def byte_level() -> Tokenizer:
    """The tiny presets' tokenizer: 256 byte tokens in byte order, ``<|bos|>`` 256, ``<|eos|>`` 257."""
    table = pre_tokenizers.ByteLevel.alphabet()
    # bytes_to_unicode order: GPT-2's mapping, rebuilt here so id == byte value
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    char_of = {b: chr(c) for b, c in zip(bs, cs)}
    assert set(char_of.values()) == set(table)
    vocab = {char_of[b]: b for b in range(256)}
    hf = _HFTokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([AddedToken("<|bos|>", special=True), AddedToken("<|eos|>", special=True)])
    with_bos(hf, 256)
    return Tokenizer(hf, 256, 257)


def gguf_metadata(t: Tokenizer) -> dict:
    """``tokenizer.ggml.*`` metadata describing ``t`` (byte-level BPE only), for :func:`save_gguf`."""
    import json

    doc = json.loads(t.hf.to_str())
    model = doc.get("model") or {}
    if model.get("type") != "BPE":
        raise TokenizerError(f"only byte-level BPE tokenizers can be written to GGUF, not {model.get('type')!r}")
    vocab = dict(model["vocab"])
    special = set()
    for a in doc.get("added_tokens") or []:
        vocab[a["content"]] = a["id"]
        if a.get("special"):
            special.add(a["id"])
    n = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(n)]
    for s, i in vocab.items():
        tokens[i] = s
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    pre = json.dumps(doc.get("pre_tokenizer"))
    meta = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm" if '"Digits"' in pre else "default",
            "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": [3 if i in special else 1 for i in range(n)],
            "tokenizer.ggml.merges": merges,
            "tokenizer.ggml.add_bos_token": (doc.get("post_processor") or {}).get("type") == "TemplateProcessing"}
    if t.bos_id is not None:
        meta["tokenizer.ggml.bos_token_id"] = int(t.bos_id)
    if t.eos_id is not None:
        meta["tokenizer.ggml.eos_token_id"] = int(t.eos_id)
    return meta
