"""The ``rollbackkit`` command run inside the test process: the real entry point
(:func:`rollbackkit.cli.main`: argument parsing, one-line errors, exit codes), without the
~0.65 CPU-second start of a fresh Python per call.

What a process gives a command, the call gives it too, and takes back afterwards: its own
argv, cwd, environment, stdin/stdout/stderr (not a terminal, as under ``capture_output``),
Python's default warning filters (a warning prints on its stderr), and the notify layer's
per-process notifiers (handed off at exit as a process would). A command that must outlive
the call or owns the process (``serve``, ``demo``, a crash injected with ``ROLLBACKKIT_CRASH_AT``)
runs as a real process: :func:`run_process_cli`.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

BIN = Path(sys.executable).parent
PROCESS_COMMANDS = frozenset({"serve", "demo"})
"""Commands that run a server or a whole demo: always a real process."""
PROCESS_ENV = frozenset({"ROLLBACKKIT_CRASH_AT", "PYTHONPATH"})
"""Variables that make a command kill its own process (rollbackkit.locking.CRASH_ENV) or change what it can
import (a ``PYTHONPATH`` of stubs that hide an optional library): a real process."""


def run_process_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``rollbackkit`` console script (``input`` goes to its stdin)."""
    return subprocess.run(
        [str(BIN / "rollbackkit"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        input=input,
    )


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``rollbackkit *args`` in ``cwd`` (in this process unless ``process`` or a :data:`PROCESS_COMMANDS`
    command); the result is what :func:`subprocess.run` gives."""
    if process or PROCESS_COMMANDS.intersection(args[:1]) or PROCESS_ENV.intersection(env or {}):
        return run_process_cli(*args, cwd=cwd, env=env, input=input)
    return _in_process(list(args), Path(cwd), env or {}, input)


class _Stream(io.TextIOWrapper):
    """A text stream over bytes (``.buffer`` works), never a terminal."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="backslashreplace", newline="\n", write_through=True)

    def text(self) -> str:
        self.flush()
        raw = self.buffer
        assert isinstance(raw, io.BytesIO)
        return raw.getvalue().decode("utf-8", errors="replace")


def _in_process(args: list[str], cwd: Path, env: dict[str, str], input: str | None) -> subprocess.CompletedProcess[str]:
    from rollbackkit import cli

    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    out, err = _Stream(), _Stream()
    code: int = 0
    try:
        os.environ.update(env)
        os.chdir(cwd)
        sys.argv = [str(BIN / "rollbackkit"), *args]
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(input or ""), out, err
        with warnings.catch_warnings():
            _fresh_interpreter_warnings()
            try:
                cli.main()
            except SystemExit as exc:
                code = _exit_code(exc, err)
    finally:
        _end_of_process()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["rollbackkit", *args], code, out.text(), err.text())


def _fresh_interpreter_warnings() -> None:
    """The warning filters a fresh ``python`` starts with (pytest's own are not the command's)."""
    warnings.resetwarnings()  # unmatched warnings: "default", shown once per place
    for category in (ResourceWarning, ImportWarning, PendingDeprecationWarning, DeprecationWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")


def _exit_code(exc: SystemExit, err: io.TextIOBase) -> int:
    """``sys.exit(x)`` as the interpreter turns it into a process's exit status."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    err.write(f"{exc.code}\n")
    return 1


def _end_of_process() -> None:
    """What the end of a process would drop: the notifiers a command opened (``main`` handed them off)."""
    process = sys.modules.get("rollbackkit.notify.process")
    if process is None:
        return
    with process._lock:
        for root in [root for root in process._notifiers if not process._held.get(root)]:
            del process._notifiers[root]
        process._warned.clear()
