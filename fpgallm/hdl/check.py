"""Validation of the fields of a frozen ``Params`` dataclass: one message format, naming the
class, the field and the bad value."""

from __future__ import annotations

import enum

__all__ = ["check_int", "check_enum"]


def check_int(owner: str, name: str, v, lo: int, hi: int) -> None:
    """``v`` is an ``int`` (not a ``bool``) in ``[lo, hi]``, else ``ValueError``."""
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError(f"{owner}.{name} must be an integer in [{lo}, {hi}], got {v!r}")


def check_enum(owner: str, name: str, v, enum_type: type[enum.Enum]) -> None:
    """``v`` is a member of ``enum_type``, else ``ValueError``."""
    if not isinstance(v, enum_type):
        raise ValueError(f"{owner}.{name} must be a {enum_type.__name__}, got {v!r}")
