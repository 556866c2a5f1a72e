"""Runbooks (papermill notebooks) and the audit record they leave."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rollbackkit.cli.common import JsonOpt, RepoOpt, print_json, rich_console

runbook_app = typer.Typer(help="Runbooks: papermill notebooks saved as the audit record.", no_args_is_help=True)


@runbook_app.command("run")
def runbook_run(
    template: Annotated[str, typer.Argument(help="rollback, deploy, incident_review, or a notebook path.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="key=value for a declared parameter (repeatable).")
    ] = None,
    audit_dir: Annotated[Path | None, typer.Option(help="Where the executed notebook goes.")] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Validate parameters, execute with papermill, save the notebook read-only (exit 1 unless it ran through)."""
    from rollbackkit.ops.runbooks import run

    values = dict(_key_value(item) for item in param or [])
    if as_json:
        result = run(template, values, repo=repo, audit_dir=audit_dir)
        print_json(result.to_dict())
    else:
        from rich.console import Console

        from rollbackkit.ops.runbook_record import show
        from rollbackkit.screens import runbook as screen

        with screen.cell_progress(Console(stderr=True), Path(template).stem) as step:
            result = run(template, values, repo=repo, audit_dir=audit_dir, progress=step)
        saved = show(result.notebook) if result.status == "failed" or result.verdict == "dry-run" else None
        screen.outcome(rich_console(), result, saved)
    if result.status != "ok" or result.verdict == "refused":
        raise typer.Exit(1)


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise typer.BadParameter(f"{item!r} is not key=value", param_hint="-p")
    return key.strip(), value


@runbook_app.command("list")
def runbook_list(repo: RepoOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Executed runbooks with their outcome, oldest first."""
    from rollbackkit.ops.runbook_record import executed

    runs = executed(repo)
    if as_json:
        print_json({"runbooks": [r.to_dict() for r in runs]})
        return
    from rollbackkit.screens import runbook as screen

    screen.executed(rich_console(), runs)


@runbook_app.command("show")
def runbook_show(
    notebook: Annotated[Path, typer.Argument(help="An executed runbook notebook.")],
    as_json: JsonOpt = False,
) -> None:
    """A saved runbook's record (status, verdict, parameters, results) without re-running it."""
    from rollbackkit.ops.runbook_record import show

    record = show(notebook)
    if as_json:
        print_json(record)
        return
    from rollbackkit.screens import runbook as screen

    screen.record(rich_console(), record)


@runbook_app.command("templates")
def runbook_templates(as_json: JsonOpt = False) -> None:
    """The shipped templates and their declared parameters."""
    from rollbackkit.ops.runbook_templates import declared_parameters, templates

    found = {name: [vars(p) for p in declared_parameters(path).values()] for name, path in templates().items()}
    if as_json:
        print_json(found)
        return
    for name, params in found.items():
        sys.stdout.write(f"{name}: " + ", ".join(f"{p['name']}={p['default']!r}" for p in params) + "\n")


audit_app = typer.Typer(help="The audit record of executed runbooks.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    audit_dir: Annotated[Path | None, typer.Option(help="The audit folder, if not audit/runbooks.")] = None,
    key: Annotated[
        str | None, typer.Option(metavar="FINGERPRINT", help="The published trail's expected signing key.")
    ] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Check every executed runbook against the journal, and the published trail in audit/ (exit 1 on a problem).

    From a fresh clone (no journal here) only the published trail is checked.
    """
    from rollbackkit.ops.audit_check import verify_audit_trail

    verdict = verify_audit_trail(repo, audit_dir, key)
    if as_json:
        print_json(verdict.to_dict())
    else:
        from rollbackkit.screens.audit import text

        sys.stdout.write(text(verdict))
    if not verdict.ok:
        raise typer.Exit(1)


@audit_app.command("publish")
def audit_publish(
    push: Annotated[bool, typer.Option("--push", help="Push the commit to origin.")] = False,
    message: Annotated[str | None, typer.Option("--message", "-m", help="The commit message.")] = None,
    detached: Annotated[
        bool, typer.Option("--detached", help="Commit on a detached HEAD (you push the commit yourself).")
    ] = False,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Commit the executed runbooks and a signed journal export to audit/ (only those paths)."""
    from rollbackkit.ops.audit_trail import publish

    result = publish(repo, message=message, push=push, detached=detached)
    if as_json:
        print_json(result.to_dict())
    elif not result.published:
        sys.stdout.write(f"nothing new to publish (journal entry {result.journal_seq} is published already)\n")
    else:
        where = " and pushed to origin" if result.pushed else ""
        sys.stdout.write(
            f"published {result.manifest} ({result.files} files, journal entry {result.journal_seq}) "
            f"in commit {(result.commit or '')[:12]}{where}; key {result.key}\n"
        )
