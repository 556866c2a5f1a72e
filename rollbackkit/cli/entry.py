"""The ``rollbackkit`` command itself: the root app, the areas' commands in their order, the entry point.

Exit codes: 0 success, 1 a domain error (one line on stderr), 2 usage error, 3 'gates check'
decided rollback, 4 a deploy/rollback/promote done on the replica that took it but not (yet)
served by every replica on the shared store.
Set ``ROLLBACKKIT_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from rollbackkit.cli import checks, demo, integrations, journal, predictions, registry, runbooks, serving, situation
from rollbackkit.cli.common import fail
from rollbackkit.errors import InvalidInput, RollbackkitError

app = typer.Typer(
    name="rollbackkit",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Version model bundles on git + DVC and roll them back in seconds, fully audited.",
    epilog="Exit codes: 0 done; 1 failed (one line on stderr: what happened and what to do); "
    "2 usage error (bad option or argument); 3 'gates check' decided rollback; "
    "4 deploy/rollback/promote done, but not every replica on the shared store serves it. "
    "-C DIR before the command runs it as if started in DIR (as git -C). NO_COLOR=1 turns colour off.",
)


@app.callback()
def _root(
    directory: Annotated[
        Path | None,
        typer.Option(
            "-C",
            "--repo",
            metavar="DIR",
            help="Run as if started in DIR, as git -C does (any folder inside the project).",
        ),
    ] = None,
) -> None:
    """Options before the command: ``-C DIR`` changes directory first (a missing folder: one
    line on stderr, exit 2, like every usage error)."""
    if directory is not None:
        if not directory.is_dir():
            what = "is not a folder" if directory.exists() else "does not exist"
            fail(2, f"-C {directory} {what}.", "Pass a folder inside the project, as with git -C.")
        os.chdir(directory)


# `rollbackkit --help` lists the top-level commands in this order, then the groups.
for area in (registry, checks, serving, situation, predictions, journal, demo):
    app.add_typer(area.commands)
app.add_typer(checks.gates_app, name="gates")
app.add_typer(runbooks.runbook_app, name="runbook")
app.add_typer(integrations.notify_app, name="notify")
app.add_typer(runbooks.audit_app, name="audit")
app.add_typer(integrations.import_app, name="import")
app.add_typer(integrations.mlflow_app, name="mlflow")
app.add_typer(predictions.labels_app, name="labels")
app.add_typer(journal.journal_app, name="journal")


def optional_values(argv: list[str]) -> list[str]:
    """``argv`` with the value an option given bare stands for: ``--shadow`` alone is ``--shadow
    100`` (typer has no option whose value is optional). Nothing after ``--`` is touched.

    Raises:
        InvalidInput: The option is followed by a value that is not a whole number and not the
            next argument (``--shadow abc``, ``--shadow=50%``): one line, not a usage error.
    """
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        out.append(arg)
        option, _, given = arg.partition("=")
        if given and option in OPTIONAL_VALUES and not given.lstrip("-").isdigit():
            _not_a_percent(option, given)
        following = argv[i + 1] if i + 1 < len(argv) else None
        if arg in OPTIONAL_VALUES and (following is None or not following.lstrip("-").isdigit()):
            if following is not None and not following.startswith("-") and "@" not in following:
                _not_a_percent(arg, following)  # a value, not the NAME@VERSION after a bare --shadow
            out.append(OPTIONAL_VALUES[arg])
    return out


def _not_a_percent(option: str, value: str) -> None:
    raise InvalidInput(
        f"{option}: {value!r} is not a whole percent.",
        f"Give {option} 1-100 (a bare {option} means {OPTIONAL_VALUES[option]}).",
    )


OPTIONAL_VALUES = {"--shadow": str(serving.BARE_SHADOW)}
"""Options whose value may be left out, and the value they then take."""


def main() -> None:
    """Console-script entry point: domain errors become one red line and exit code 1."""
    try:
        _main()
    finally:  # notifications not yet delivered go to a detached drain: a CLI never waits on a webhook
        notifying = sys.modules.get("rollbackkit.notify.process")
        if notifying is not None:
            try:
                notifying.hand_off()
            except OSError as exc:  # the command is done: one line, never a traceback over it
                print(
                    f"warning: notifications not handed to a drain ({exc}); a server or the next command sends them.",
                    file=sys.stderr,
                )


def _main() -> None:
    try:
        code = app(args=optional_values(sys.argv[1:]), standalone_mode=False)  # returns the code of a typer.Exit
    except RollbackkitError as exc:
        fail(exc.exit_code, exc.message, exc.hint)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        fail(1, "Aborted.", "")
    except Exception as exc:
        # typer vendors click; its usage errors have show() and exit code 2.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        if os.environ.get("ROLLBACKKIT_DEBUG"):
            raise
        fail(
            1,
            f"Unexpected error: {type(exc).__name__}: {exc}.",
            "This is a bug; rerun with ROLLBACKKIT_DEBUG=1 and report the traceback.",
        )
    sys.exit(code if isinstance(code, int) else 0)
