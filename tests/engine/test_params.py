import pytest

from fpgallm.engine.params import EngineParams, WeightFormat


def test_defaults_and_derived():
    p = EngineParams()
    assert p.bytes_per_cycle == 4 * 256 // 8
    assert p.macs_per_cycle == 8 * 32
    assert p.peak_bandwidth_gbs == pytest.approx(128 * 200e6 / 1e9)


@pytest.mark.parametrize("kwargs,message", [
    ({"batch": 9}, "EngineParams.batch must be an integer in [1, 8], got 9"),
    ({"port_width": 384}, "EngineParams.port_width must be a power of two, got 384"),
    ({"gemv_lanes": 0}, "EngineParams.gemv_lanes must be an integer in [1, 1024], got 0"),
    ({"weight_formats": ()}, "EngineParams.weight_formats must be a non-empty tuple of WeightFormat, got ()"),
    ({"max_head_dim": 257}, "EngineParams.max_head_dim must be an integer in [1, 256], got 257"),
    ({"max_head_dim": 0}, "EngineParams.max_head_dim must be an integer in [1, 256], got 0"),
    ({"clock_mhz": 0}, "EngineParams.clock_mhz must be a number in [1, 1000], got 0"),
])
def test_validation_messages(kwargs, message):
    with pytest.raises(ValueError) as exc:
        EngineParams(**kwargs)
    assert str(exc.value) == message


def test_weight_format_names():
    assert WeightFormat("int4-group-min") is WeightFormat.INT4_GROUP_MIN
    assert WeightFormat.INT4_GROUP_MIN in EngineParams().weight_formats
