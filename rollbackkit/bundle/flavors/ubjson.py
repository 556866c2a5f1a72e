"""A strict, bounded reader of UBJSON (the binary JSON XGBoost writes its ``.ubj`` models in).

Every count is checked against the bytes left before anything is allocated, nesting is
limited, and the document must end exactly at the last byte: a truncated or crafted file
is an error here, never a crash or an exhausted memory. Typed arrays become numpy arrays.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

MAX_DEPTH = 64
_INTS = {b"i": ">i1", b"U": ">u1", b"I": ">i2", b"l": ">i4", b"L": ">i8"}
_FLOATS = {b"d": ">f4", b"D": ">f8"}
_SIZES = {**{k: np.dtype(v).itemsize for k, v in {**_INTS, **_FLOATS}.items()}, b"C": 1}


class UBJSONError(ValueError):
    """The bytes are not one complete UBJSON document."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise UBJSONError(f"ends early at byte {len(self.data)}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def marker(self) -> bytes:
        return bytes(self.take(1))

    def number(self, marker: bytes) -> Any:
        kind = _INTS.get(marker) or _FLOATS.get(marker)
        if kind is None:
            raise UBJSONError(f"expected a number, found marker {marker!r} at byte {self.pos - 1}")
        value = np.frombuffer(self.take(np.dtype(kind).itemsize), dtype=kind)[0]
        return value.item()

    def count(self) -> int:
        n = self.number(self.marker())
        if not isinstance(n, int) or n < 0 or n > len(self.data) - self.pos:
            raise UBJSONError(f"a count of {n} does not fit the {len(self.data) - self.pos} bytes left")
        return n

    def text(self) -> str:
        try:
            return bytes(self.take(self.count())).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UBJSONError(f"text that is not UTF-8 at byte {self.pos}") from exc

    def value(self, marker: bytes, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise UBJSONError(f"nested deeper than {MAX_DEPTH}")
        if marker in _INTS or marker in _FLOATS:
            return self.number(marker)
        if marker in (b"S", b"H"):
            return self.text()
        if marker == b"C":
            return bytes(self.take(1)).decode("latin-1")
        if marker in (b"T", b"F"):
            return marker == b"T"
        if marker == b"Z":
            return None
        if marker == b"[":
            return self.array(depth)
        if marker == b"{":
            return self.object(depth)
        raise UBJSONError(f"unknown marker {marker!r} at byte {self.pos - 1}")

    def _container(self) -> tuple[bytes | None, int | None]:
        """The optional ``$type`` and ``#count`` of a container."""
        kind = count = None
        if self.data[self.pos : self.pos + 1] == b"$":
            self.take(1)
            kind = self.marker()
            if self.data[self.pos : self.pos + 1] != b"#":
                raise UBJSONError("a typed container without a count")
        if self.data[self.pos : self.pos + 1] == b"#":
            self.take(1)
            count = self.count()
        return kind, count

    def array(self, depth: int) -> Any:
        kind, count = self._container()
        if kind is not None and count is not None and kind in _SIZES:
            size = _SIZES[kind]
            raw = self.take(count * size)
            if kind == b"C":
                return bytes(raw).decode("latin-1")
            return np.frombuffer(raw, dtype=_INTS.get(kind) or _FLOATS[kind])
        items: list[Any] = []
        while count is None or len(items) < count:
            marker = kind or self.marker()
            if count is None and marker == b"]":
                return items
            items.append(self.value(marker, depth + 1))
        return items

    def object(self, depth: int) -> dict[str, Any]:
        kind, count = self._container()
        out: dict[str, Any] = {}
        n = 0
        while count is None or n < count:
            if count is None and self.data[self.pos : self.pos + 1] == b"}":
                self.take(1)
                return out
            key = self.text()
            out[key] = self.value(kind or self.marker(), depth + 1)
            n += 1
        return out


def read_ubjson(data: bytes) -> Any:
    """Decode one UBJSON document that spans all of ``data``.

    Raises:
        UBJSONError: The bytes end early, hold an unknown marker or an impossible count,
            nest too deep, or go on after the document.
    """
    reader = _Reader(data)
    try:
        value = reader.value(reader.marker(), 0)
    except struct.error as exc:  # pragma: no cover - take() bounds every read
        raise UBJSONError(str(exc)) from exc
    if reader.pos != len(data):
        raise UBJSONError(f"{len(data) - reader.pos} bytes follow the document")
    return value
