"""Commands over the registry: set up, register, list, show, resolve, restore, verify and diff versions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rollbackkit.bundle.flavors import names as flavor_names
from rollbackkit.cli.common import JsonOpt, RepoOpt, open_registry, print_json, rich_console

if TYPE_CHECKING:
    from rollbackkit.bundle.manifest import RawInputs

commands = typer.Typer()
"""The registry's top-level commands."""


@commands.command()
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
        print_json({"root": str(registry.root), "remote": registry.dvc.remote_url()})
        return
    rich_console().print(
        f"[green]Initialised[/] rollbackkit in {registry.root} (DVC remote: {registry.dvc.remote_url()})"
    )


@commands.command()
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
    info = open_registry(repo).register(
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
        print_json(info.to_dict())
    else:
        console = rich_console()
        console.print(f"[green]Registered[/] {info.tag}  {info.bundle_id[:19]}  commit {info.commit[:10]}")
        if info.raw_inputs is not None:
            _raw_inputs(console, info.raw_inputs)
        for note in info.notes:  # e.g. a categorical input the default gates do not slice
            console.print("[yellow]note:[/]", note.replace("[", "\\["), highlight=False, soft_wrap=True)


def _raw_inputs(console: Any, raw: RawInputs) -> None:
    """``raw inputs: ...``, the columns a caller sends (:func:`rollbackkit.screens.show.raw_inputs_line`)."""
    from rollbackkit.screens.show import raw_inputs_line

    raw_inputs_line(console, raw)


@commands.command("list")
def list_(
    name: Annotated[str | None, typer.Argument(help="Only this bundle.")] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """List registered versions: name, version, created (local time), commit, message."""
    if name is not None:
        from rollbackkit.ops.situation import known

        known(repo, name)
    infos = open_registry(repo).versions(name)
    if as_json:
        keys = ("name", "version", "bundle_id", "created", "commit")
        print_json({"bundles": [{k: getattr(i, k) for k in keys} for i in infos]})
        return
    from rollbackkit.screens.versions import render

    render(rich_console(), infos)


@commands.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME@vX.Y.Z, NAME@latest or NAME#ENV.")],
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Show one version: components, hashes, schema summary, safety flags."""
    data = open_registry(repo).show(ref)
    if as_json:
        print_json(data)
        return
    from rollbackkit.screens.show import render

    render(rich_console(), data)


@commands.command()
def resolve(
    ref: Annotated[str, typer.Argument(help="NAME@latest, NAME@vX.Y.Z or NAME#ENV.")],
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Resolve a reference to one registered version."""
    info = open_registry(repo).resolve(ref)
    if as_json:
        print_json(info.to_dict())
    else:
        sys.stdout.write(f"{info.tag} {info.commit}\n")


@commands.command()
def restore(
    ref: Annotated[str, typer.Argument(help="NAME@vX.Y.Z (or NAME@latest, NAME#ENV).")],
    to: Annotated[Path | None, typer.Option(help="Materialise here instead of the workspace.")] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Restore a version's files (verified against the manifest), pulling from the remote if needed."""
    result = open_registry(repo).restore(ref, to=to)
    if as_json:
        print_json(
            {
                "version": result.info.to_dict(),
                "directory": str(result.directory),
                "files": result.files,
                "seconds": round(result.seconds, 4),
            }
        )
    else:
        rich_console().print(
            f"[green]Restored[/] {result.info.tag} into {result.directory} "
            f"({len(result.files)} files, verified, {result.seconds:.2f} s)"
        )


@commands.command()
def verify(
    ref: Annotated[str | None, typer.Argument(help="NAME@vX.Y.Z to check.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Check every registered version.")] = False,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Re-hash every component in git, the DVC cache and the remote; check tags and manifests."""
    if (ref is None) == (not all_):
        raise typer.BadParameter("give either NAME@VERSION or --all")
    report = open_registry(repo).verify(None if all_ else ref)
    if as_json:
        print_json(report.to_dict())
    else:
        console = rich_console()
        for p in report.problems:
            console.print(f"[red]{p.version}[/] {p.component}: {p.problem}")
        console.print(
            ("[green]OK[/]" if report.ok else "[red]FAILED[/]") + f": {len(report.checked)} version(s) checked"
        )
    if not report.ok:
        raise typer.Exit(1)


@commands.command("diff")
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
        print_json(result.to_dict())
    else:
        sys.stdout.write(result.to_text() + "\n")
