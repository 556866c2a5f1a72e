"""Labels that arrive later: ground truth for logged predictions, from a file or a frame.

Through the environment's running server when it writes the log (``POST /labels``: it is the
log's one writer), else straight into the log file. Either way the labels are read as the
classes (or numbers) of the live version or of a canary or shadow serving beside it, every
label is checked before any is sent or stored, and they are stored all or nothing
(:func:`rollbackkit.serving.labels.ingest`). A server takes a file over :data:`CHUNK_ROWS`
labels in several requests: all or nothing then holds per chunk.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.bundle.schema import OutputContract
from rollbackkit.errors import InvalidInput, ServerError
from rollbackkit.ops.label_results import LabelIngest
from rollbackkit.ops.predictions import log_server
from rollbackkit.ops.server_answers import from_server
from rollbackkit.refs import validate_name
from rollbackkit.registry.assignments import Deployments, require_known, resolve
from rollbackkit.registry.contents import describe
from rollbackkit.registry.repository import Repository
from rollbackkit.registry.serving_state import Serving
from rollbackkit.serving.client import admin_call
from rollbackkit.serving.labels import check_join, checked, ingest
from rollbackkit.serving.logs import open_log
from rollbackkit.serving.predlog.labels import incoming_frame

CHUNK_ROWS = 50_000
"""Labels per ``POST /labels`` request (a server takes 100,000 rows per request by default)."""


def ingest_labels(
    repo: str | Path,
    name: str,
    env: str,
    labels: pd.DataFrame | str | Path,
    *,
    on: str = "request_id",
    server: str | None = None,
    all_rows: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> LabelIngest:
    """Store ground truth for rows ``name`` logged in ``env``, joined by request id or key.

    Args:
        repo: Any path inside the project.
        name: The bundle name.
        env: The environment.
        labels: A frame, or a CSV or Parquet file, with the join column and ``label``:
            ``on="request_id"``: ``request_id`` (what ``/predict`` answered) and optionally
            ``row`` (the row in its request, default 0); ``on="key"``: ``key`` (the request's
            key; labels every row logged under it). A label is one of the classes of the
            live version or of a canary or shadow beside it (``"1"`` reads as the integer
            class 1, ``"true"`` as True) or, for a regressor, a finite number; an empty label
            is skipped (counted as ``missing``).
        on: ``request_id`` or ``key``.
        server: The URL of the server for ``env`` (default: the running one; none: the log file).
        all_rows: Let one key label more than 1,000 logged rows (refused otherwise: a
            customer id is not a prediction id).
        chunk_rows: Labels per request to a server (fewer when the server takes fewer: its
            ``--max-rows``, read from its refusal of the first chunk).

    Returns:
        :class:`~rollbackkit.ops.label_results.LabelIngest`: received, stored, replaced (the
        newest label wins), unknown ids (not stored; a sample named), duplicates, missing,
        and the chunks it went in.

    Raises:
        NotAGitRepo: ``repo`` is not inside a git work tree.
        InvalidName: ``name`` or ``env`` is not a valid name.
        VersionNotFound: ``name`` is not registered or was never in ``env``.
        InvalidInput: ``on`` is neither join; the file cannot be read, is empty or lacks a
            column; a label fits no version serving (the first is named); nothing serves
            ``env``; a key matches more than 1,000 rows without ``all_rows``; or there is no
            prediction log. Nothing is stored.
        ServerError: The server refused or did not answer (chunks it stored before are named).
    """
    check_join(on)
    if chunk_rows < 1:
        raise InvalidInput(f"chunk_rows must be at least 1, not {chunk_rows}.", "Use the default (50,000).")
    registry = Repository(repo)
    require_known(registry, validate_name(name), validate_name(env, "environment name"))
    frame, where = read_labels(labels) if not isinstance(labels, pd.DataFrame) else (labels, "labels row")
    _one_of_each(frame, on, "labels" if isinstance(labels, pd.DataFrame) else f"file {Path(labels).name}")
    incoming_frame(frame, on)  # a missing column, no rows or a bad row number: refused before anything is sent
    contracts = _contracts(registry, Deployments(registry).state(name, env))
    frame = checked(frame, contracts, where)  # the whole file, before any chunk is sent (the server's contract)
    url = log_server(registry, name, env, server, any_env=False)  # /labels adds to its own env's rows
    if url is not None:
        return _through(registry, url, frame, on, where, all_rows, chunk_rows)
    log = open_log(registry.paths, existing=True, sinks=False)
    try:
        done = ingest(log, contracts, name, env, frame, on, where, all_rows=all_rows)
    finally:
        log.close()
    return LabelIngest.from_dict({**done, "via": "log"})


def _contracts(registry: Repository, state: Serving) -> list[tuple[str, OutputContract]]:
    """``(NAME@VERSION, output contract)`` of the live version, then a canary or shadow beside it."""
    if state.version is None:
        raise InvalidInput(
            f"Nothing serves {state.name} in {state.env}: there is no version whose classes the labels must match.",
            f"Deploy one first (rollbackkit deploy {state.name}@VERSION --env {state.env}).",
        )
    versions = [state.version, *(a.version for a in (state.canary, state.shadow) if a is not None)]
    owners = [f"{state.name}@{v}" for v in dict.fromkeys(versions)]
    return [(owner, describe(registry, resolve(registry, owner)).schema.output) for owner in owners]


def _through(
    registry: Repository, url: str, frame: pd.DataFrame, on: str, where: str, all_rows: bool, chunk_rows: int
) -> LabelIngest:
    """Send checked labels to the server in chunks of ``chunk_rows`` and sum its answers; a
    server that takes fewer rows per request says how many (the refused chunk stored nothing),
    and the labels go again in chunks of that size."""
    items = _items(frame, on)
    starts = range(0, len(items), chunk_rows)
    parts: list[LabelIngest] = []
    for number, start in enumerate(starts, 1):
        body: dict[str, Any] = {"on": on, "labels": items[start : start + chunk_rows]}
        if all_rows:  # only when asked: a server older than the flag refuses the key
            body["all_rows"] = True
        try:
            answer = admin_call(registry.paths, url, "labels", body, route="/labels")
        except ServerError as exc:
            limit = _limit(exc.message) if number == 1 else None
            if limit is not None and limit < chunk_rows:
                return _through(registry, url, frame, on, where, all_rows, limit)
            if len(starts) == 1:
                raise
            span = f"{where}s {frame.index[start]}-{frame.index[min(start + chunk_rows, len(items)) - 1]}"
            kept = sum(p.stored for p in parts)
            raise ServerError(
                f"Labels chunk {number} of {len(starts)} ({span}) was refused, so it stored nothing; "
                f"the {number - 1} before it stored {kept:,} labels. {exc.message}",
                exc.hint or "Fix it and ingest the refused chunk and those after it again.",
            ) from None
        parts.append(from_server(LabelIngest.from_dict, {**answer, "via": url}, url, "labels", done=True))
    return LabelIngest.summed(parts)


def _limit(refusal: str) -> int | None:
    """The rows per request a server's refusal names (``takes at most 1,000 per request``), or None."""
    found = re.search(r"takes at most ([\d,]+) per request", refusal)
    return int(found.group(1).replace(",", "")) or None if found else None


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
    labels, indexed by line (CSV) or row (Parquet), and how messages name a position in it.

    Only an empty CSV cell is missing: ``NA``, ``None``, ``null``, ``N/A`` or ``nan`` are text
    (a class, or an id, may be spelled so).
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InvalidInput(
            f"Cannot read labels from {source}: not a .csv or .parquet file.", "Give a CSV or Parquet file."
        )
    hint = "Give a CSV (with a header line) or Parquet file with the join column and a 'label' column."
    try:
        if suffix == ".csv":
            frame = pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""])
            return frame.set_axis(pd.RangeIndex(2, len(frame) + 2)), f"{source.name} line"
        return pd.read_parquet(source), f"{source.name} row"
    except FileNotFoundError:
        raise InvalidInput(f"There is no labels file {source}.", hint) from None
    except pd.errors.EmptyDataError:
        raise InvalidInput(f"The labels file {source} is empty.", hint) from None
    except Exception as exc:  # a parser's or Arrow's error: the file is not what it says
        reason = " ".join(str(exc).split())[:200]
        raise InvalidInput(f"Cannot read labels from {source}: {type(exc).__name__}: {reason}.", hint) from None


def _one_of_each(frame: pd.DataFrame, on: str, what: str) -> None:
    """InvalidInput when the join column, ``row`` or ``label`` appears twice (a CSV's second one
    is renamed ``label.1`` by pandas: which would win is a guess)."""
    names = [str(c) for c in frame.columns]
    for column in dict.fromkeys([on, "row", "label"]):
        twins = [c for c in names if c == column or re.fullmatch(re.escape(column) + r"\.\d+", c)]
        if column in names and len(twins) > 1:
            raise InvalidInput(
                f"The {what} has {len(twins)} {column!r} columns.", f"Keep one {column!r} column and ingest again."
            )


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
