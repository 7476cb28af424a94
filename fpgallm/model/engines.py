"""Registry of inference engines for ``fpgallm run --engine NAME``.

An engine is built from a :class:`~fpgallm.model.model.Model` by a factory and offers
``generate(prompt_ids, max_new_tokens) -> list[int]`` (greedy, stopping after the model's
EOS token).  Entries are ``"module:attribute"`` strings imported on first use, so listing the
engines costs nothing and a later engine plugs in with one :func:`register_engine` call (or a
line in ``_BUILTIN``): ``golden`` (the bit-exact quantized model) and ``rtl`` (Verilator).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

from fpgallm.errors import UserError


class Engine(Protocol):
    def generate(self, prompt_ids: list[int], max_new_tokens: int) -> list[int]: ...


@dataclass(frozen=True)
class EngineEntry:
    name: str
    target: str        # "package.module:factory", factory(model) -> Engine
    description: str


_REGISTRY: dict[str, EngineEntry] = {}


def register_engine(name: str, target: str, description: str) -> None:
    """Add (or replace) the engine ``name``; ``target`` is ``"module:factory"``."""
    if ":" not in target:
        raise ValueError(f"register_engine: target {target!r} must be 'module:factory'")
    _REGISTRY[name] = EngineEntry(name, target, description)


def engines() -> dict[str, EngineEntry]:
    return dict(_REGISTRY)


def make_engine(name: str, model) -> Engine:
    """Build engine ``name`` for ``model``; :class:`UserError` naming the available ones otherwise."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise UserError(f"unknown engine {name!r}; available: {', '.join(_REGISTRY)}")
    mod, attr = entry.target.split(":")
    return getattr(importlib.import_module(mod), attr)(model)


class FloatEngine:
    """The float NumPy reference as an engine."""

    def __init__(self, model):
        from fpgallm.model.reference import Reference

        self.reference = Reference(model)
        self.eos = model.spec.eos_token_id

    def generate(self, prompt_ids, max_new_tokens):
        return self.reference.generate(prompt_ids, max_new_tokens).ids


register_engine("float", "fpgallm.model.engines:FloatEngine", "float32 NumPy reference transformer")
register_engine("golden", "fpgallm.engine.golden:GoldenEngine", "bit-exact quantized engine (compiler + golden model of the decode engine)")
register_engine("rtl", "fpgallm.engine.rtl_engine:RtlEngine", "the engine RTL in Verilator (bit-exact with golden)")
