"""What a version wrote to the prediction log: the rows it touched, their backfill, late labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rollbackkit.cli.common import EnvOpt, JsonOpt, RepoOpt, ServerOpt, print_json, rich_console

commands = typer.Typer()
"""The prediction log's top-level commands (``labels`` is a group)."""


@commands.command()
def affected(
    name: Annotated[str, typer.Argument(help="Bundle name.")],
    env: EnvOpt,
    version: Annotated[str, typer.Option(help="The version whose rows are listed.")],
    since: Annotated[str | None, typer.Option(help="Only rows at or after this ISO time.")] = None,
    server: ServerOpt = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Rows a version wrote in ENV: counts by table and time range, quarantined/backfilled, sample rows."""
    from rollbackkit.ops.predictions import affected as run

    result = run(repo, name, env, version, since=since, server=server)
    if as_json:
        print_json(result.to_dict())
        return
    from rollbackkit.screens.affected import render

    render(rich_console(), result)


@commands.command()
def backfill(
    name: Annotated[str, typer.Argument(help="Bundle name.")],
    env: EnvOpt,
    version: Annotated[str, typer.Option(help="The bad version whose rows are re-scored.")],
    server: ServerOpt = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Re-score a bad version's quarantined rows with the version now serving (idempotent)."""
    from rollbackkit.ops.predictions import backfill as run

    result = run(repo, name, env, version, server=server)
    if as_json:
        print_json(result.to_dict())
    else:
        rich_console().print(f"rescored {result.rescored}, already done {result.already_done}, failed {result.failed}")
        for reason in result.errors:
            rich_console().print(f"  failed: {reason}", markup=False)
    if result.failed:
        raise typer.Exit(1)


labels_app = typer.Typer(help="Ground truth that arrives later, joined to logged predictions.", no_args_is_help=True)


@labels_app.command("ingest")
def labels_ingest(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet: the join column and 'label' (optionally 'row').")],
    env: EnvOpt,
    name: Annotated[str | None, typer.Argument(help="Bundle name (default: the project's only one).")] = None,
    on: Annotated[str, typer.Option("--on", help="Join on request_id (and row) or key.")] = "request_id",
    all_rows: Annotated[
        bool, typer.Option("--all-rows-of-key", help="Let one key label more than 1,000 logged rows.")
    ] = False,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Labels per request to a server (at most its --max-rows).")
    ] = 50_000,
    server: ServerOpt = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Store labels for logged rows: through the running server (in chunks), else into the log file; all or
    nothing (per chunk through a server; every label is checked before the first is sent)."""
    from rollbackkit.ops.labels import ingest_labels, sole_name

    result = ingest_labels(
        repo, name or sole_name(repo), env, file, on=on, server=server, all_rows=all_rows, chunk_rows=chunk_rows
    )
    if as_json:
        print_json(result.to_dict())
        return
    from rollbackkit.screens.labels import render

    render(rich_console(), result)
