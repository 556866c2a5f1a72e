"""The ``rollbackkit`` command: a thin typer layer over the Python API; no logic lives here.

One module per area (registry, checks, serving, situation, predictions, runbooks, integrations,
journal, demo), the shared options and output in :mod:`rollbackkit.cli.common`, and the root
app with its entry point in :mod:`rollbackkit.cli.entry`.
"""

from rollbackkit.cli.entry import app, main, optional_values

__all__ = ["app", "main", "optional_values"]
