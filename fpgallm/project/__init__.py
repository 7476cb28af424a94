"""fpgallm.project: synthesizable projects for a board (``fpgallm generate``).

``design`` describes the wrapped RTL, ``plan`` computes every file (pure, Jinja2 templates
from ``rtl_templates/``), ``writer`` puts the plan on disk atomically, ``build`` runs the
whole command.  The fit checks and the engine a board gets (``fpgallm.estimate.fit``,
``fpgallm.estimate.engine_plan``) live in ``estimate``, which this package builds on.
See docs/boards.md.
"""
