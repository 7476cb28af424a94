"""Toolchain families as data: every board's flow, the files it renders, and the error for a
toolchain no flow serves."""

from __future__ import annotations

import dataclasses

import pytest

from fpgallm.boards import all_boards, get_board
from fpgallm.paths import TEMPLATES_DIR
from fpgallm.project.flows import FLOWS, flow_of

# what each board is, by its documentation: Alveo cards run RTL kernels in a shell, Zynq and
# Versal boards have a processing system in front of their memory, the Arty and the VCU128
# have memory controllers in the fabric
EXPECTED = {"ulx3s": "ecp5", "icebreaker": "ice40", "u250": "vitis", "u280": "vitis", "u55c": "vitis",
            "v80": "vitis", "kv260": "zynq", "pynq-z2": "zynq", "zcu102": "zynq", "zcu104": "zynq",
            "vck190": "zynq", "arty-a7-100t": "vivado", "vcu128": "vivado", "s10mx": "quartus"}


def test_every_board_has_its_flow():
    assert {name: flow_of(get_board(name)).name for name in sorted(all_boards())} == EXPECTED


def test_a_toolchain_without_a_flow_is_an_error_not_a_default():
    board = dataclasses.replace(get_board("icebreaker"), toolchain="yosys-nextpnr-gowin")
    with pytest.raises(ValueError) as exc:
        flow_of(board)
    assert str(exc.value) == ("icebreaker: no project flow for toolchain 'yosys-nextpnr-gowin' on a fabric "
                              "platform (known: quartus, vivado, yosys-nextpnr-ecp5, yosys-nextpnr-ice40)")


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_each_flow_renders_existing_templates_and_its_readme_partial(flow):
    """Every template a flow names exists, the board top comes first and the constraints
    second; iCE40 has no engine top (the engine does not fit an UP5K), every other flow has."""
    board = get_board(next(n for n, f in EXPECTED.items() if f == flow.name))
    assert (TEMPLATES_DIR / "readme" / f"flow_{flow.name}.md.j2").is_file()
    for engine in (False, True):
        if engine and flow.engine_top is None:
            with pytest.raises(ValueError, match="no board top for the engine"):
                flow.files(board, engine=True)
            continue
        jobs = flow.files(board, engine=engine)
        assert jobs[1][0] == f"constraints/{board.name}.{flow.constraints_ext}"
        for _path, template, _what in jobs:
            assert (TEMPLATES_DIR / template).is_file(), template
    assert (flow.engine_top is None) == (flow.name == "ice40")
