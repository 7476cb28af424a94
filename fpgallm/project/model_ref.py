"""MODEL argument of ``fpgallm generate``: a preset name or a path.

The model package (issue 3, ``fpgallm.model``) is written in parallel.  Until it provides
presets and loaders, this only checks that MODEL is a known preset name or an existing
``.gguf`` / ``.npz`` file or Hugging Face directory, and records what it was.
ENGINE HOOKUP: load the model here (``fpgallm.model``) and hand the ``QuantizedModel`` to
the engine compiler; the memory fit check (:func:`fpgallm.project.fit.check_memory_fit`)
then gets the weight and KV-cache sizes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fpgallm.errors import UserError

# Used until fpgallm.model exposes its presets (PRESETS mapping or preset_names()).
FALLBACK_PRESETS = ("tiny-llama", "smollm2-135m")
DEFAULT_MODEL = "tiny-llama"


def preset_names() -> tuple[str, ...]:
    try:
        import fpgallm.model as model
    except ImportError:  # pragma: no cover - the package exists on main
        return FALLBACK_PRESETS
    fn = getattr(model, "preset_names", None)
    if callable(fn):
        return tuple(fn())
    presets = getattr(model, "PRESETS", None)
    if presets:
        return tuple(presets)
    return FALLBACK_PRESETS


@dataclass(frozen=True)
class ModelRef:
    name: str                 # preset name, or the file / folder name
    kind: str                 # "preset" | "gguf" | "npz" | "hf-dir"
    sha256: str | None = None  # of the file (None for presets and folders)

    @property
    def display(self) -> str:
        return f"{self.name} ({self.kind})" if self.kind != "preset" else f"{self.name} (preset)"

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "sha256": self.sha256,
                "loaded": False, "note": "validated only; loading waits for fpgallm.model (issue 3)"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_model(text: str) -> ModelRef:
    presets = preset_names()
    if text in presets:
        return ModelRef(text, "preset")
    p = Path(text)
    if p.is_file() and p.suffix.lower() in (".gguf", ".npz"):
        return ModelRef(p.name, p.suffix.lower()[1:], _sha256(p))
    if p.is_dir() and (p / "config.json").is_file():
        return ModelRef(p.resolve().name, "hf-dir")
    if p.exists():
        raise UserError(f"model {text!r}: not a .gguf or .npz file nor a Hugging Face folder "
                        "(config.json + safetensors)")
    raise UserError(f"unknown model {text!r}; presets: {', '.join(presets)}; "
                    "or a .gguf / .npz file or a Hugging Face folder")
