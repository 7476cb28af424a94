"""A cycle model of a 16-bit SDR SDRAM for the controller's tests: decodes the commands on
the pins each cycle, keeps the memory, drives read data with the CAS latency, and checks
the protocol and timing (init sequence, tRCD, tRP, tRAS, tRFC, tWR, READ->PRECHARGE,
refresh interval) -- a violation raises ``AssertionError`` naming the cycle and the rule."""

from __future__ import annotations

from fpgallm.units import sdram as S

NAMES = {S.CMD_NOP: "NOP", S.CMD_ACT: "ACT", S.CMD_READ: "READ", S.CMD_WRITE: "WRITE",
         S.CMD_PRE: "PRE", S.CMD_REF: "REF", S.CMD_MRS: "MRS"}


class SdramModel:
    def __init__(self, p: S.SdramParams):
        self.p = p
        self.T = S.timing_cycles(p)
        self.mem: dict[int, int] = {}         # halfword address -> value
        self.open: dict[int, int] = {}        # bank -> open row
        self.t_act: dict[int, int] = {}
        self.t_pre = -10**9
        self.t_ref = -10**9
        self.t_mrs = -10**9
        self.t_read = -10**9
        self.t_wlast = -10**9                 # last write data cycle
        self.refs: list[int] = []
        self.mode = None
        self.init_refs = 0
        self.pre_all_seen = False
        self.out: dict[int, int] = {}         # cycle -> halfword on dq
        self.wq: list[tuple[int, int, int]] = []   # (cycle, halfword address) expected writes
        self.commands: dict[str, int] = {}

    def ready(self) -> bool:
        return self.mode is not None

    def step(self, c: int, cmd: int, ba: int, a: int, dqm: int, dq_o: int, dq_oe: int) -> int:
        """Pins in cycle ``c``; returns the value the SDRAM drives on dq in cycle ``c``."""
        p, T = self.p, self.T
        name = NAMES.get(cmd, f"?{cmd:04b}")
        self.commands[name] = self.commands.get(name, 0) + 1
        bl = p.burst_length
        # write data of an earlier WRITE
        while self.wq and self.wq[0][0] == c:
            _, h, _ = self.wq.pop(0)
            assert dq_oe, f"cycle {c}: write data expected on dq (halfword {h:#x})"
            cur = self.mem.get(h, 0)
            lo = (cur & 0xFF) if dqm & 1 else (dq_o & 0xFF)
            hi = (cur & 0xFF00) if dqm & 2 else (dq_o & 0xFF00)
            self.mem[h] = lo | hi
        if name == "NOP":
            pass
        elif self.mode is None and name not in ("PRE", "REF", "MRS"):
            raise AssertionError(f"cycle {c}: {name} before the mode register is loaded")
        elif name == "PRE":
            assert a & (1 << 10), f"cycle {c}: PRE of one bank (the controller precharges all)"
            for b, t in self.t_act.items():
                if b in self.open:
                    assert c - t >= T["ras"], f"cycle {c}: PRE {c - t} cycles after ACT (tRAS {T['ras']})"
            assert c - self.t_read >= bl, f"cycle {c}: PRE {c - self.t_read} cycles after READ (< BL {bl})"
            assert c - self.t_wlast > T["wr"] - 1, f"cycle {c}: PRE {c - self.t_wlast} cycles after write data (tWR {T['wr']})"
            self.open.clear()
            self.t_pre = c
            self.pre_all_seen = True
        elif name == "REF":
            assert not self.open, f"cycle {c}: REF with rows open"
            assert c - self.t_pre >= T["rp"], f"cycle {c}: REF {c - self.t_pre} cycles after PRE (tRP {T['rp']})"
            assert c - self.t_ref >= T["rfc"], f"cycle {c}: REF {c - self.t_ref} cycles after REF (tRFC {T['rfc']})"
            self.t_ref = c
            if self.mode is None:
                assert self.pre_all_seen, f"cycle {c}: init REF before PRECHARGE ALL"
                self.init_refs += 1
            else:
                self.refs.append(c)
        elif name == "MRS":
            assert self.init_refs >= 2, f"cycle {c}: MRS after {self.init_refs} refreshes (2 needed)"
            assert c - self.t_ref >= T["rfc"], f"cycle {c}: MRS {c - self.t_ref} cycles after REF"
            self.mode = a
            self.t_mrs = c
            assert a == S.mode_register(p), f"cycle {c}: mode {a:#x}, expected {S.mode_register(p):#x}"
        elif name == "ACT":
            assert c - self.t_mrs >= T["mrd"], f"cycle {c}: ACT {c - self.t_mrs} cycles after MRS"
            assert ba not in self.open, f"cycle {c}: ACT of bank {ba} with a row open"
            assert c - self.t_pre >= T["rp"], f"cycle {c}: ACT {c - self.t_pre} cycles after PRE (tRP {T['rp']})"
            assert c - self.t_ref >= T["rfc"], f"cycle {c}: ACT {c - self.t_ref} cycles after REF (tRFC {T['rfc']})"
            self.open[ba] = a
            self.t_act[ba] = c
        elif name in ("READ", "WRITE"):
            assert ba in self.open, f"cycle {c}: {name} to closed bank {ba}"
            assert c - self.t_act[ba] >= T["rcd"], f"cycle {c}: {name} {c - self.t_act[ba]} cycles after ACT (tRCD {T['rcd']})"
            assert not a & (1 << 10), f"cycle {c}: {name} with auto precharge"
            col = a & ((1 << p.col_bits) - 1)
            assert col % bl == 0, f"cycle {c}: {name} column {col} not burst aligned"
            base = ((self.open[ba] << 2 | ba) << p.col_bits) | col
            if name == "READ":
                for j in range(bl):
                    assert c + p.cas_latency + j not in self.out, f"cycle {c}: READ data collides"
                    self.out[c + p.cas_latency + j] = self.mem.get(base + j, 0)
                self.t_read = c
            else:
                self.wq.insert(0, (c, base, 0))
                for j in range(1, bl):
                    self.wq.append((c + j, base + j, 0))
                self.wq.sort()
                self.t_wlast = c + bl - 1
                # the first halfword is on dq in this very cycle
                _, h, _ = self.wq.pop(0)
                cur = self.mem.get(h, 0)
                assert dq_oe, f"cycle {c}: WRITE without data on dq"
                lo = (cur & 0xFF) if dqm & 1 else (dq_o & 0xFF)
                hi = (cur & 0xFF00) if dqm & 2 else (dq_o & 0xFF00)
                self.mem[h] = lo | hi
        else:
            raise AssertionError(f"cycle {c}: unknown command {cmd:04b}")
        if self.mode is not None and self.refs:
            assert c - self.refs[-1] <= 9 * T["refi"], f"cycle {c}: no REF for {c - self.refs[-1]} cycles"
        if dq_oe:
            assert c not in self.out, f"cycle {c}: controller drives dq while the SDRAM does"
        return self.out.pop(c, 0)

    def read_bytes(self, addr: int, n: int) -> bytes:
        out = bytearray()
        for a in range(addr, addr + n):
            h = self.mem.get(a >> 1, 0)
            out.append((h >> (8 * (a & 1))) & 0xFF)
        return bytes(out)
