"""LiveControl: refresh a panel every few seconds without ever blocking the kernel.

``fetch`` (reading git, the log, a server) runs in one worker thread; ``show`` (touching
widgets and figures) runs on the kernel's event loop, the thread every widget message comes
from. One worker means never two fetches at once; the worker waits for each ``show`` before
it fetches again, so a slow browser never piles results up.

Re-running a notebook cell replaces its output: the controls the cell's previous run made
(a live panel, a console) are closed then, so no forgotten worker keeps fetching; controls
made by other cells keep running (two live panels in two cells are two views a user wants).
Outside a notebook nothing is closed for you: call :meth:`LiveControl.close`. The fetches of
one panel never overlap: its control's worker, a console's worker and its own Refresh all
take :func:`fetch_lock` of the panel.
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import ipywidgets as widgets

from rollbackkit.widgets._common import error_html

T = TypeVar("T")

MIN_INTERVAL = 0.5
"""The shortest interval (seconds) the interval box accepts."""

_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_BY_CELL: dict[str, tuple[str, list[weakref.ref[LiveControl[Any]]]]] = {}


@contextmanager
def fetch_lock(owner: Any) -> Iterator[None]:
    """Hold ``owner``'s (a panel's) fetch lock: one of its fetches at a time, whoever asks."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(owner, threading.Lock())
    with lock:
        yield


def serialised(owner: Any, name: str = "_fetch") -> None:
    """Make ``owner.<name>()`` (a panel's fetch, as its own Refresh calls it) take
    :func:`fetch_lock` of ``owner``; idempotent."""
    method = getattr(owner, name, None)
    if not callable(method) or getattr(method, "rollbackkit_locked", False):
        return

    def locked(*args: Any, **kwargs: Any) -> Any:
        with fetch_lock(owner):
            return method(*args, **kwargs)

    locked.rollbackkit_locked = True  # type: ignore[attr-defined]
    setattr(owner, name, locked)


def cell_run() -> tuple[str, str] | None:
    """``(cell id, execute request id)`` of the notebook cell running now (None outside one)."""
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        parent = kernel.get_parent("shell") if kernel is not None else {}
    except Exception:  # no IPython, no kernel, an old ipykernel
        return None
    cell = (parent or {}).get("metadata", {}).get("cellId")
    run = (parent or {}).get("header", {}).get("msg_id")
    return (str(cell), str(run)) if cell and run else None


def _replace_cell_controls(control: LiveControl[Any]) -> None:
    """Register ``control`` with its cell; close the controls of the cell's previous run."""
    where = cell_run()
    if where is None:
        return
    cell, run = where
    previous_run, controls = _BY_CELL.get(cell, (run, []))
    if previous_run != run:
        for ref in controls:
            old = ref()
            if old is not None:
                old.close()
        controls = []
    controls.append(weakref.ref(control))
    _BY_CELL[cell] = (run, controls)


