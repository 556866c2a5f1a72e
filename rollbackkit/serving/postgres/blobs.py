"""A log read's input rows out of the batch blobs they point at, and a cache of those blobs.

A row of the store's log finds its inputs in ``log_inputs`` at ``(inputs_batch, inputs_table)``,
position ``input_at`` in that Arrow blob. A blob never changes once committed, so the blobs read
lately are kept (:class:`BlobCache`): a watchdog reading its window every few seconds fetches only
the blobs of the batches committed since.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rollbackkit.errors import InvalidInput
from rollbackkit.serving.postgres.encode import inputs_frame
from rollbackkit.serving.postgres.frames import blob_table, stored_inputs

CACHE_BYTES = 64 * 2**20
"""The most blob bytes a log keeps in memory."""

_PRUNED = "The log may have been pruned."


class BlobCache:
    """Recently read input blobs by ``(batch, signature)``, the least recently used dropped past ``limit`` bytes."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[str, str]) -> bytes | None:
        """The blob, if kept (it becomes the most recently used)."""
        with self._lock:
            blob = self._kept.get(key)
            if blob is not None:
                self._kept.move_to_end(key)
            return blob

    def put(self, key: tuple[str, str], blob: bytes) -> bytes:
        """Keep ``blob`` (unless larger than the whole cache); returns it."""
        with self._lock:
            if key not in self._kept and len(blob) <= self.limit:
                self._kept[key] = blob
                self._bytes += len(blob)
                while self._bytes > self.limit:
                    _, dropped = self._kept.popitem(last=False)
                    self._bytes -= len(dropped)
        return blob


def _pointers(rows: pa.Table) -> tuple[list[Any], list[Any], list[Any]]:
    return rows["inputs_batch"].to_pylist(), rows["inputs_table"].to_pylist(), rows["input_at"].to_pylist()


def _gather(
    rows: pa.Table, blobs: dict[tuple[str, str], bytes]
) -> dict[str, tuple[list[pa.Table], list[str], list[int]]]:
    """Per signature: the rows' inputs taken from their blobs (one part per blob), the column names,
    and each part row's position among ``rows``. InvalidInput when a row's blob or position is gone."""
    batch_ids, signatures, positions = _pointers(rows)
    by_blob: dict[tuple[str, str], list[int]] = {}
    for k, pair in enumerate(zip(batch_ids, signatures, strict=True)):
        by_blob.setdefault(pair, []).append(k)
    out: dict[str, tuple[list[pa.Table], list[str], list[int]]] = {}
    missing = 0
    for pair, members in by_blob.items():
        blob = blobs.get(pair)
        if blob is None:
            missing += len(members)
            continue
        table, names = blob_table(blob)
        at = np.array([positions[k] if positions[k] is not None else -1 for k in members], dtype="int64")
        inside = (at >= 0) & (at < table.num_rows)
        missing += int((~inside).sum())
        parts, _, order = out.setdefault(pair[1], ([], names, []))
        parts.append(table.take(pa.array(at[inside])))
        order.extend(k for k, ok in zip(members, inside.tolist(), strict=True) if ok)
    if missing:
        raise InvalidInput(f"{missing} rows have no stored inputs.", _PRUNED)
    return out


def window_inputs(rows: pa.Table, blobs: dict[tuple[str, str], bytes]) -> dict[str, pa.Table]:
    """Per signature, its rows' inputs in window order, named and typed as the DuckDB log stores them."""
    out = {}
    for signature, (parts, names, order) in _gather(rows, blobs).items():
        stacked = stored_inputs(parts, names)
        out[signature] = stacked.take(pa.array(np.argsort(np.array(order), kind="stable")))
    return out


def scored_inputs(rows: pa.Table, blobs: dict[tuple[str, str], bytes]) -> pd.DataFrame:
    """The rows' inputs, in row order and in the dtypes scored (several signatures stacked)."""
    batch_ids, signatures, positions = _pointers(rows)
    decoded: dict[tuple[str, str], pd.DataFrame] = {}
    parts, missing = [], 0
    for pair, run in itertools.groupby(
        zip(zip(batch_ids, signatures, strict=True), positions, strict=True), key=_first
    ):
        at = [position for _, position in run]
        blob = blobs.get(pair)
        if blob is None:
            missing += len(at)
            continue
        frame = decoded.get(pair)
        if frame is None:
            frame = decoded[pair] = inputs_frame(blob)
        inside = [p for p in at if p is not None and 0 <= p < len(frame)]
        missing += len(at) - len(inside)
        parts.append(frame.iloc[inside])
    if missing:
        raise InvalidInput(f"{missing} rows have no stored inputs.", _PRUNED)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)


def _first(item: tuple[Any, Any]) -> Any:
    return item[0]
