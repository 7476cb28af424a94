"""``.npz`` models: named tensors plus the spec (and optionally the tokenizer) as JSON.

Layout: every float tensor under its name; a :class:`QuantTensor` as ``NAME::q``,
``NAME::scale`` and ``NAME::min``; ``__fpgallm__`` holds a JSON document
``{"spec": {...}, "quant": {NAME: scheme fields}, "tokenizer": str | null}``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from fpgallm.errors import UserError, reading
from fpgallm.model.model import Model
from fpgallm.model.quant import QuantScheme, QuantTensor, ScaleDType
from fpgallm.model.spec import ModelSpec
from fpgallm.model import tokenizer as tok

META = "__fpgallm__"


class NPZError(UserError):
    """An .npz that is not a fpgallm model."""


def save_npz(model: Model, path) -> Path:
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    quant = {}
    for n, t in model.tensors.items():
        if isinstance(t, QuantTensor):
            arrays[n + "::q"], arrays[n + "::scale"] = t.q, t.scale
            if t.min is not None:
                arrays[n + "::min"] = t.min
            s = t.scheme
            quant[n] = {"bits": s.bits, "group": s.group, "with_min": s.with_min, "scale_dtype": s.scale_dtype.value}
        else:
            arrays[n] = t
    meta = {"spec": model.spec.to_dict(), "quant": quant,
            "tokenizer": model.tokenizer.to_json() if model.tokenizer else None,
            "tokenizer_ids": [model.tokenizer.bos_id, model.tokenizer.eos_id]
            if model.tokenizer else None}
    arrays[META] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return path


def load_npz(path, name: str | None = None, with_tokenizer: bool = True) -> Model:
    path = Path(path)
    if not path.is_file():
        raise NPZError(f"no such file: {path}")
    try:
        z = np.load(path, allow_pickle=False)
        files = set(z.files)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise NPZError(f"{path}: not a readable .npz file ({exc})") from None
    if META not in files:
        raise NPZError(f"{path}: no {META} entry (an fpgallm .npz holds the spec as JSON; write one with save_npz)")
    with reading(path, error=NPZError):
        meta = json.loads(str(z[META]))
        if not isinstance(meta, dict):
            raise NPZError(f"{path}: {META} is not a JSON object")
        spec = ModelSpec.from_dict(meta["spec"])
        if name:
            spec = spec.replace(name=name)
        tensors = {}
        for n in files - {META}:
            if "::" in n:
                continue
            tensors[n] = np.asarray(z[n])
        for n, s in meta.get("quant", {}).items():
            scheme = QuantScheme(s["bits"], s["group"], s["with_min"], ScaleDType(s["scale_dtype"]))
            tensors[n] = QuantTensor(scheme, z[n + "::q"], z[n + "::scale"],
                                     z[n + "::min"] if s["with_min"] else None)
        tokenizer = None
        if with_tokenizer and meta.get("tokenizer"):
            bos, eos = meta.get("tokenizer_ids") or (None, None)
            tokenizer = tok.from_json_str(meta["tokenizer"], bos, eos)
        return Model(spec, tensors, tokenizer, str(path))
