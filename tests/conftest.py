"""Shared pytest fixtures.  Every random stimulus is seeded; the seed is printed."""

from __future__ import annotations

import os

import pytest

SEED = int(os.environ.get("FPGALLM_SEED", "20261126"))


def pytest_collection_modifyitems(config, items):
    """Minutes-long (``slow``) tests first, in their collected order: with pytest-xdist handing
    out one test at a time (``--maxschedchunk=1`` in pyproject.toml) the two workers start
    on the long tests and fill the end of the run with short ones, instead of one worker
    finishing a long test alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_report_header(config):
    return f"fpgallm seed: {SEED} (set FPGALLM_SEED to change)"


@pytest.fixture
def seed() -> int:
    print(f"seed {SEED}")
    return SEED
