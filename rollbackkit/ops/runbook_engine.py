"""A papermill engine that reports progress per code cell (``cell i/n: title``) to a callback
and runs the kernel over IPC.

papermill's own engine shows a tqdm bar; rollbackkit's faces (CLI, widgets, server) need a
callback instead. This subclass wraps the execution manager's ``cell_start`` and changes
nothing else, so execution, autosave and error handling stay papermill's.

The kernel talks to papermill over IPC (Unix domain sockets in a private temporary folder)
instead of TCP on localhost: nothing listens on a port, and the kernel has no reason to
print ipykernel's "Kernel is running over TCP without encryption" warning (on the terminal,
or as a red stderr box when a runbook is started from a notebook). Where IPC is not
available (Windows, or a temporary folder whose path is too long for a socket), the kernel
runs over TCP as before.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from papermill.engines import NBClientEngine, papermill_engines

ENGINE = "rollbackkit"
_SOCKET_PATH_MAX = 100  # a Unix socket path holds 104 (macOS) to 108 (Linux) bytes


class ProgressEngine(NBClientEngine):  # type: ignore[misc]
    """papermill's nbclient engine, over IPC, plus a ``rollbackkit_progress(i, n, title)`` hook."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        """Execute like :class:`NBClientEngine` on an IPC kernel, calling the progress hook
        with ``(0, n, "starting the kernel")`` first, then before each code cell."""
        progress = kwargs.pop("rollbackkit_progress", None)
        if progress is not None:
            _report_cells(nb_man, progress)
        with _ipc_kernel_manager() as manager:
            kwargs.setdefault("kernel_manager_class", manager)
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


def _report_cells(nb_man: Any, progress: Callable[[int, int, str], None]) -> None:
    """Wrap ``nb_man.cell_start`` so each code cell reports its number among the code cells."""
    cells = nb_man.nb.cells
    numbers: dict[int, int] = {}
    for index, cell in enumerate(cells):
        if cell.get("cell_type") == "code":
            numbers[index] = len(numbers) + 1
    total = len(numbers)
    original = nb_man.cell_start

    def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
        index = cell_index or 0
        if index in numbers:
            progress(numbers[index], total, cell_title(cells, index))
        return original(cell, cell_index, **kw)

    nb_man.cell_start = cell_start
    progress(0, total, "starting the kernel")


def cell_title(cells: Any, index: int) -> str:
    """A code cell's title: the heading of the markdown cell just before it, the parameter
    cells by their role, else the cell's first line of code."""
    cell = cells[index]
    tags = cell.get("metadata", {}).get("tags", [])
    if "injected-parameters" in tags:
        return "parameters given"
    if "parameters" in tags:
        return "parameter defaults"
    previous = cells[index - 1] if index > 0 else None
    if previous is not None and previous.get("cell_type") == "markdown":
        heading = next((line for line in previous.source.splitlines() if line.strip()), "")
        if heading.startswith("#"):
            return heading.lstrip("#").strip()
    lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
    code = [line for line in lines if not line.startswith("#")]
    return (code or lines or [""])[0]


@contextmanager
def _ipc_kernel_manager() -> Iterator[type]:
    """A quiet kernel manager class that uses IPC sockets in a private temporary folder
    (removed afterwards), or TCP where IPC is not possible."""
    if sys.platform == "win32":
        yield _quiet_manager(None)
        return
    with tempfile.TemporaryDirectory(prefix="rollbackkit-kernel-") as folder:
        too_long = len(os.path.join(folder, "k-ipc-99")) > _SOCKET_PATH_MAX
        yield _quiet_manager(None if too_long else folder)


def _quiet_manager(folder: str | None) -> type:
    """nbclient's kernel manager, with ``transport="ipc"`` and its connection file in ``folder``
    (the sockets are ``folder/k-ipc-<n>``; None: TCP), that does not interrupt an idle kernel
    it shuts down (ipykernel would log "KeyboardInterrupt caught in kernel" for nothing)."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class QuietKernelManager(AsyncKernelManager):  # type: ignore[misc]
        """An nbclient kernel manager whose kernel listens on Unix sockets, not TCP."""

        @default("transport")
        def _default_transport(self) -> str:
            return "ipc" if folder else "tcp"

        @default("connection_file")
        def _default_connection_file(self) -> str:
            return os.path.join(folder, "k.json") if folder else ""

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:  # papermill shuts the kernel down only once it is idle
                return
            await super()._async_interrupt_kernel()

    return QuietKernelManager


def register() -> None:
    """Make the engine available to ``papermill.execute_notebook(engine_name=ENGINE)``."""
    if ENGINE not in papermill_engines._engines:
        papermill_engines.register(ENGINE, ProgressEngine)
