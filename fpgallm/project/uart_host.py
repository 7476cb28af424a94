"""Host side of the UART host bridge (:mod:`fpgallm.units.host_bridge`): load an engine
project's memory image into the board and generate tokens, over a serial port.

Standard library only (plus ``pyserial`` to open a device path), so that the file also runs
on its own: the ULX3S engine project carries a copy as ``sw/uart_host.py``::

    python sw/uart_host.py /dev/ttyUSB0 --prompt-ids 256,84,104,101 --tokens 16

loads ``sw/mem0.bin`` (unless ``--no-load``), then runs the engine once per prompt token and
once per new token (greedy: each run's next token is the following run's input), printing
the token ids.  The protocol is half duplex: every command waits for its reply.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ACK, NAK = 0x06, 0x15
CMD_WRITE, CMD_READ, CMD_REG_WRITE, CMD_REG_READ, CMD_PING = 1, 2, 3, 4, 5
REG_CTRL, REG_STATUS, REG_PROG_LO, REG_PROG_HI, REG_NSEQ = 0x08, 0x0C, 0x14, 0x18, 0x1C
REG_POS, REG_TOKEN = 0x40, 0x44          # + 8 * sequence
STATUS_DONE, STATUS_ERROR = 2, 4


class LinkError(Exception):
    pass


class Link:
    """The bridge's commands over ``port`` (an object with ``write(bytes)`` and
    ``read(n) -> bytes``, e.g. a ``serial.Serial`` with a timeout)."""

    def __init__(self, port, chunk: int = 4096):
        self.port = port
        self.chunk = chunk

    def _cmd(self, data: bytes, reply: int) -> bytes:
        self.port.write(data)
        got = b""
        while len(got) < reply:
            part = self.port.read(reply - len(got))
            if not part:
                raise LinkError(f"no reply to command 0x{data[0]:02x} ({len(got)} of {reply} bytes)")
            got += part
        return got

    def _ack(self, data: bytes) -> None:
        r = self._cmd(data, 1)
        if r[0] != ACK:
            raise LinkError(f"command 0x{data[0]:02x}: reply 0x{r[0]:02x}, expected ACK")

    def ping(self) -> None:
        self._ack(bytes([CMD_PING]))

    def write(self, addr: int, data: bytes) -> None:
        for off in range(0, len(data), self.chunk):
            part = data[off:off + self.chunk]
            self._ack(bytes([CMD_WRITE]) + (addr + off).to_bytes(4, "little")
                      + len(part).to_bytes(4, "little") + part)

    def read(self, addr: int, n: int) -> bytes:
        out = b""
        for off in range(0, n, self.chunk):
            k = min(self.chunk, n - off)
            out += self._cmd(bytes([CMD_READ]) + (addr + off).to_bytes(4, "little")
                             + k.to_bytes(4, "little"), k)
        return out

    def reg_write(self, offset: int, value: int) -> None:
        self._ack(bytes([CMD_REG_WRITE, offset]) + (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def reg_read(self, offset: int) -> int:
        return int.from_bytes(self._cmd(bytes([CMD_REG_READ, offset]), 4), "little")


def load_image(link: Link, project: Path, verify: bool = True) -> int:
    """Write ``sw/mem0.bin`` at address 0 (and read it back when ``verify``); returns bytes."""
    image = (Path(project) / "sw/mem0.bin").read_bytes()
    link.write(0, image)
    if verify and link.read(0, len(image)) != image:
        raise LinkError("the memory image read back differs from sw/mem0.bin")
    return len(image)


def run(link: Link, program: int, token: int, pos: int, timeout_s: float = 60.0) -> int:
    """One engine run of sequence 0: ``token`` at position ``pos``; returns the next token."""
    link.reg_write(REG_POS, pos)
    link.reg_write(REG_TOKEN, token)
    link.reg_write(REG_NSEQ, 1)
    link.reg_write(REG_PROG_LO, program & 0xFFFFFFFF)
    link.reg_write(REG_PROG_HI, program >> 32)
    link.reg_write(REG_CTRL, 1)
    t0 = time.monotonic()
    while True:
        status = link.reg_read(REG_STATUS)
        if status & STATUS_ERROR:
            raise LinkError(f"the engine stopped with an error (STATUS 0x{status:x})")
        if status & STATUS_DONE:
            return link.reg_read(REG_TOKEN)
        if time.monotonic() - t0 > timeout_s:
            raise LinkError(f"no done after {timeout_s:g} s (STATUS 0x{status:x})")


def generate(link: Link, program: int, prompt: list[int], new_tokens: int) -> list[int]:
    """Greedy generation: one run per prompt token (the last gives the first new token),
    then one per new token; returns the new tokens."""
    if not prompt:
        raise ValueError("the prompt needs at least one token")
    nxt = None
    for pos, tok in enumerate(prompt):
        nxt = run(link, program, tok, pos)
    out = [nxt]
    while len(out) < new_tokens:
        out.append(run(link, program, out[-1], len(prompt) + len(out) - 1))
    return out[:new_tokens]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="load an fpgallm engine project over the UART host "
                                             "bridge and generate tokens")
    ap.add_argument("device", help="serial port, e.g. /dev/ttyUSB0")
    ap.add_argument("--project", default=str(Path(__file__).resolve().parent.parent),
                    help="project folder (default: the one this file is in)")
    ap.add_argument("--baud", type=int, default=1_000_000)
    ap.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--no-load", action="store_true", help="the image is already loaded")
    a = ap.parse_args(argv)
    try:
        import serial  # pyserial
    except ImportError:
        print("uart_host: pip install pyserial", file=sys.stderr)
        return 2
    mm = json.loads((Path(a.project) / "sw/memory_map.json").read_text())
    link = Link(serial.Serial(a.device, a.baud, timeout=2.0))
    link.ping()
    if not a.no_load:
        n = load_image(link, Path(a.project))
        print(f"loaded {n} bytes")
    prompt = [int(x) for x in a.prompt_ids.split(",")]
    print(" ".join(str(t) for t in generate(link, mm["program"], prompt, a.tokens)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
