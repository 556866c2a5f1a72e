"""The systems around rollbackkit: signed webhooks and MLflow (import, alias sync)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rollbackkit.cli.common import EnvOpt, JsonOpt, RepoOpt, print_json, rich_console

notify_app = typer.Typer(help="Signed webhooks (notify: in .rollbackkit/config.yaml).", no_args_is_help=True)


@notify_app.command("test")
def notify_test(
    target: Annotated[str | None, typer.Option(help="Only this target (default: every one).")] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Send a signed test notification to each target now; one line each (exit 1 when any failed)."""
    from rollbackkit.ops.notices import send_test

    answers = send_test(repo, target)
    if as_json:
        print_json({name: vars(answer) for name, answer in answers.items()})
    for name, answer in answers.items():
        if not as_json:
            said = f"HTTP {answer.status}" if answer.status is not None else answer.error
            sys.stdout.write(f"{name}: {'delivered' if answer.ok else 'failed'} ({said})\n")
    if not all(answer.ok for answer in answers.values()):
        raise typer.Exit(1)


import_app = typer.Typer(help="Bring models across from another registry.", no_args_is_help=True)


@import_app.command("mlflow")
def import_mlflow(
    model: Annotated[str, typer.Argument(help="The MLflow registered model's name.")],
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            metavar="URI",
            help="MLflow tracking server (default: MLFLOW_TRACKING_URI, else the one the last import of this bundle "
            "recorded in .rollbackkit/mlflow.yaml).",
        ),
    ] = None,
    as_name: Annotated[
        str | None,
        typer.Option("--as", metavar="NAME", help="Bundle name (default: the MLflow name, when it is a valid one)."),
    ] = None,
    sync_alias: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ENV=ALIAS",
            help="ENV=ALIAS: every deploy and rollback in ENV also moves the MLflow alias (repeatable; saved in "
            "the committed .rollbackkit/mlflow.yaml).",
        ),
    ] = None,
    train_data: Annotated[
        Path | None, typer.Option(help="Training data for every version (default: each one's input example).")
    ] = None,
    trust: Annotated[list[str] | None, typer.Option(help="A type a skops model may load (repeatable).")] = None,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Allow flavors MLflow saved with pickle.")] = False,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Every version of an MLflow model as NAME@vN.0.0 (MLflow version N), its aliases as assignments."""
    from rollbackkit.ops.mlflow_import import import_mlflow as run

    done = run(
        repo,
        model,
        tracking_uri=tracking_uri,
        name=as_name,
        sync_alias=sync_alias,
        train_data=train_data,
        trust=tuple(trust or ()),
        unsafe=unsafe,
    )
    if as_json:
        print_json(done.to_dict())
        return
    from rollbackkit.screens.mlflow_import import render

    render(rich_console(), done)


mlflow_app = typer.Typer(help="MLflow aliases that follow what serves.", no_args_is_help=True)


@mlflow_app.command("sync")
def mlflow_sync(
    name: Annotated[str, typer.Argument(help="Bundle name.")],
    env: EnvOpt,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Point ENV's synced MLflow alias at the MLflow version of what serves ENV now (retry a failed move)."""
    from rollbackkit.ops.mlflow_import import mlflow_sync as run

    moved = run(repo, name, env)
    if as_json:
        print_json(moved.to_dict())
    else:
        rich_console().print(moved.line(), highlight=False, soft_wrap=True, markup=False)
