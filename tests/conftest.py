"""Shared pytest fixtures.  Every random stimulus is seeded; the seed is printed."""

from __future__ import annotations

import os

import pytest

SEED = int(os.environ.get("FPGALLM_SEED", "20261126"))


def pytest_report_header(config):
    return f"fpgallm seed: {SEED} (set FPGALLM_SEED to change)"


@pytest.fixture
def seed() -> int:
    print(f"seed {SEED}")
    return SEED
