"""The end of a journal file, read backwards in chunks: a torn last line and the last complete one.

A crash mid-append leaves a last line without its newline (torn: never fsync'd, never committed).
Appends and checks look only at the end, so neither reads a long journal whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

_CHUNK = 65536


def _line_start(fh: BinaryIO, end: int) -> int:
    """Offset of the first byte after the last newline before ``end`` (0: none)."""
    start = end
    while start > 0:
        step = min(_CHUNK, start)
        fh.seek(start - step)
        cut = fh.read(step).rfind(b"\n")
        if cut >= 0:
            return start - step + cut + 1
        start -= step
    return 0


def torn_tail(path: Path) -> tuple[int, bytes]:
    """Offset and bytes of a last line without its newline (``b""`` when there is none)."""
    if not path.exists():
        return 0, b""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0, b""
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return size, b""
        start = _line_start(fh, size)
        fh.seek(start)
        return start, fh.read()


def last_line(path: Path) -> tuple[int, bytes | None]:
    """Offset and bytes of the last complete line (0 and None for an empty journal)."""
    offset, _ = torn_tail(path)
    if offset == 0:
        return 0, None
    with open(path, "rb") as fh:
        end = offset - 1  # the newline that ends the last complete line
        start = _line_start(fh, end)
        fh.seek(start)
        return start, fh.read(end - start)
