"""Is a version fit to serve? Compatibility, feature parity, preflight, its gates and drift."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rollbackkit.cli.common import JsonOpt, RepoOpt, ServerOpt, open_registry, print_json, rich_console

commands = typer.Typer()
"""The checks' top-level commands (``gates`` is a group of its own)."""

FeaturesOpt = Annotated[Path, typer.Option("--features", help="Live features: .csv/.parquet, or - for stdin.")]


def _verdict_out(report: Any, as_json: bool, text: str) -> None:
    """Print a compatibility or preflight report (its JSON, or ``text``); exit 1 if incompatible."""
    if as_json:
        print_json(report.to_dict())
    else:
        sys.stdout.write(text)
    if report.verdict == "incompatible":
        raise typer.Exit(1)


def _findings_text(verdict: str, findings: list[Any]) -> str:
    lines = [f"verdict: {verdict}"]
    lines += [f"  [{f.severity}] {f.column}: {f.kind} - {f.detail}" for f in findings]
    return "\n".join(lines) + "\n"


@commands.command()
def check(
    ref: Annotated[str, typer.Argument(help="The version that would score the frame.")],
    features: FeaturesOpt,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Is a live feature frame compatible, adaptable or incompatible with a version? Exit 1 if incompatible."""
    from rollbackkit.bundle.frames import read_features

    report = open_registry(repo).check(ref, read_features(features))
    _verdict_out(report, as_json, _findings_text(report.verdict, report.findings))


@commands.command()
def parity(
    ref: Annotated[str, typer.Argument(help="The version whose golden sample is replayed.")],
    preprocess: Annotated[
        Path | None, typer.Option(help="Code to check (default: the registered file, as now).")
    ] = None,
    repo: RepoOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Are this version's features still computed the same way? Exit 1 if any differs."""
    report = open_registry(repo).parity(ref, preprocess)
    if as_json:
        print_json(report.to_dict())
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


@commands.command()
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
    report = open_registry(repo).preflight(ref, frame, consumer=consumer, preprocess=preprocess)
    head = f"preflight {report.target}" + (f" (consumers expect {report.consumer})" if report.consumer else "")
    _verdict_out(report, as_json, head + "\n" + _findings_text(report.verdict, report.findings))


@commands.command()
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
        print_json(data)
        return
    for r in results:
        where = f" {r.slice}" if r.slice else ""
        sys.stdout.write(f"{r.column}{where}: psi {r.psi:.4f} js {r.js:.4f} n_ref {r.n_ref} n_cur {r.n_cur}\n")


gates_app = typer.Typer(help="Quality gates declared in a bundle.", no_args_is_help=True)


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
        print_json(report.to_dict())
    else:
        from rollbackkit.screens.gates import render

        render(rich_console(), report)
    if report.decision == "rollback":
        raise typer.Exit(3)
