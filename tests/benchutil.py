"""Helpers for tests that run a unit's cocotb bench at each of its parameter points, and
for tests that call a script of ``benchmarks/``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fpgallm.sim.bench import benches, run_point


def bench_points(unit: str):
    """pytest params: one per parameter point of ``unit``'s bench, labelled by the point."""
    bench = benches()[unit]
    return [pytest.param(bench, pt, id=pt.label) for pt in bench.points]


def assert_bench_passes(bench, point, seed, tmp_path):
    report = run_point(bench, point, seed=seed, test_dir=tmp_path)
    lines = [f"{t.name}: {'ok' if t.passed else t.message}" for t in report.tests]
    assert report.passed, f"{bench.unit}[{point.label}] seed {seed}:\n" + "\n".join(lines)
    return report


def load_benchmark(name: str):
    """The module ``benchmarks/<name>.py`` (the scripts are not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
