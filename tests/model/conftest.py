"""Shared fixtures of the model tests: the SmolLM2 GGUF loaded once per worker."""

from __future__ import annotations

import pytest

from fpgallm.model.load import load_model
from fpgallm.model.reference import Reference


@pytest.fixture(scope="session")
def smollm2():
    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def smollm2_ref(smollm2):
    return Reference(smollm2)
