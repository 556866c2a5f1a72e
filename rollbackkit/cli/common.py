"""What every command shares: the common options, the registry, JSON and rich output, the one-line failure."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rollbackkit.registry.store import Registry

RepoOpt = Annotated[Path, typer.Option("--repo", "-C", help="Path inside the project's git repository.")]
"""``--repo``/``-C`` after the command: a path inside the project."""


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
"""``--json``: print the result as JSON instead of a screen."""


EnvOpt = Annotated[str, typer.Option("--env", help="Environment name, e.g. prod.")]
"""``--env ENV``: the environment a command is about."""


ServerOpt = Annotated[str | None, typer.Option("--server", help="Server URL (default: the one recorded for ENV).")]
"""``--server URL``: the running server to ask (default: the one recorded for ENV)."""


def open_registry(repo: Path) -> Registry:
    """The registry of the project that holds ``repo``."""
    from rollbackkit.registry.store import Registry

    return Registry(repo)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def rich_console() -> Any:
    """A rich console for stdout (it honours NO_COLOR and the terminal's width)."""
    from rich.console import Console

    return Console()


def fail(code: int, message: str, hint: str) -> None:
    """Print ``error: MESSAGE HINT`` as one line on stderr (red on a terminal) and exit with ``code``."""
    if os.environ.get("ROLLBACKKIT_DEBUG"):
        import traceback

        traceback.print_exc()
    text = " ".join(f"error: {message} {hint}".split())  # always one line, whatever a value held
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):  # no-color.org: set and not empty
        text = f"\x1b[31m{text}\x1b[0m"
    sys.stderr.write(text + "\n")
    sys.exit(code)