class LiveControl(widgets.HBox, Generic[T]):
    """A play/pause toggle, an interval and "updated HH:MM:SS" (or the last error line).

    Args:
        fetch: Reads fresh data; runs in a worker thread, never on the kernel's thread.
        show: Puts what ``fetch`` returned on screen; runs on the kernel's event loop.
        interval: Seconds between the end of one refresh and the next fetch.
        start: Start playing at once.
        loop: The event loop ``show`` runs on (default: the running loop, i.e. the
            kernel's; without one ``show`` runs in the worker thread).

    A failing ``fetch`` or ``show`` shows one readable line and the next refresh still
    comes. Closing this control, or the widget whose method ``fetch`` is, stops it; so does
    re-running the notebook cell that made it. A new interval counts from the last refresh
    at once (60 s lowered to 1 s refreshes within a second).
    """

    def __init__(
        self,
        fetch: Callable[[], T],
        show: Callable[[T], None],
        interval: float = 5.0,
        *,
        start: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.fetch, self.show = fetch, show
        self.toggle = widgets.ToggleButton(value=False, description="Live", icon="play", tooltip="refresh live")
        self.every = widgets.BoundedFloatText(
            value=max(float(interval), MIN_INTERVAL),
            min=MIN_INTERVAL,
            max=86_400.0,
            description="every (s)",
            layout=widgets.Layout(width="150px"),
        )
        self.status = widgets.HTML()
        self.fetches = 0
        self.errors = 0
        self._loop = loop if loop is not None else _current_loop()
        self._wake = threading.Event()
        self._closed = False
        self._once = False
        self._thread: threading.Thread | None = None
        self._last = 0.0
        super().__init__([self.toggle, self.every, self.status])
        self.add_class("rollbackkit-live")
        self.toggle.observe(self._on_toggle, names="value")
        self.every.observe(lambda _: self._wake.set(), names="value")
        owner = getattr(fetch, "__self__", None)
        self.owner = owner if isinstance(owner, widgets.Widget) else None
        if self.owner is not None:  # the panel whose method fetches: its close stops us
            self.owner.observe(self._on_owner_comm, names="comm")
            serialised(self.owner, fetch.__name__)
        _replace_cell_controls(self)
        if start:
            self.play()

    @property
    def interval(self) -> float:
        """Seconds between refreshes."""
        return float(self.every.value)

    @property
    def playing(self) -> bool:
        """Whether it refreshes on its own."""
        return bool(self.toggle.value) and not self._closed

    def play(self) -> None:
        """Start refreshing (a first refresh comes at once)."""
        self.toggle.value = True

    def pause(self) -> None:
        """Stop refreshing (a fetch already running still shows)."""
        self.toggle.value = False

    def refresh(self) -> None:
        """One refresh now, in the worker, whether playing or not."""
        self._once = True
        if not self._ensure_worker():
            self._wake.set()

    def close(self) -> None:
        """Stop for good and close the widgets."""
        self._closed = True
        self._wake.set()
        for child in (self.toggle, self.every, self.status):
            child.close()
        super().close()

    def _on_toggle(self, change: dict[str, Any]) -> None:
        self.toggle.icon = "pause" if change["new"] else "play"
        if not (change["new"] and self._ensure_worker()):
            self._wake.set()

    def _ensure_worker(self) -> bool:
        """Start the worker unless it runs; whether it was started now."""
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return False
        self._thread = threading.Thread(target=self._work, name="rollbackkit-live", daemon=True)
        self._thread.start()
        return True

    def _work(self) -> None:
        while not self._stopped():
            self._wake.clear()
            if self.playing or self._once:
                self._once = False
                self._tick()
                self._last = time.monotonic()
                self._wait_interval()
            else:
                self._wake.wait()

    def _wait_interval(self) -> None:
        """Wait out the interval since the last refresh; a new interval counts at once, a
        pause, a refresh or close ends the wait."""
        while self.playing and not self._once:
            remaining = self._last + self.interval - time.monotonic()
            if remaining <= 0:
                return
            self._wake.wait(remaining)
            self._wake.clear()

    def _stopped(self) -> bool:
        return self._closed

    def _on_owner_comm(self, change: dict[str, Any]) -> None:
        if change["old"] is not None and change["new"] is None and not self._closed:
            self.close()

    def _tick(self) -> None:
        self.fetches += 1
        try:
            if self.owner is None:
                value = self.fetch()
            else:
                with fetch_lock(self.owner):
                    value = self.fetch()
        except Exception as exc:  # shown as one line; the next refresh still comes
            failure = exc
            self._on_loop(lambda: self._failed(failure))
            return
        self._on_loop(lambda: self._apply(value))

    def _apply(self, value: T) -> None:
        try:
            self.show(value)
        except Exception as exc:
            self._failed(exc)
            return
        self.status.value = f"<small class='rollbackkit-updated'>updated {time.strftime('%H:%M:%S')}</small>"

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        line = error_html(exc).replace("&#9888; ", f"&#9888; {html.escape(time.strftime('%H:%M:%S'))} ", 1)
        self.status.value = line

    def _on_loop(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the event loop and wait until it ran (or we were closed)."""
        if self._loop is None:
            if not self._closed:
                action()
            return
        done = threading.Event()

        def run() -> None:
            try:
                if not self._closed:
                    action()
            finally:
                done.set()

        try:
            self._loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop is closed: nothing can show any more
            self._closed = True
            return
        while not done.wait(0.5) and not self._stopped():
            pass


def _current_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop (ipykernel runs cells on its asyncio loop), else tornado's."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    try:
        from tornado.ioloop import IOLoop

        current = IOLoop.current(instance=False)
    except Exception:  # no tornado, or no loop in this thread
        return None
    return getattr(current, "asyncio_loop", None) if current is not None else None
