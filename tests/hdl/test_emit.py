"""Verilog emission: the pinned digests of a handful of designs, and the conversion cache."""

from __future__ import annotations

import dataclasses

from fpgallm.hdl import emit
from tests.benchutil import load_benchmark


def test_generated_verilog_is_pinned():
    """Units and the smallest engine emit exactly the pinned Verilog: a change that must not
    alter the hardware fails here, naming the points (re-pin an intended change with
    ``python benchmarks/verilog_digests.py --write``)."""
    bench = load_benchmark("verilog_digests")
    now, pinned = bench.digests(), bench.pinned()
    assert set(now) == set(pinned)
    changed = sorted(pt for pt in now if now[pt] != pinned[pt])
    assert not changed, f"generated Verilog changed at {changed}"


def _design(text: str) -> emit.Emitted:
    return emit.Emitted(top="t", text=text, ports=("a", "b"), parameters=(("W", 8),),
                        sim_sources=(("m.v", "module m; endmodule\n"),))


def test_a_design_is_converted_once(tmp_path, monkeypatch):
    """The second request for the same key returns the stored design, equal field by field
    (tuples stay tuples) without converting; another key converts again; and the stored
    entry is keyed by fpgallm's source, so an edited generator is converted anew."""
    monkeypatch.setenv("FPGALLM_CACHE", str(tmp_path))
    calls = []

    def make(text):
        def conv():
            calls.append(text)
            return _design(text)
        return conv

    first = emit.cached({"point": 1}, make("one"))
    again = emit.cached({"point": 1}, make("never"))
    assert calls == ["one"] and again == first and dataclasses.astuple(again) == dataclasses.astuple(first)
    assert emit.cached({"point": 2}, make("two")).text == "two" and calls == ["one", "two"]
    monkeypatch.setattr(emit, "source_digest", lambda: "an edited generator")
    assert emit.cached({"point": 1}, make("edited")).text == "edited"
    assert calls == ["one", "two", "edited"]
