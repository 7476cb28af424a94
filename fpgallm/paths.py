"""Where the project's data folders live (boards/, rtl_templates/)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOARDS_DIR = ROOT / "boards"
TEMPLATES_DIR = ROOT / "rtl_templates"
