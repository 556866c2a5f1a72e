"""What serves an environment, and what served it before: history and status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rollbackkit.cli.common import EnvOpt, JsonOpt, RepoOpt, ServerOpt, print_json, rich_console

commands = typer.Typer()
"""The situation's top-level commands."""


@commands.command()
def history(
    name: Annotated[str, typer.Argument(help="Bundle name.")],
    env: EnvOpt,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every field: UTC time, tag, incident, actor.")] = False,
) -> None:
    """Every assignment of NAME in ENV, oldest first: which version served when, and why (* serves now)."""
    from rollbackkit.ops.history import history as run

    done = run(repo, name, env)
    if as_json:
        print_json(done.to_dict())
        return
    from rollbackkit.screens.history import render

    render(rich_console(), name, env, done.states, wide=wide)


@commands.command()
def status(
    name: Annotated[str, typer.Argument(help="Bundle name.")],
    env: EnvOpt,
    server: ServerOpt = None,
    repo: RepoOpt = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the running server's full /status.")] = False,
) -> None:
    """One screen: what serves ENV since when, what served before and why it left, gates, log health.

    With a shared store it lists the replicas too. Without a server it reads the history and the
    store (and says so). --json prints the running server's /status, or with a store and no server
    answering, the replicas as the store lists them.
    """
    if as_json:
        from rollbackkit.ops.replicas import status_json
        from rollbackkit.ops.situation import known

        known(repo, name, env)
        print_json(status_json(repo, name, env, server=server))
        return
    from rollbackkit.ops.overview import overview
    from rollbackkit.screens.status import render

    rich_console().print(render(overview(repo, name, env, server=server)))
