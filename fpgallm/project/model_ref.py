"""MODEL argument of ``fpgallm generate``: a preset name or a path.

:func:`resolve_model` checks that MODEL is a known preset name or an existing ``.gguf`` /
``.npz`` file or Hugging Face directory and records what it was (the file's SHA-256); the
engine design (:mod:`fpgallm.project.engine_design`) then loads it with
:func:`fpgallm.model.load.load_model` to compile the program and memory image.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fpgallm.errors import UserError

DEFAULT_MODEL = "tiny-llama"


def preset_names() -> tuple[str, ...]:
    from fpgallm.model.spec import PRESETS

    return tuple(PRESETS)


@dataclass(frozen=True)
class ModelRef:
    name: str                 # preset name, or the file / folder name
    kind: str                 # "preset" | "gguf" | "npz" | "hf-dir"
    sha256: str | None = None  # of the file (None for presets and folders)

    @property
    def display(self) -> str:
        return f"{self.name} ({self.kind})" if self.kind != "preset" else f"{self.name} (preset)"

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "sha256": self.sha256}


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
