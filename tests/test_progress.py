"""The progress display of long commands: a rewritten line on a terminal, nothing elsewhere."""

from __future__ import annotations

import io

from fpgallm import progress
from fpgallm.boards import get_board
from fpgallm.project import build


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_generate_names_its_phases_on_a_terminal(tmp_path):
    term = Terminal()
    with progress.reporting("fpgallm generate", term) as shown:
        build.generate("tiny-llama", get_board("icebreaker"), tmp_path / "p")
    assert shown.steps == ["loading tiny-llama", "planning the engine for icebreaker",
                           "planning the project's files", f"writing {tmp_path / 'p'}"]
    text = term.getvalue()
    assert text.startswith("\r\033[Kfpgallm generate: loading tiny-llama ... (")
    assert text.endswith("\r\033[K")          # the line is cleared at the end


def test_nothing_is_written_when_stderr_is_not_a_terminal(tmp_path):
    out = io.StringIO()
    with progress.reporting("fpgallm generate", out) as shown:
        build.generate("tiny-llama", get_board("icebreaker"), tmp_path / "p")
    assert len(shown.steps) == 4 and out.getvalue() == ""


def test_the_line_is_cleared_when_interrupted():
    term = Terminal()
    try:
        with progress.reporting("fpgallm generate", term):
            progress.step("converting the engine to Verilog")
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert term.getvalue().endswith("\r\033[K")
    progress.step("outside any display")      # a no-op
