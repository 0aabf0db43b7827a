"""The ``dr-serving`` command line, apart from the areas it fronts.

``dr_cli.errors``, ``dr_cli.types`` and ``dr_cli.help`` are leaves (they import nothing of ours), so the
predictor, the zoo, the load lab and deploy all use them without depending on each other. ``dr_cli.main`` is
the root: it sits above every area and names their ``commands`` modules in a static, lazily imported registry.
"""

from __future__ import annotations

__all__: list[str] = []
