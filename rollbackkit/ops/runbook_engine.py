"""A papermill engine that reports progress per cell (``cell i/n``) to a callback.

papermill's own engine shows a tqdm bar; rollbackkit's faces (CLI, widgets, server) need a
callback instead. This subclass wraps the execution manager's ``cell_start`` and changes
nothing else, so execution, autosave and error handling stay papermill's.
"""

from __future__ import annotations

from typing import Any

from papermill.engines import NBClientEngine, papermill_engines

ENGINE = "rollbackkit"


class ProgressEngine(NBClientEngine):  # type: ignore[misc]
    """papermill's nbclient engine plus a ``rollbackkit_progress(i, n, first_line)`` hook."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        """Execute like :class:`NBClientEngine`, calling the progress hook before each cell."""
        progress = kwargs.pop("rollbackkit_progress", None)
        if progress is not None:
            total = len(nb_man.nb.cells)
            original = nb_man.cell_start

            def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                index = (cell_index or 0) + 1
                progress(index, total, (cell.source.splitlines() or [""])[0][:80])
                return original(cell, cell_index, **kw)

            nb_man.cell_start = cell_start
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


def register() -> None:
    """Make the engine available to ``papermill.execute_notebook(engine_name=ENGINE)``."""
    if ENGINE not in papermill_engines._engines:
        papermill_engines.register(ENGINE, ProgressEngine)
