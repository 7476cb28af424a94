"""The host side of the UART bridge (fpgallm/project/uart_host.py) against a byte-level model
of the bridge's protocol (tests/units/test_host_bridge.py checks the RTL speaks it) with an
engine stand-in behind the registers."""

from __future__ import annotations

import numpy as np
import pytest

from fpgallm.project import uart_host as U
from fpgallm.units import host_bridge as H


class FakeBoard:
    """The bridge protocol over a byte stream: memory, registers, and an engine whose run
    sets TOKEN[0] = (7 * token + pos) mod 258 and STATUS done after ``busy_polls`` reads."""

    def __init__(self, size: int, busy_polls: int = 2):
        self.mem = bytearray(size)
        self.regs = {0x0C: 0}
        self.out = b""
        self.busy_polls = busy_polls
        self.polls = 0
        self.runs: list[tuple[int, int, int]] = []       # (pos, token, program)

    def write(self, data: bytes) -> None:
        op = data[0]
        assert op in (H.CMD_WRITE, H.CMD_READ, H.CMD_REG_WRITE, H.CMD_REG_READ, H.CMD_PING), op
        assert H.CMD_WRITE == U.CMD_WRITE and H.ACK == U.ACK     # one protocol
        if op == H.CMD_PING:
            self.out += bytes([H.ACK])
        elif op in (H.CMD_WRITE, H.CMD_READ):
            addr, n = int.from_bytes(data[1:5], "little"), int.from_bytes(data[5:9], "little")
            if op == H.CMD_WRITE:
                assert len(data) == 9 + n
                self.mem[addr:addr + n] = data[9:]
                self.out += bytes([H.ACK])
            else:
                assert len(data) == 9
                self.out += bytes(self.mem[addr:addr + n])
        elif op == H.CMD_REG_WRITE:
            reg, val = data[1], int.from_bytes(data[2:6], "little")
            assert len(data) == 6
            self.regs[reg] = val
            if reg == U.REG_CTRL and val & 1:
                self.runs.append((self.regs[U.REG_POS], self.regs[U.REG_TOKEN], self.regs[U.REG_PROG_LO]))
                self.regs[0x0C] = 1
                self.polls = 0
            self.out += bytes([H.ACK])
        else:
            reg = data[1]
            assert len(data) == 2
            if reg == U.REG_STATUS and self.regs[0x0C] == 1:
                self.polls += 1
                if self.polls >= self.busy_polls:
                    pos, tok, _ = self.runs[-1]
                    self.regs[0x0C] = U.STATUS_DONE
                    self.regs[U.REG_TOKEN] = (7 * tok + pos) % 258
            self.out += self.regs.get(reg, 0).to_bytes(4, "little")

    def read(self, n: int) -> bytes:
        got, self.out = self.out[:n], self.out[n:]
        return got


def test_load_and_generate(tmp_path, seed):
    print("seed", seed)
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw/mem0.bin").write_bytes(image)
    board = FakeBoard(16_384)
    link = U.Link(board, chunk=3000)
    link.ping()
    assert U.load_image(link, tmp_path) == len(image)
    assert bytes(board.mem[:len(image)]) == image
    prompt = [256, 84, 104]
    out = U.generate(link, 9000, prompt, 4)
    # greedy: the prompt's runs at positions 0..2, then each new token fed back
    want, tok = [], None
    for pos, t in enumerate(prompt):
        tok = (7 * t + pos) % 258
    want.append(tok)
    for k in range(3):
        want.append((7 * want[-1] + len(prompt) + k) % 258)
    assert out == want
    assert [r[0] for r in board.runs] == [0, 1, 2, 3, 4, 5]
    assert all(r[2] == 9000 for r in board.runs)


def test_errors_are_named():
    class Dead:
        def write(self, data):
            pass

        def read(self, n):
            return b""
    with pytest.raises(U.LinkError) as e:
        U.Link(Dead()).reg_read(U.REG_STATUS)
    assert str(e.value) == "no reply to command 0x04 (0 of 4 bytes)"

    class Nak(FakeBoard):
        def write(self, data):
            self.out += bytes([H.NAK])
    with pytest.raises(U.LinkError) as e:
        U.Link(Nak(64)).ping()
    assert str(e.value) == "command 0x05: reply 0x15, expected ACK"
