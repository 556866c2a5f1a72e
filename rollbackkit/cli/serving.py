"""Serve an environment and change what it serves: serve, deploy, promote, rollback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rollbackkit.cli.common import EnvOpt, JsonOpt, RepoOpt, ServerOpt, print_json, rich_console

if TYPE_CHECKING:
    from rollbackkit.ops.assignment_results import AssignmentResult

commands = typer.Typer()
"""The serving commands."""

BARE_SHADOW = 100
"""The percent a bare ``--shadow`` mirrors (typer has no optional value: the entry point fills it in)."""


@commands.command()
def serve(
    name: Annotated[str, typer.Argument(help="Bundle name to serve.")],
    env: EnvOpt,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8000,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a non-loopback address.")] = False,
    watchdog_interval: Annotated[float, typer.Option(help="Seconds between gate checks.")] = 5.0,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not write the prediction log.")] = False,
    no_metrics: Annotated[
        bool, typer.Option("--no-metrics", help="Do not keep Prometheus metrics (GET /metrics answers 404).")
    ] = False,
    no_runbook: Annotated[
        bool, typer.Option("--no-runbook", help="Do not start the rollback runbook after an automatic rollback.")
    ] = False,
    bake_seconds: Annotated[
        float, typer.Option(help="Passing-gate time before a deploy's rows leave staging.")
    ] = 600.0,
    scoring_threads: Annotated[
        int, typer.Option(min=0, help="Native (OpenMP/BLAS) threads per request; 0 keeps the library defaults.")
    ] = 1,
    log_flush_interval: Annotated[
        float | None,
        typer.Option(
            min=0.01, help="Seconds between the log writer's commits (0.5): what a crash of the writer can lose."
        ),
    ] = None,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="Rows one /predict request may carry (more: 413).")
    ] = 100_000,
    replica: Annotated[
        str | None,
        typer.Option(
            "--replica",
            metavar="ID",
            help="This replica's id on a shared store (default: $ROLLBACKKIT_REPLICA, else HOST-PORT).",
        ),
    ] = None,
    repo: RepoOpt = Path("."),
) -> None:
    """Serve NAME in ENV over HTTP: blue-green slots, admin API, gate watchdog, prediction log.

    With a shared store (store: in .rollbackkit/config.yaml or ROLLBACKKIT_STORE) it is one
    replica of the environment: any number, on any hosts, serve and roll back as one.
    """
    from rollbackkit.ops.serve import serve as run
    from rollbackkit.registry.repository import Repository
    from rollbackkit.screens import messages

    console = rich_console()
    root = Repository(repo).root

    def ready(url: str) -> None:
        from rollbackkit.ops.history import serving_state

        console.print(f"[green]Serving[/] {name} ({env}) at {url}")
        taken_up = messages.resumed(serving_state(repo, name, env), bake_seconds)
        if taken_up is not None:  # a restart mid-rollout: the on-call sees what goes on
            console.print(taken_up, highlight=False, markup=False)

    run(
        repo,
        name,
        env,
        host=host,
        port=port,
        allow_remote=allow_remote,
        watchdog_interval=watchdog_interval,
        log=not no_log,
        metrics=not no_metrics,
        bake_seconds=bake_seconds,
        runbook=not no_runbook,
        scoring_threads=scoring_threads,
        log_flush_interval=log_flush_interval,
        max_rows=max_rows,
        replica=replica,
        on_ready=ready,
        on_replica=lambda me, store: console.print(
            f"replica {me} on the store {store}: it serves what the store says; its watchdog judges while it leads",
            highlight=False,
            markup=False,
            soft_wrap=True,
        ),
        on_event=lambda happened: messages.event(console, happened),
        on_runbook=lambda done: messages.runbook_done(console, done, root),
    )


def _features(path: Path | None) -> Any:
    from rollbackkit.bundle.frames import read_features

    return read_features(path) if path is not None else None


NOT_EVERYWHERE = 4
"""Exit code of a deploy, rollback or promote done on the replica that took it while another
replica on the shared store does not serve it (yet): the lines above say which and why."""


def _assignment_out(result: AssignmentResult, as_json: bool, verb: str, *, exit: bool = True) -> None:
    """Print what ``result`` did (or its JSON); exit :data:`NOT_EVERYWHERE` when replicas lag."""
    _assignment_print(result, as_json, verb)
    if exit and not result.converged:
        raise typer.Exit(NOT_EVERYWHERE)


def _assignment_print(result: AssignmentResult, as_json: bool, verb: str) -> None:
    moved = result.alias_sync
    if moved is not None and not moved.ok:  # the change stands; one warning line with the retry command
        sys.stderr.write(" ".join(moved.line().split()) + "\n")
    if as_json:
        print_json(result.to_dict())
        return
    from rollbackkit.screens import messages

    messages.assignment(rich_console(), result, verb)
    if moved is not None and moved.ok:
        rich_console().print(moved.line(), highlight=False, soft_wrap=True, markup=False)


@commands.command()
def deploy(
    ref: Annotated[str, typer.Argument(help="NAME@vX.Y.Z to deploy.")],
    env: EnvOpt,
    canary: Annotated[int | None, typer.Option(help="Send this percent of traffic to it first.")] = None,
    shadow: Annotated[
        int | None,
        typer.Option(
            metavar="[PCT]",
            help=f"Score a mirror of PCT% of live requests (bare --shadow: {BARE_SHADOW}) off the request path; "
            "answers logged, never returned.",
        ),
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(metavar="PCTS", help="Stepped rollout, e.g. 5,25,50,100: the next step when the gates pass."),
    ] = None,
    bake: Annotated[
        str | None, typer.Option(metavar="DURATION", help="How long each step's gates must pass (30s, 10m, 2h).")
    ] = None,
    features: Annotated[Path | None, typer.Option(help="Live features for preflight (.csv/.parquet or -).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Override a failed preflight (recorded).")] = False,
    reason: Annotated[str, typer.Option(help="Why (stored in the assignment).")] = "",
    server: ServerOpt = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Deploy a version to ENV: preflight, then a traffic shift (server) or a restore (workspace).

    --canary, --shadow and --steps need a running server; a shadow goes on with promote --from-shadow.
    With a shared store: exit 4 when another replica does not serve it (each one named, with why).
    """
    from rollbackkit.ops.traffic import deploy as run

    result = run(
        repo,
        ref,
        env,
        canary=canary,
        shadow=shadow,
        steps=steps,
        bake=bake,
        features=_features(features),
        force=force,
        reason=reason,
        server=server,
    )
    _assignment_out(result, as_json, "Deployed")


