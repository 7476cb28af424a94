"""Errors a user can cause.  The CLI turns them into one line on stderr and exit 2."""


class UserError(Exception):
    """Bad input or a missing tool: the message names the problem and what is allowed."""


class ToolMissing(UserError):
    """A required external tool (C++ compiler, Verilator, Yosys ...) is not usable."""
