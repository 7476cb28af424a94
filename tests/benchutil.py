"""Helpers for tests that run a unit's cocotb bench at each of its parameter points."""

from __future__ import annotations

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