@commands.command()
def promote(
    name: Annotated[str, typer.Argument(help="Bundle name.")],
    env: EnvOpt,
    reason: Annotated[str, typer.Option(help="Why (stored in the assignment).")] = "",
    from_shadow: Annotated[
        bool, typer.Option("--from-shadow", help="Promote the running shadow (to live, or to a --canary).")
    ] = False,
    canary: Annotated[
        int | None, typer.Option(help="With --from-shadow: start it as a canary at this percent.")
    ] = None,
    server: ServerOpt = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Send all traffic to the running canary (--from-shadow: the shadow becomes live or a canary).

    With a shared store: exit 4 when another replica does not serve it (each one named, with why).
    """
    from rollbackkit.ops.traffic import promote as run

    done = run(repo, name, env, reason=reason, from_shadow=from_shadow, canary=canary, server=server)
    _assignment_out(done, as_json, "Promoted")


@commands.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Bundle name.")],
    env: EnvOpt,
    reason: Annotated[str, typer.Option(help="Why (required; stored in the assignment).")],
    to: Annotated[
        str | None,
        typer.Option(help="Version to go to (default: the newest other one that served and was not rolled back from)."),
    ] = None,
    incident: Annotated[str, typer.Option(help="Incident id.")] = "",
    features: Annotated[Path | None, typer.Option(help="Live features for preflight (.csv/.parquet or -).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Override a failed preflight (recorded).")] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Change nothing: print what would shift, the preflight and the rows to repair."),
    ] = False,
    runbook: Annotated[
        bool,
        typer.Option(
            "--runbook", help="Then run the rollback runbook (gate check, backfill) and print where its record is."
        ),
    ] = False,
    server: ServerOpt = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Roll back to --to, else the newest other version that served and was not rolled back from: shift or restore.

    With a shared store: exit 4 when another replica does not serve it (each one named, with why).
    """
    from rollbackkit.ops.traffic import rollback as run
    from rollbackkit.screens import messages

    if dry_run:
        if runbook:
            raise typer.BadParameter("--dry-run changes nothing, so there is no rollback for --runbook to follow.")
        from rollbackkit.ops.plans import rollback_plan

        planned = rollback_plan(repo, name, env, to=to, features=_features(features), server=server)
        if as_json:
            print_json(planned.to_dict())
        else:
            messages.plan(rich_console(), planned, features=features is not None)
        return
    if not runbook:
        result = run(
            repo,
            name,
            env,
            reason=reason,
            to=to,
            incident=incident,
            features=_features(features),
            force=force,
            server=server,
        )
        _assignment_out(result, as_json, "Rolled back")
        return
    from rollbackkit.ops.serve import rollback_with_runbook
    from rollbackkit.registry.repository import Repository

    console = rich_console()

    def rolled_back(result: AssignmentResult) -> None:
        if not as_json:
            _assignment_out(result, False, "Rolled back", exit=False)
            console.print("Running the rollback runbook (gate check, backfill)...", highlight=False)

    done = rollback_with_runbook(
        repo,
        name,
        env,
        reason=reason,
        to=to,
        incident=incident,
        features=_features(features),
        force=force,
        server=server,
        on_rolled_back=rolled_back,
    )
    if as_json:
        print_json(done.to_dict())
    else:
        messages.runbook(console, done.runbook, Repository(repo).root)
    if not done.ok:
        raise typer.Exit(1)
    if not done.rollback.converged:
        raise typer.Exit(NOT_EVERYWHERE)
