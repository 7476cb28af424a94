import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpgallm.engine.isa import FIELDS, Instruction, Op, assemble, disassemble


@st.composite
def instructions(draw):
    values = {name: draw(st.integers(0, (1 << width) - 1)) for name, _l, width in FIELDS
              if name != "op"}
    return Instruction(draw(st.sampled_from(list(Op))), **values)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(instructions(), min_size=1, max_size=20))
def test_encode_decode_and_text_round_trip(program):
    blob = assemble(program)
    assert len(blob) == 16 * len(program)
    assert disassemble(blob) == program
    assert [Instruction.parse(i.text()) for i in program] == program


def test_fields_tile_128_bits_without_overlap():
    used = 0
    for _name, lsb, width in FIELDS:
        mask = ((1 << width) - 1) << lsb
        assert used & mask == 0
        used |= mask
    assert used == (1 << 128) - 1


def test_known_encoding():
    ins = Instruction(Op.GEMV, dst=2, a=1, mode=3, n=576, m=1536, addr=0x1234_5678_9A)
    word = int.from_bytes(ins.encode(), "little")
    assert word & 0x3F == 0x10
    assert (word >> 24) & 0xFFFFF == 576
    assert (word >> 64) & ((1 << 40) - 1) == 0x1234_5678_9A


def test_field_range_error_names_field_and_value():
    with pytest.raises(ValueError) as exc:
        Instruction(Op.GEMV, dst=16)
    assert str(exc.value) == "Instruction.dst must be an integer in [0, 15] (4 bits), got 16 in GEMV"


def test_parse_errors():
    with pytest.raises(ValueError, match=r"^unknown opcode 'FOO'; opcodes: NOP, HALT"):
        Instruction.parse("FOO n=1")
    with pytest.raises(ValueError, match=r"^bad field 'q=1' in 'GEMV q=1'; fields: dst, a, b"):
        Instruction.parse("GEMV q=1")
    with pytest.raises(ValueError, match=r"^Instruction.op: unknown opcode 63$"):
        Instruction.decode((63).to_bytes(16, "little"))


def test_every_opcode_fits_the_op_field():
    width = dict((n, w) for n, _l, w in FIELDS)["op"]
    assert all(0 <= op < (1 << width) for op in Op)
