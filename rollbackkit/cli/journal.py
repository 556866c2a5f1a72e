"""The journal's integrity: verify its hash chain; recover after killed commands."""

from __future__ import annotations

from pathlib import Path

import typer

from rollbackkit.cli.common import JsonOpt, RepoOpt, open_registry, print_json, rich_console

commands = typer.Typer()
"""The journal's top-level command (``journal`` is a group)."""

journal_app = typer.Typer(help="The append-only, hash-chained journal.", no_args_is_help=True)


@journal_app.command("verify")
def journal_verify(repo: RepoOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Check the journal's hash chain: an edited, deleted or truncated line fails (exit 1)."""
    from rollbackkit.ops.journal_check import verify_journal

    check = verify_journal(repo)
    if as_json:
        print_json(check.to_dict())
    else:
        from rollbackkit.screens.journal import render

        render(rich_console(), check)
    if not check.ok:
        raise typer.Exit(1)


@commands.command()
def recover(repo: RepoOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Clean up after killed commands; finish this clone's register killed after its commit; move damage aside.

    A register killed after its commit is tagged (with its journal record) only when this clone recorded
    making that commit and it checks out; otherwise exit 1, saying why. An unreadable journal tail or record
    is moved aside (recorded)."""
    done = open_registry(repo).recover()
    if as_json:
        print_json({"recovered": done is not None, "done": done})
        return
    rich_console().print(done or "Nothing to recover.")
