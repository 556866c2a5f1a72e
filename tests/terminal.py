"""Drive the real ``rollbackkit`` CLI in a terminal 80 columns wide, as an on-call engineer would.

``screen(*args, cwd=...)`` runs the installed console script with its stdout on a real
pseudo-terminal of ``columns`` x ``lines`` (the window size is set on the pty, and COLUMNS/LINES
in the environment), so rich's own width detection sees what a user's terminal gives it.
stderr goes to a pipe (tests tell the two apart) unless ``stderr_tty`` puts it on a second
pty too. ``NO_COLOR=1`` is set by default; ANSI escapes are stripped from ``stdout``/``stderr``
in any case (``raw_stdout``/``raw_stderr`` keep them).

Checks return booleans so a test reads ``assert shown.fits(), shown`` (``str(shown)`` is the
screen with its command, for the failure message)::

    shown = screen("history", "churn", "--env", "prod", cwd=repo)
    assert shown.returncode == 0 and shown.fits(24) and shown.whole("auto-rollback"), shown
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import selectors
import shlex
import struct
import subprocess
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.cells import cell_len

from .conftest import BIN

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]|\x1b[=>]")
ELLIPSES = ("…",)
"""What rich (and most CLIs) put where they cut a cell short (``...`` ends sentences too often to count)."""
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _colours(raw: str) -> list[str]:
    """The SGR parameters in ``raw`` that set a foreground or background colour."""
    found = []
    for params in SGR.findall(raw):
        for code in params.split(";"):
            if code.isdigit() and ((30 <= int(code) <= 49 and int(code) not in (39, 49)) or 90 <= int(code) <= 107):
                found.append(code)
    return found


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences and carriage returns (a pty writes ``\\r\\n``)."""
    return ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


@dataclass
class Screen:
    """What one command put on the terminal."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    raw_stdout: str = field(repr=False)
    raw_stderr: str = field(repr=False)
    columns: int = 80
    lines: int = 24
    seconds: float = 0.0

    @property
    def rows(self) -> list[str]:
        """stdout's lines, trailing blank lines dropped."""
        return self.stdout.rstrip("\n").split("\n") if self.stdout.strip() else []

    @property
    def text(self) -> str:
        """stdout and stderr together (stripped of escapes)."""
        return self.stdout + self.stderr

    def widest(self) -> int:
        """The widest stdout line, in terminal cells."""
        return max((cell_len(row) for row in self.rows), default=0)

    def fits(self, lines: int | None = None) -> bool:
        """stdout fits the screen: at most ``lines`` rows (the terminal's height by default),
        none wider than the terminal."""
        return len(self.rows) <= (self.lines if lines is None else lines) and self.widest() <= self.columns

    def whole(self, text: str) -> bool:
        """``text`` appears unbroken on one line of stdout (not cut, not wrapped)."""
        return any(text in row for row in self.rows)

    def no_ellipsis(self) -> bool:
        """Nothing on stdout was cut short with an ellipsis (``…``)."""
        return not any(mark in self.stdout for mark in ELLIPSES)

    def no_color(self) -> bool:
        """Neither stream set a colour (what NO_COLOR promises; bold and dim are allowed)."""
        return not any(_colours(stream) for stream in (self.raw_stdout, self.raw_stderr))

    def __repr__(self) -> str:
        """The screen itself (pytest shows an assertion message's repr)."""
        return str(self)

    def __str__(self) -> str:
        bar = "-" * self.columns
        return (
            f"$ rollbackkit {shlex.join(self.args)}   (exit {self.returncode}, {self.columns}x{self.lines}, "
            f"{len(self.rows)} rows, widest {self.widest()})\n{bar}\n{self.stdout}{bar}\nstderr:\n{self.stderr}"
        )


def _window(fd: int, columns: int, lines: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))


def screen(
    *args: str,
    cwd: Path,
    columns: int = 80,
    lines: int = 24,
    env: dict[str, str] | None = None,
    color: bool = False,
    stderr_tty: bool = False,
    input: str | None = None,
    timeout: float = 300,
) -> Screen:
    """Run ``rollbackkit *args`` in ``cwd`` with stdout on a ``columns`` x ``lines`` pseudo-terminal.

    Args:
        args: the command line after ``rollbackkit``.
        cwd: the working directory (a project).
        columns: terminal width (the pty's window size and ``COLUMNS``).
        lines: terminal height (the pty's window size and ``LINES``).
        env: more environment variables (override the defaults, e.g. ``{"NO_COLOR": ""}``).
        color: leave ``NO_COLOR`` unset (by default ``NO_COLOR=1``).
        stderr_tty: put stderr on a pseudo-terminal as well (to see what a user's stderr gets).
        input: text for stdin (a pipe); stdin is /dev/null otherwise.
        timeout: seconds before the command is killed (the test then fails).

    Returns:
        The :class:`Screen`: exit code, stdout and stderr without escapes, and the raw streams.
    """
    environment = {**os.environ, "COLUMNS": str(columns), "LINES": str(lines), "TERM": "xterm-256color"}
    environment.pop("NO_COLOR", None)
    environment.pop("FORCE_COLOR", None)
    if not color:
        environment["NO_COLOR"] = "1"
    environment.update(env or {})
    out_master, out_slave = pty.openpty()
    _window(out_slave, columns, lines)
    if stderr_tty:
        err_master, err_slave = pty.openpty()
        _window(err_slave, columns, lines)
    started = time.monotonic()
    process = subprocess.Popen(
        [str(BIN / "rollbackkit"), *args],
        cwd=cwd,
        env=environment,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=out_slave,
        stderr=err_slave if stderr_tty else subprocess.PIPE,
        close_fds=True,
    )
    os.close(out_slave)
    if stderr_tty:
        os.close(err_slave)
    if input is not None and process.stdin is not None:
        process.stdin.write(input.encode())
        process.stdin.close()
    streams = {out_master: bytearray()}
    err_fd = err_master if stderr_tty else process.stderr.fileno()  # type: ignore[union-attr]
    streams[err_fd] = bytearray()
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    open_fds = set(streams)
    try:
        while open_fds:
            remaining = timeout - (time.monotonic() - started)
            if remaining <= 0:
                process.kill()
                raise TimeoutError(f"rollbackkit {' '.join(args)} ran over {timeout} s")
            for key, _ in selector.select(timeout=min(remaining, 1.0)):
                try:
                    chunk = os.read(key.fd, 65536)
                except OSError:  # EIO: the pty's last writer closed it
                    chunk = b""
                if chunk:
                    streams[key.fd] += chunk
                else:
                    selector.unregister(key.fd)
                    open_fds.discard(key.fd)
        returncode = process.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
    finally:
        selector.close()
        os.close(out_master)
        if stderr_tty:
            os.close(err_master)
        elif process.stderr is not None:
            process.stderr.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    raw_out = streams[out_master].decode("utf-8", "replace")
    raw_err = streams[err_fd].decode("utf-8", "replace")
    return Screen(
        args=tuple(args),
        returncode=returncode,
        stdout=strip_ansi(raw_out),
        stderr=strip_ansi(raw_err),
        raw_stdout=raw_out,
        raw_stderr=raw_err,
        columns=columns,
        lines=lines,
        seconds=time.monotonic() - started,
    )


def save(shown: Screen, path: Path) -> Path:
    """Write the screen's stdout (escapes stripped) to ``path`` (``test-artifacts/...``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"$ rollbackkit {shlex.join(shown.args)}\n{shown.stdout}")
    return path
