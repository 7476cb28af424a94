import pytest

from fpgallm.sim.axi_mem import AxiMemConfig, design
from fpgallm.sim.runner import lint
from tests.benchutil import assert_bench_passes, bench_points


@pytest.mark.parametrize("bench,point", bench_points("axi_mem"))
def test_axi_memory_model(bench, point, seed, tmp_path):
    report = assert_bench_passes(bench, point, seed, tmp_path)
    assert len(report.tests) == 4


def test_model_is_lint_clean():
    d = design(AxiMemConfig())
    params = [f"-G{k}={v}" for k, v in d.parameters]
    assert lint(d, extra_args=tuple(params)) == []


@pytest.mark.parametrize("kwargs,message", [
    ({"rate_num": 3, "rate_den": 2}, "AxiMemConfig.rate_num must be <= rate_den=2 (at most one beat per cycle), got 3"),
    ({"max_outstanding": 6}, "AxiMemConfig.max_outstanding must be a power of two, got 6"),
    ({"data_width": 48}, "AxiMemConfig.data_width must be one of 32, 64, ..., 1024, got 48"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError) as exc:
        AxiMemConfig(**kwargs)
    assert str(exc.value) == message
