"""Labels that arrive later: ground truth for logged predictions, from a file or a frame.

Through the environment's running server when it writes the log (``POST /labels``: it is the
log's one writer), else straight into the log file. Either way the labels are read as the
live version's classes (or numbers) and stored all or nothing
(:func:`rollbackkit.serving.labels.ingest`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.errors import InvalidInput
from rollbackkit.ops.label_results import LabelIngest
from rollbackkit.ops.predictions import log_server
from rollbackkit.ops.results import from_server
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import Deployments, require_known, resolve
from rollbackkit.registry.contents import describe
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.client import admin_call
from rollbackkit.serving.labels import check_join, ingest
from rollbackkit.serving.predlog.labels import incoming_frame
from rollbackkit.serving.predlog.opening import open_log


def ingest_labels(
    repo: str | Path,
    name: str,
    env: str,
    labels: pd.DataFrame | str | Path,
    *,
    on: str = "request_id",
    server: str | None = None,
) -> LabelIngest:
    """Store ground truth for rows ``name`` logged in ``env``, joined by request id or key.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        labels: A frame, or a CSV or Parquet file, with the join column and ``label``:
            ``on="request_id"``: ``request_id`` (what ``/predict`` answered) and optionally
            ``row`` (the row in its request, default 0); ``on="key"``: ``key`` (the request's
            key; labels every row logged under it). A label is one of the live version's
            classes (``"1"`` reads as the integer class 1, ``"true"`` as True) or, for a
            regressor, a finite number; an empty label is skipped (counted as ``missing``).
        on: ``request_id`` or ``key``.
        server: The URL of the server for ``env`` (default: the running one; none: the log file).

    Returns:
        :class:`~rollbackkit.ops.label_results.LabelIngest`: received, stored, replaced (the
        newest label wins), unknown ids (not stored; a sample named), duplicates, missing.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        VersionNotFound: ``name`` is not registered or was never in ``env``.
        InvalidInput: ``on`` is neither join; the file cannot be read, is empty or lacks a
            column; a label does not fit the live version (the first is named); nothing
            serves ``env``; or there is no prediction log. Nothing is stored.
        ServerError: The server refused or did not answer.
    """
    check_join(on)
    registry = Repository(repo)
    require_known(registry, validate_name(name), validate_name(env, "environment name"))
    frame, where = read_labels(labels) if not isinstance(labels, pd.DataFrame) else (labels, "labels row")
    incoming_frame(frame, on)  # a missing column, no rows or a bad row number: refused before anything is sent
    url = log_server(registry, name, env, server)
    if url is not None:
        body = {"on": on, "labels": _items(frame, on)}
        answer = admin_call(registry.paths, url, "labels", body, route="/labels")
        return from_server(LabelIngest.from_dict, {**answer, "via": url}, url, "labels", done=True)
    live = Deployments(registry).state(name, env).version
    if live is None:
        raise InvalidInput(
            f"Nothing serves {name} in {env}: there is no version whose classes the labels must match.",
            f"Deploy one first (rollbackkit deploy {name}@VERSION --env {env}).",
        )
    output = describe(registry, resolve(registry, f"{name}@{live}")).schema.output
    log = open_log(registry.paths, existing=True, sinks=False)
    try:
        done = ingest(log, output, f"{name}@{live}", name, env, frame, on, where)
    finally:
        log.close()
    return LabelIngest.from_dict({**done, "via": "log"})


def sole_name(repo: str | Path) -> str:
    """The project's only bundle name (the default NAME of ``labels ingest``); InvalidInput when
    there is none or several."""
    names = Repository(repo).names()
    if len(names) != 1:
        shown = ", ".join(names) or "none registered"
        raise InvalidInput(
            f"Which bundle are the labels for? ({shown})", "Name it: rollbackkit labels ingest FILE NAME --env ENV."
        )
    return names[0]


def read_labels(path: str | Path) -> tuple[pd.DataFrame, str]:
    """A CSV (every cell as text: labels are read as the version's type later) or Parquet file of
    labels, indexed by line (CSV) or row (Parquet), and how messages name a position in it."""
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InvalidInput(
            f"Cannot read labels from {source}: not a .csv or .parquet file.", "Give a CSV or Parquet file."
        )
    hint = "Give a CSV (with a header line) or Parquet file with the join column and a 'label' column."
    try:
        if suffix == ".csv":
            frame = pd.read_csv(source, dtype=str)
            return frame.set_axis(pd.RangeIndex(2, len(frame) + 2)), f"{source.name} line"
        return pd.read_parquet(source), f"{source.name} row"
    except FileNotFoundError:
        raise InvalidInput(f"There is no labels file {source}.", hint) from None
    except pd.errors.EmptyDataError:
        raise InvalidInput(f"The labels file {source} is empty.", hint) from None
    except Exception as exc:  # a parser's or Arrow's error: the file is not what it says
        reason = " ".join(str(exc).split())[:200]
        raise InvalidInput(f"Cannot read labels from {source}: {type(exc).__name__}: {reason}.", hint) from None


def _items(frame: pd.DataFrame, on: str) -> list[dict[str, Any]]:
    """The labels as ``POST /labels`` items (plain JSON values; NaN and NA as null)."""
    normal = incoming_frame(frame, on)
    ids = normal[on].tolist()
    values = [_plain(v) for v in normal["label"].tolist()]
    if on == "key":
        return [{"key": k, "label": v} for k, v in zip(ids, values, strict=True)]
    rows = normal["row"].tolist()
    return [{"request_id": r, "row": n, "label": v} for r, n, v in zip(ids, rows, values, strict=True)]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value
