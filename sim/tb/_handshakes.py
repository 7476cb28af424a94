"""Cycle-accurate handshake recorder for the latency / throughput checks of unit benches.

:class:`Handshakes` samples ``<prefix>__valid`` and ``<prefix>__ready`` of named stream ports
in the read-only phase of every clock cycle and records the cycle numbers of each transfer.
"""

from __future__ import annotations


class Handshakes:
    def __init__(self, dut, clk, prefixes):
        self.clk = clk
        self.ports = {p: (getattr(dut, f"{p}__valid"), getattr(dut, f"{p}__ready"))
                      for p in prefixes}
        self.cycles = {p: [] for p in prefixes}
        self.now = 0
        self._task = None

    def start(self):
        import cocotb

        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self):
        from cocotb.triggers import ReadOnly, RisingEdge

        while True:
            await ReadOnly()
            for p, (valid, ready) in self.ports.items():
                if valid.value and ready.value:
                    self.cycles[p].append(self.now)
            await RisingEdge(self.clk)
            self.now += 1
