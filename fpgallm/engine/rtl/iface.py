"""Interfaces inside the decode-engine RTL: how an execution unit talks to the
controller, the vector register file and off-chip memory.

The engine executes one instruction at a time (docs/ARCHITECTURE.md, "Engine RTL").  The
controller decodes an instruction, resolves what the unit needs to know (the source
registers' format tags, the sequences' ``POS`` and ``TOKEN``) and hands it to the one
*execution unit* that implements the opcode as an :data:`exec_cmd_layout` beat.  The unit
then owns every shared port until it pulses ``done``:

=========  ==========================================================================
``cmd``    In stream of :func:`exec_cmd_layout` (the instruction and its context)
``done``   Out, one-cycle pulse: the instruction has completed, all its register and
           memory writes included; ``sres`` is valid in that cycle (``ARGMAX``)
``sres``   Out, per sequence, the scalar result (``ARGMAX`` only)
``vra``    vector read port A   (:func:`vec_read_signature`)
``vrb``    vector read port B
``vw``     vector write port    (:func:`vec_write_signature`)
``era``    exponent read port   (:func:`exp_read_signature`), block-scaled registers
``ew``     exponent write port  (:func:`exp_write_signature`)
``mr``     memory read port     (:func:`mem_read_signature`)
``mw``     memory write port    (:func:`mem_write_signature`)
=========  ==========================================================================

A unit drives only the ports it uses; the others stay idle (valid low, ready low: the
component's reset values).  All ports are valid/ready streams
(:mod:`amaranth.lib.stream`: a beat moves when ``valid & ready``).

Vector register file
--------------------
``V[r]`` of sequence ``s`` holds signed ``REG_BITS`` (24) bit elements, ``L =
vector_lanes`` per beat.  A read request ``{reg, seq, start, count}`` (``start`` a multiple
of ``L``) returns ``ceil(count / L)`` beats of ``L`` elements in order, ``last`` set on the
final beat; lanes past ``count`` on that beat are don't-care.  A write request
``{reg, seq, start, count}`` is followed by ``ceil(count / L)`` data beats; lanes past
``count`` are not written.  A beat is in the register when it is accepted (a read
requested after that sees it).  Requests queue: a port accepts the next request when the
previous one's last beat has moved.  Registers ``0..vregs-1`` have
``EngineParams.vreg_elems`` elements, register 15 (the logits) ``max_vocab``.

Exponents of block-scaled registers (after ``QUANT``): one unsigned
:data:`EXP_BITS`-bit exponent per group of :data:`ACT_GROUP` elements, addressed by group
(``start`` and ``count`` in groups), one exponent per beat.

Off-chip memory
---------------
One flat byte address space striped over ``mem_ports`` AXI4 ports
(:class:`fpgallm.engine.compiler.MemoryImage`).  The unit sees *stripe words*: ``W =
mem_ports * port_width`` bits, the bytes ``[a, a + W/8)`` of the flat space with the byte
at ``a`` in bits ``7:0``.  A read request ``{addr, beats}`` (``addr`` a multiple of
``W/8``) returns ``beats`` stripe words in order (``last`` on the final one).  A write
request ``{addr, beats}`` is followed by ``beats`` data beats with a byte strobe; the
memory write port pulses ``wdone`` when every write response of a request has returned,
in request order.
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.engine.formats import ACT_GROUP, EXP_BITS, REG_BITS
from fpgallm.engine.isa import FIELDS
from fpgallm.engine.params import EngineParams

__all__ = ["ACT_GROUP", "REG_BITS", "EXP_BITS", "LOGITS_REG", "ELEM_BITS", "ADDR_BITS",
           "BEATS_BITS", "SCALAR_BITS", "FRAC_BITS", "instruction_layout", "exec_cmd_layout",
           "vec_req_layout", "vec_beat_layout", "vec_read_signature", "vec_write_signature",
           "exp_read_signature", "exp_write_signature", "mem_req_layout", "mem_read_signature",
           "mem_write_signature", "exec_signature", "stripe_bits"]

LOGITS_REG = 15
ELEM_BITS = 20         # element indices and counts (the ISA's n / m fields)
ADDR_BITS = 40         # byte addresses (the ISA's addr field)
BEATS_BITS = 24        # stripe words per memory request
SCALAR_BITS = 24       # scalar registers S0..S15
FRAC_BITS = 8          # a register's format tag: fraction bits


def stripe_bits(p: EngineParams) -> int:
    """Bits of one stripe word: all memory ports side by side."""
    return p.mem_ports * p.port_width


def instruction_layout() -> data.StructLayout:
    """The decoded instruction (docs/ISA.md), one member per field."""
    return data.StructLayout({name: unsigned(width) for name, _lsb, width in FIELDS})


def exec_cmd_layout(p: EngineParams) -> data.StructLayout:
    """One instruction for an execution unit, with its context:

    - ``ins``: the instruction's fields;
    - ``frac_a`` / ``frac_b``: fraction bits (format tag) of source registers ``a`` / ``b``;
    - ``nseq``: sequences in this run (1..batch); the unit executes for each of them;
    - ``chunk``: the lanes are prompt positions of one sequence: KV-cache accesses of every
      lane go to sequence 0's head blocks (``KVAPPEND``, ``ATTN``);
    - ``pos`` / ``token``: ``S[POS]`` and ``S[TOKEN]`` of each sequence.
    """
    return data.StructLayout({
        "ins": instruction_layout(),
        "frac_a": unsigned(FRAC_BITS),
        "frac_b": unsigned(FRAC_BITS),
        "nseq": unsigned(4),
        "chunk": unsigned(1),
        "pos": data.ArrayLayout(unsigned(SCALAR_BITS), p.batch),
        "token": data.ArrayLayout(unsigned(SCALAR_BITS), p.batch),
    })


def vec_req_layout() -> data.StructLayout:
    return data.StructLayout({"reg": unsigned(4), "seq": unsigned(3),
                              "start": unsigned(ELEM_BITS), "count": unsigned(ELEM_BITS + 1)})


def vec_beat_layout(p: EngineParams) -> data.StructLayout:
    return data.StructLayout({"data": data.ArrayLayout(signed(REG_BITS), p.vector_lanes),
                              "last": unsigned(1)})


def vec_read_signature(p: EngineParams) -> wiring.Signature:
    """Unit side (``Out``): ``req`` out, ``data`` in."""
    return wiring.Signature({"req": Out(stream.Signature(vec_req_layout())),
                             "data": In(stream.Signature(vec_beat_layout(p)))})


def vec_write_signature(p: EngineParams) -> wiring.Signature:
    """Unit side: ``req`` out, then ``data`` out."""
    return wiring.Signature({"req": Out(stream.Signature(vec_req_layout())),
                             "data": Out(stream.Signature(vec_beat_layout(p)))})


def exp_beat_layout() -> data.StructLayout:
    return data.StructLayout({"exp": unsigned(EXP_BITS), "last": unsigned(1)})


def exp_read_signature(p: EngineParams) -> wiring.Signature:
    return wiring.Signature({"req": Out(stream.Signature(vec_req_layout())),
                             "data": In(stream.Signature(exp_beat_layout()))})


def exp_write_signature(p: EngineParams) -> wiring.Signature:
    return wiring.Signature({"req": Out(stream.Signature(vec_req_layout())),
                             "data": Out(stream.Signature(exp_beat_layout()))})


def mem_req_layout() -> data.StructLayout:
    return data.StructLayout({"addr": unsigned(ADDR_BITS), "beats": unsigned(BEATS_BITS)})


def mem_read_signature(p: EngineParams) -> wiring.Signature:
    """Unit side: ``req`` out; ``data`` in (stripe words, ``last`` on a request's final one)."""
    w = stripe_bits(p)
    return wiring.Signature({
        "req": Out(stream.Signature(mem_req_layout())),
        "data": In(stream.Signature(data.StructLayout({"data": unsigned(w), "last": unsigned(1)}))),
    })


def mem_write_signature(p: EngineParams) -> wiring.Signature:
    """Unit side: ``req`` out, ``data`` out (stripe word and byte strobe), ``wdone`` in."""
    w = stripe_bits(p)
    return wiring.Signature({
        "req": Out(stream.Signature(mem_req_layout())),
        "data": Out(stream.Signature(data.StructLayout({"data": unsigned(w), "strb": unsigned(w // 8)}))),
        "wdone": In(1),
    })


def exec_signature(p: EngineParams) -> wiring.Signature:
    """The signature every execution unit implements (unit side)."""
    return wiring.Signature({
        "cmd": In(stream.Signature(exec_cmd_layout(p))),
        "done": Out(1),
        "sres": Out(data.ArrayLayout(unsigned(SCALAR_BITS), p.batch)),
        "vra": Out(vec_read_signature(p)),
        "vrb": Out(vec_read_signature(p)),
        "vw": Out(vec_write_signature(p)),
        "era": Out(exp_read_signature(p)),
        "ew": Out(exp_write_signature(p)),
        "mr": Out(mem_read_signature(p)),
        "mw": Out(mem_write_signature(p)),
    })
