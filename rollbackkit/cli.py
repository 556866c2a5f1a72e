"""The ``rollbackkit`` command: a thin typer layer over the Python API; no logic lives here.

Exit codes: 0 success, 1 a domain error (one line on stderr), 2 usage error, 3 'gates check'
decided rollback, 4 a deploy/rollback/promote done on the replica that took it but not (yet)
served by every replica on the shared store.
Set ``ROLLBACKKIT_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rollbackkit.bundle.flavors import names as flavor_names
from rollbackkit.errors import InvalidInput, RollbackkitError

if TYPE_CHECKING:
    from rollbackkit.ops.results import AssignmentResult

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
            _fail(2, f"-C {directory} {what}.", "Pass a folder inside the project, as with git -C.")
        os.chdir(directory)


RepoOpt = Annotated[Path, typer.Option("--repo", "-C", help="Path inside the project's git repository.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _registry(repo: Path) -> Any:
    from rollbackkit.registry.store import Registry

    return Registry(repo)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _console() -> Any:
    """A rich console for stdout (it honours NO_COLOR and the terminal's width)."""
    from rich.console import Console

    return Console()


@app.command()
def init(
    repo: RepoOpt = Path("."),
    remote: Annotated[
        str | None, typer.Option(help="DVC remote URL or directory (default: .rollbackkit/dvc-remote).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set up rollbackkit in an existing git repo: DVC, a default remote, config."""
    from rollbackkit.registry.store import Registry

    registry = Registry.init(repo, remote=remote)
    if as_json:
        _print_json({"root": str(registry.root), "remote": registry.dvc.remote_url()})
        return
    _console().print(f"[green]Initialised[/] rollbackkit in {registry.root} (DVC remote: {registry.dvc.remote_url()})")


@app.command()
def register(
    name: Annotated[str, typer.Argument(help="Bundle name, e.g. churn.")],
    model: Annotated[
        str,
        typer.Option(
            help="Model file: .skops, XGBoost .json/.ubj, LightGBM .txt, CatBoost .cbm, .onnx, a directory with "
            "a model.py (or its .zip); .joblib/.pkl/.pickle need --unsafe. Or an MLflow model: models:/NAME/N, "
            "models:/NAME@alias, "
            "runs:/RUN/PATH, a directory with an MLmodel file."
        ),
    ],
    train_data: Annotated[
        Path | None,
        typer.Option(
            help="Training data (.csv or .parquet) with raw input features (an MLflow model's input example "
            "stands in when it is left out)."
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="Label column in the data.")] = None,
    validation_data: Annotated[Path | None, typer.Option(help="Data for the reference profile.")] = None,
    preprocess: Annotated[Path | None, typer.Option(help="Python file defining preprocess(frame).")] = None,
    serving: Annotated[Path | None, typer.Option(help="serving.yaml to include.")] = None,
    gates: Annotated[Path | None, typer.Option(help="gates.yaml to include.")] = None,
    version: Annotated[str | None, typer.Option(help="Explicit version vX.Y.Z.")] = None,
    bump: Annotated[str, typer.Option(help="Bump of the latest version: major, minor or patch.")] = "patch",
    message: Annotated[str, typer.Option(help="Message stored in the version tag.")] = "",
    trust: Annotated[
        list[str] | None,
        typer.Option(help="A type beyond the reviewed defaults that a .skops model may load (repeatable)."),
    ] = None,
    unsafe: Annotated[
        bool,
        typer.Option("--unsafe", help="Allow a .joblib/.pkl/.pickle model: unpickling runs any code the file holds."),
    ] = False,
    features: Annotated[
        str | None,
        typer.Option(
            "--features",
            help="Comma-separated input columns to keep, e.g. age,income "
            "(default: the feature names the model recorded, when the data has them).",
        ),
    ] = None,
    flavor: Annotated[
        str | None,
        typer.Option(help=f"The model's flavor when its suffix does not say it: {', '.join(flavor_names())}."),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            metavar="URI", help="MLflow tracking server of a models:/ or runs:/ model (default: MLFLOW_TRACKING_URI)."
        ),
    ] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Register an immutable version: bundle, DVC push, commit, GTO tag NAME@vX.Y.Z."""
    info = _registry(repo).register(
        name,
        model,
        train_data,
        target=target,
        validation_data=validation_data,
        preprocess=preprocess,
        serving=serving,
        gates=gates,
        version=version,
        bump=bump,
        message=message,
        trust=trust or (),
        unsafe=unsafe,
        features=[f.strip() for f in features.split(",") if f.strip()] if features is not None else None,
        flavor=flavor,
        tracking_uri=tracking_uri,
    )
    if as_json:
        _print_json(info.to_dict())
    else:
        _console().print(f"[green]Registered[/] {info.tag}  {info.bundle_id[:19]}  commit {info.commit[:10]}")


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Argument(help="Only this bundle.")] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """List registered versions: name, version, created (local time), commit, message."""
    if name is not None:
        from rollbackkit.ops.situation import known

        known(repo, name)
    infos = _registry(repo).versions(name)
    if as_json:
        keys = ("name", "version", "bundle_id", "created", "commit")
        _print_json({"bundles": [{k: getattr(i, k) for k in keys} for i in infos]})
        return
    from rollbackkit.screens.versions import render

    render(_console(), infos)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME@vX.Y.Z, NAME@latest or NAME#ENV.")],
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Show one version: components, hashes, schema summary, safety flags."""
    data = _registry(repo).show(ref)
    if as_json:
        _print_json(data)
        return
    from rollbackkit.screens.times import local
    from rollbackkit.screens.versions import components

    console = _console()
    created = local(data["created"])
    console.print(f"[bold]{data['tag']}[/]  {data['bundle_id']}\ncommit {data['commit']}  created {created}")
    components(console, data)
    schema = data["schema"]
    console.print(
        f"{data['flavor']} model {schema['estimator']['type']}; {len(schema['features'])} input features; "
        f"output {schema['output']['kind']} ({', '.join(schema['output']['columns'])})"
    )
    if data.get("own_code"):
        code = data["own_code"]
        console.print(
            f"[yellow]runs its own code:[/] {code['file']} sha256 {code['sha256']} (at register, load and serve; "
            "review it like preprocess.py: 'rollbackkit diff' shows its changes)",
            highlight=False,
            soft_wrap=True,
        )
    if data.get("source"):
        source = data["source"]
        run = f"run {source['run_id']}, " if source["run_id"] else ""
        console.print(
            f"from MLflow {source['uri']} ({run}MLflow {source['mlflow_version']}, flavor {source['flavor']})",
            highlight=False,
            soft_wrap=True,
        )
    if data["runtime"]:
        libraries = ", ".join(f"{k} {v}" for k, v in data["runtime"]["libraries"].items())
        console.print(f"runtime at register: python {data['runtime']['python']}, {libraries}", highlight=False)
    for finding in data["runtime_here"]:
        if finding["severity"] != "info":
            console.print(f"[yellow]{finding['severity']}:[/] {finding['detail']}", highlight=False)
    if data["trusted_types"]:
        console.print(f"skops types trusted at load: {', '.join(data['trusted_types'])}")
    if data["trusted_by_operator"]:
        console.print(
            f"[yellow]trusted at register beyond the reviewed types:[/] {', '.join(data['trusted_by_operator'])}"
        )
    if data["unsafe_model_format"]:
        console.print(
            "[yellow]warning:[/] the model is a joblib/pickle file: loading it runs any code it holds "
            + (
                "(allowed with --unsafe at register; loaded only after its hash matches)."
                if data["unsafe_allowed"]
                else "(registered without --unsafe: it will not load)."
            )
        )


@app.command()
def resolve(
    ref: Annotated[str, typer.Argument(help="NAME@latest, NAME@vX.Y.Z or NAME#ENV.")],
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Resolve a reference to one registered version."""
    info = _registry(repo).resolve(ref)
    if as_json:
        _print_json(info.to_dict())
    else:
        sys.stdout.write(f"{info.tag} {info.commit}\n")


@app.command()
def restore(
    ref: Annotated[str, typer.Argument(help="NAME@vX.Y.Z (or NAME@latest, NAME#ENV).")],
    to: Annotated[Path | None, typer.Option(help="Materialise here instead of the workspace.")] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Restore a version's files (verified against the manifest), pulling from the remote if needed."""
    result = _registry(repo).restore(ref, to=to)
    if as_json:
        _print_json(
            {
                "version": result.info.to_dict(),
                "directory": str(result.directory),
                "files": result.files,
                "seconds": round(result.seconds, 4),
            }
        )
    else:
        _console().print(
            f"[green]Restored[/] {result.info.tag} into {result.directory} "
            f"({len(result.files)} files, verified, {result.seconds:.2f} s)"
        )


@app.command()
def verify(
    ref: Annotated[str | None, typer.Argument(help="NAME@vX.Y.Z to check.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Check every registered version.")] = False,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Re-hash every component in git, the DVC cache and the remote; check tags and manifests."""
    if (ref is None) == (not all_):
        raise typer.BadParameter("give either NAME@VERSION or --all")
    report = _registry(repo).verify(None if all_ else ref)
    if as_json:
        _print_json(report.to_dict())
    else:
        console = _console()
        for p in report.problems:
            console.print(f"[red]{p.version}[/] {p.component}: {p.problem}")
        console.print(
            ("[green]OK[/]" if report.ok else "[red]FAILED[/]") + f": {len(report.checked)} version(s) checked"
        )
    if not report.ok:
        raise typer.Exit(1)


@app.command("diff")
def diff_(
    a: Annotated[str, typer.Argument(help="The from version, NAME@vX.Y.Z.")],
    b: Annotated[str, typer.Argument(help="The to version, NAME@vX.Y.Z.")],
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Diff two versions: model, features, output contract, serving config, gates, code, data profile."""
    from rollbackkit.ops.compare import diff

    result = diff(a, b, repo=repo)
    if as_json:
        _print_json(result.to_dict())
    else:
        sys.stdout.write(result.to_text() + "\n")


FeaturesOpt = Annotated[Path, typer.Option("--features", help="Live features: .csv/.parquet, or - for stdin.")]


def _verdict_out(report: Any, as_json: bool, text: str) -> None:
    """Print a compatibility or preflight report (its JSON, or ``text``); exit 1 if incompatible."""
    if as_json:
        _print_json(report.to_dict())
    else:
        sys.stdout.write(text)
    if report.verdict == "incompatible":
        raise typer.Exit(1)


def _findings_text(verdict: str, findings: list[Any]) -> str:
    lines = [f"verdict: {verdict}"]
    lines += [f"  [{f.severity}] {f.column}: {f.kind} - {f.detail}" for f in findings]
    return "\n".join(lines) + "\n"


@app.command()
def check(
    ref: Annotated[str, typer.Argument(help="The version that would score the frame.")],
    features: FeaturesOpt,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Is a live feature frame compatible, adaptable or incompatible with a version? Exit 1 if incompatible."""
    from rollbackkit.bundle.frames import read_features

    report = _registry(repo).check(ref, read_features(features))
    _verdict_out(report, as_json, _findings_text(report.verdict, report.findings))


@app.command()
def parity(
    ref: Annotated[str, typer.Argument(help="The version whose golden sample is replayed.")],
    preprocess: Annotated[
        Path | None, typer.Option(help="Code to check (default: the registered file, as now).")
    ] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Are this version's features still computed the same way? Exit 1 if any differs."""
    report = _registry(repo).parity(ref, preprocess)
    if as_json:
        _print_json(report.to_dict())
    else:
        lines = [f"parity with {report.code}: {'OK' if report.ok else 'DIFFERS'} ({report.rows} golden rows)"]
        lines += [
            f"  {c.column}: {c.mismatches} rows differ (max |diff| {c.max_abs_diff}) {c.detail}".rstrip()
            for c in [*report.features, *report.outputs]
            if not c.ok
        ]
        if report.error:
            lines.append(f"  {report.error}")
        sys.stdout.write("\n".join(lines) + "\n")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def preflight(
    ref: Annotated[str, typer.Argument(help="The version about to serve.")],
    features: Annotated[Path | None, typer.Option(help="Live features: .csv/.parquet, or - for stdin.")] = None,
    consumer: Annotated[str | None, typer.Option(help="Contract consumers expect: NAME#ENV or NAME@vX.Y.Z.")] = None,
    preprocess: Annotated[Path | None, typer.Option(help="Code for the parity check.")] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Compatibility + feature parity + output contract in one verdict. Exit 1 if incompatible."""
    from rollbackkit.bundle.frames import read_features

    frame = read_features(features) if features is not None else None
    report = _registry(repo).preflight(ref, frame, consumer=consumer, preprocess=preprocess)
    head = f"preflight {report.target}" + (f" (consumers expect {report.consumer})" if report.consumer else "")
    _verdict_out(report, as_json, head + "\n" + _findings_text(report.verdict, report.findings))


gates_app = typer.Typer(help="Quality gates declared in a bundle.", no_args_is_help=True)
app.add_typer(gates_app, name="gates")


@gates_app.command("check")
def gates_check(
    ref: Annotated[str, typer.Argument(help="The version whose gates.yaml is evaluated.")],
    window: Annotated[Path | None, typer.Option(help="Window of logged predictions (.parquet or .csv).")] = None,
    env: Annotated[
        str | None, typer.Option(help="Read the window from the prediction log: the version's latest rows in ENV.")
    ] = None,
    server: ServerOpt = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a version's gates over a window. Exit 3 when the decision is rollback.

    With --env the window is the version's latest logged rows in ENV; while a server runs for
    ENV it evaluates them (it holds the prediction log).
    """
    from rollbackkit.ops.situation import check_gates

    report = check_gates(repo, ref, window=window, env=env, server=server)
    if as_json:
        _print_json(report.to_dict())
    else:
        from rollbackkit.screens.gates import render

        render(_console(), report)
    if report.decision == "rollback":
        raise typer.Exit(3)


@app.command()
def drift(
    reference: Annotated[
        str, typer.Argument(help="Reference: .parquet/.csv, or NAME@VERSION for its reference profile.")
    ],
    current: Annotated[Path, typer.Argument(help="Current data: .parquet or .csv.")],
    column: Annotated[
        str | None, typer.Option(help="Column to compare (default: the bundle's primary output).")
    ] = None,
    by: Annotated[list[str] | None, typer.Option(help="Slice by this column (repeatable).")] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Drift of one column between a reference and current data (per slice with --by)."""
    from rollbackkit.ops.data_drift import column_drift, reference_data

    ref_frame, primary = reference_data(repo, reference)
    column = column or primary
    if column is None:
        raise typer.BadParameter("--column is needed when the reference is a file")
    results = column_drift(ref_frame, current, column, by)
    data: Any = [r.to_dict() for r in results] if by else results[0].to_dict()
    if as_json:
        _print_json(data)
        return
    for r in results:
        where = f" {r.slice}" if r.slice else ""
        sys.stdout.write(f"{r.column}{where}: psi {r.psi:.4f} js {r.js:.4f} n_ref {r.n_ref} n_cur {r.n_cur}\n")


EnvOpt = Annotated[str, typer.Option("--env", help="Environment name, e.g. prod.")]
ServerOpt = Annotated[str | None, typer.Option("--server", help="Server URL (default: the one recorded for ENV).")]


@app.command()
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

    console = _console()
    root = Repository(repo).root

    def ready(url: str) -> None:
        from rollbackkit.registry.assignments import Deployments

        console.print(f"[green]Serving[/] {name} ({env}) at {url}")
        taken_up = messages.resumed(Deployments(Repository(repo)).state(name, env), bake_seconds)
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
        _print_json(result.to_dict())
        return
    from rollbackkit.screens import messages

    messages.assignment(_console(), result, verb)
    if moved is not None and moved.ok:
        _console().print(moved.line(), highlight=False, soft_wrap=True, markup=False)


@app.command()
def deploy(
    ref: Annotated[str, typer.Argument(help="NAME@vX.Y.Z to deploy.")],
    env: EnvOpt,
    canary: Annotated[int | None, typer.Option(help="Send this percent of traffic to it first.")] = None,
    shadow: Annotated[
        int | None,
        typer.Option(
            metavar="[PCT]",
            help="Score a mirror of PCT% of live requests (bare --shadow: 100) off the request path; "
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


@app.command()
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


@app.command()
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
            _print_json(planned.to_dict())
        else:
            messages.plan(_console(), planned, features=features is not None)
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

    console = _console()

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
        _print_json(done.to_dict())
    else:
        messages.runbook(console, done.runbook, Repository(repo).root)
    if not done.ok:
        raise typer.Exit(1)
    if not done.rollback.converged:
        raise typer.Exit(NOT_EVERYWHERE)


@app.command()
def history(
    name: Annotated[str, typer.Argument(help="Bundle name.")],
    env: EnvOpt,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every field: UTC time, tag, incident, actor.")] = False,
) -> None:
    """Every assignment of NAME in ENV, oldest first: which version served when, and why (* serves now)."""
    from rollbackkit.ops.situation import known
    from rollbackkit.registry.assignments import Deployments

    known(repo, name, env)

    states = Deployments(_registry(repo)).states(name, env)
    if as_json:
        _print_json({"name": name, "env": env, "assignments": [a.to_dict() for a, _ in states]})
        return
    from rollbackkit.screens.history import render

    render(_console(), name, env, states, wide=wide)


@app.command()
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
        _print_json(status_json(repo, name, env, server=server))
        return
    from rollbackkit.ops.overview import overview
    from rollbackkit.screens.status import render

    _console().print(render(overview(repo, name, env, server=server)))


@app.command()
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
        _print_json(result.to_dict())
        return
    from rollbackkit.screens.affected import render

    render(_console(), result)


@app.command()
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
        _print_json(result.to_dict())
    else:
        _console().print(f"rescored {result.rescored}, already done {result.already_done}, failed {result.failed}")
        for reason in result.errors:
            _console().print(f"  failed: {reason}", markup=False)
    if result.failed:
        raise typer.Exit(1)


runbook_app = typer.Typer(help="Runbooks: papermill notebooks saved as the audit record.", no_args_is_help=True)
app.add_typer(runbook_app, name="runbook")


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
        _print_json(result.to_dict())
    else:
        from rich.console import Console

        from rollbackkit.ops.runbook_record import show
        from rollbackkit.screens import runbook as screen

        with screen.cell_progress(Console(stderr=True), Path(template).stem) as step:
            result = run(template, values, repo=repo, audit_dir=audit_dir, progress=step)
        saved = show(result.notebook) if result.status == "failed" or result.verdict == "dry-run" else None
        screen.outcome(_console(), result, saved)
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
        _print_json({"runbooks": [r.to_dict() for r in runs]})
        return
    from rollbackkit.screens import runbook as screen

    screen.executed(_console(), runs)


@runbook_app.command("show")
def runbook_show(
    notebook: Annotated[Path, typer.Argument(help="An executed runbook notebook.")],
    as_json: JsonOpt = False,
) -> None:
    """A saved runbook's record (status, verdict, parameters, results) without re-running it."""
    from rollbackkit.ops.runbook_record import show

    record = show(notebook)
    if as_json:
        _print_json(record)
        return
    from rollbackkit.screens import runbook as screen

    screen.record(_console(), record)


@runbook_app.command("templates")
def runbook_templates(as_json: JsonOpt = False) -> None:
    """The shipped templates and their declared parameters."""
    from rollbackkit.ops.runbook_templates import declared_parameters, templates

    found = {name: [vars(p) for p in declared_parameters(path).values()] for name, path in templates().items()}
    if as_json:
        _print_json(found)
        return
    for name, params in found.items():
        sys.stdout.write(f"{name}: " + ", ".join(f"{p['name']}={p['default']!r}" for p in params) + "\n")


notify_app = typer.Typer(help="Signed webhooks (notify: in .rollbackkit/config.yaml).", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


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
        _print_json({name: vars(answer) for name, answer in answers.items()})
    for name, answer in answers.items():
        if not as_json:
            said = f"HTTP {answer.status}" if answer.status is not None else answer.error
            sys.stdout.write(f"{name}: {'delivered' if answer.ok else 'failed'} ({said})\n")
    if not all(answer.ok for answer in answers.values()):
        raise typer.Exit(1)


audit_app = typer.Typer(help="The audit record of executed runbooks.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


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
    report, published = verdict.local, verdict.published
    if as_json:
        _print_json(verdict.to_dict())
    else:
        if verdict.local_skipped:
            sys.stdout.write("no journal here (a clone): the published trail is what is checked\n")
        else:
            sys.stdout.write(f"checked {report.checked} runbooks: {'ok' if report.ok else 'PROBLEMS'}\n")
        for problem in report.problems:
            sys.stdout.write(f"  {problem['notebook']}: {problem['problem']}\n")
        if published is not None:
            state = "ok" if published.ok else "PROBLEMS"
            signer = f", key {published.key[:16]}" if published.key else ""
            sys.stdout.write(
                f"published trail: {published.manifests} manifests, {published.files} files{signer}: {state}\n"
            )
            for item in published.problems:
                sys.stdout.write(f"  {item.path}: {item.problem}\n")
            if published.pinned is None:
                sys.stdout.write("signer not pinned (pass --key FINGERPRINT): the trail is only self-consistent\n")
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
        _print_json(result.to_dict())
    elif not result.published:
        sys.stdout.write(f"nothing new to publish (journal entry {result.journal_seq} is published already)\n")
    else:
        where = " and pushed to origin" if result.pushed else ""
        sys.stdout.write(
            f"published {result.manifest} ({result.files} files, journal entry {result.journal_seq}) "
            f"in commit {(result.commit or '')[:12]}{where}; key {result.key}\n"
        )


import_app = typer.Typer(help="Bring models across from another registry.", no_args_is_help=True)
app.add_typer(import_app, name="import")


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
        _print_json(done.to_dict())
        return
    lines = [
        f"{done.name}@{v.version}  <- models:/{done.model}/{v.mlflow_version}  "
        + ("imported" if v.status == "imported" else "skipped (imported before)")
        for v in done.versions
    ]
    lines += [
        f"alias {a.alias} -> {done.name}@{a.version}  " + (f"{a.env}: {a.status}" if a.env else f"skipped: {a.note}")
        for a in done.aliases
    ]
    lines += [
        f"sync: deploys and rollbacks in {env} move alias {alias} ({done.config})" for env, alias in done.sync.items()
    ]
    console = _console()
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


mlflow_app = typer.Typer(help="MLflow aliases that follow what serves.", no_args_is_help=True)
app.add_typer(mlflow_app, name="mlflow")


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
        _print_json(moved.to_dict())
    else:
        _console().print(moved.line(), highlight=False, soft_wrap=True, markup=False)


labels_app = typer.Typer(help="Ground truth that arrives later, joined to logged predictions.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


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
        _print_json(result.to_dict())
        return
    from rollbackkit.screens.labels import render

    render(_console(), result)


journal_app = typer.Typer(help="The append-only, hash-chained journal.", no_args_is_help=True)
app.add_typer(journal_app, name="journal")


@journal_app.command("verify")
def journal_verify(repo: RepoOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Check the journal's hash chain: an edited, deleted or truncated line fails (exit 1)."""
    from rollbackkit.registry.journal import Journal

    journal = Journal(_registry(repo).paths.journal)
    problems = journal.verify()
    if as_json:
        _print_json(
            {
                "ok": not problems,
                "entries": len(journal.entries()),
                "problems": [{"line": p.line, "problem": p.problem} for p in problems],
            }
        )
    else:
        for p in problems:
            _console().print(f"[red]line {p.line}[/]: {p.problem}")
        _console().print("[green]OK[/]" if not problems else "[red]FAILED[/]")
    if problems:
        raise typer.Exit(1)


@app.command()
def recover(repo: RepoOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Clean up after killed commands; move an unreadable journal tail or record aside (recorded)."""
    done = _registry(repo).recover()
    if as_json:
        _print_json({"recovered": done is not None, "done": done})
        return
    _console().print(done or "Nothing to recover.")


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the demo project.")] = Path("demo-project"),
    notify: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Send each event to this webhook, signed with $ROLLBACKKIT_NOTIFY_SECRET."),
    ] = None,
) -> None:
    """The whole story: pipeline, canary, silent degradation, auto-rollback, runbook, backfill."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from rollbackkit.demo.story import run_demo

    console = _console()
    console.rule("[bold]rollbackkit demo")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        tasks: dict[str, Any] = {}

        def start(name: str) -> None:
            tasks[name] = bar.add_task(name, total=1)

        def report(name: str, outcome: str, seconds: float) -> None:
            bar.update(tasks[name], completed=1, description=f"[green]✓[/] {name}: {outcome}")

        result = run_demo(directory, report=report, start=start, notify=notify)
    _demo_summary(console, result)


def _demo_summary(console: Any, result: Any) -> None:
    """The demo's summary tables and numbers, fitted to the terminal (:mod:`rollbackkit.screens.demo`)."""
    from rollbackkit.screens.demo import render

    render(console, result)


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
        f"{option}: {value!r} is not a whole percent.", f"Give {option} 1-100 (a bare {option} means 100)."
    )


OPTIONAL_VALUES = {"--shadow": "100"}
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
        _fail(exc.exit_code, exc.message, exc.hint)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail(1, "Aborted.", "")
    except Exception as exc:
        # typer vendors click; its usage errors have show() and exit code 2.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        if os.environ.get("ROLLBACKKIT_DEBUG"):
            raise
        _fail(
            1,
            f"Unexpected error: {type(exc).__name__}: {exc}.",
            "This is a bug; rerun with ROLLBACKKIT_DEBUG=1 and report the traceback.",
        )
    sys.exit(code if isinstance(code, int) else 0)


def _fail(code: int, message: str, hint: str) -> None:
    if os.environ.get("ROLLBACKKIT_DEBUG"):
        import traceback

        traceback.print_exc()
    text = " ".join(f"error: {message} {hint}".split())  # always one line, whatever a value held
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):  # no-color.org: set and not empty
        text = f"\x1b[31m{text}\x1b[0m"
    sys.stderr.write(text + "\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
