"""fpgallm.project: synthesizable projects for a board (``fpgallm generate``).

``design`` describes the wrapped RTL, ``plan`` computes every file (pure, Jinja2 templates
from ``rtl_templates/``), ``writer`` puts the plan on disk atomically, ``fit`` checks
resources and memory, ``engine_plan`` picks default ``EngineParams`` for a board, ``build``
runs the whole command.  See docs/boards.md.
"""
