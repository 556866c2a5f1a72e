"""The archive of a Python model: a directory (or a .zip of one) as deterministic zip bytes.

:func:`directory_files` and :func:`archive_files` read the files of a model directory or
archive, checking every name, symlink and size before a byte is kept; :func:`pack` writes
them as one archive whose bytes depend only on the files' names and contents (sorted
entries, stored uncompressed, fixed times and permissions), so the same directory gives
the same hash and bundle id on any machine.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

from rollbackkit.bundle.artifacts import describe_error
from rollbackkit.errors import InvalidInput, InvalidPath

MAX_BYTES = 256 * 1024 * 1024
MAX_FILES = 1000
MAX_DEPTH = 4
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")
_STAMP = (1980, 1, 1, 0, 0, 0)
_HINT = "Rebuild the archive from the model directory (rollbackkit register --model DIR)."


def _check_name(name: str, origin: str) -> None:
    """Refuse an entry path that is not a plain relative path of plain names."""
    parts = name.split("/")
    if (
        not name
        or "\\" in name
        or name.startswith("/")
        or len(parts) > MAX_DEPTH + 1
        or not all(_NAME.fullmatch(p) and p not in (".", "..") for p in parts)
    ):
        raise InvalidPath(
            f"{origin}: the entry {name!r} is not a plain path inside the model directory.",
            f"Use names of letters, digits and ._+- at most {MAX_DEPTH} folders deep.",
        )


def _skipped(name: str) -> bool:
    """Generated or hidden names left out of the archive (never ``.`` or ``..``: those are refused)."""
    return (name.startswith(".") and name not in (".", "..")) or name == "__pycache__" or name.endswith(".pyc")


def _add(files: dict[str, bytes], name: str, body: bytes, origin: str) -> None:
    _check_name(name, origin)
    files[name] = body
    if len(files) > MAX_FILES or sum(map(len, files.values())) > MAX_BYTES:
        raise _too_large(origin)


def directory_files(root: Path) -> dict[str, bytes]:
    """Every file of ``root`` by its relative posix path (symlinks only to files inside it)."""
    base = root.resolve()
    files: dict[str, bytes] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _skipped(d))
        for entry in [*dirs, *sorted(n for n in names if not _skipped(n))]:
            path = Path(folder, entry)
            if entry in dirs and not path.is_symlink():
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(base) or not target.is_file():
                    where = "outside" if not target.is_relative_to(base) else "inside"
                    raise InvalidPath(
                        f"{path} is a symlink to {'a folder' if target.is_dir() else 'something'} {where} the model "
                        "directory.",
                        "Copy the file into the model directory instead of linking it.",
                    )
            elif not path.is_file():
                raise InvalidPath(f"{path} is not a regular file.", "Keep only files and folders in the directory.")
            rel = path.relative_to(root).as_posix()
            _check_name(rel, str(root))
            if path.stat().st_size + sum(map(len, files.values())) > MAX_BYTES:
                raise _too_large(str(root))
            _add(files, rel, path.read_bytes(), str(root))
    return files


def _too_large(origin: str) -> InvalidInput:
    return InvalidInput(
        f"{origin} is too large for a Python model.",
        f"Keep it under {MAX_FILES} files and {MAX_BYTES // 2**20} MiB; store big data elsewhere.",
    )


def read_archive(path: Path) -> dict[str, bytes]:
    """The files of a .zip of a model directory (checked as :func:`archive_files` does)."""
    if path.stat().st_size > MAX_BYTES + 1024 * MAX_FILES:
        raise _too_large(str(path))
    return archive_files(path.read_bytes(), str(path))


def archive_files(data: bytes, origin: str) -> dict[str, bytes]:
    """The files of a zip archive, each entry checked before a byte of it is read."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InvalidInput(f"{origin} is not a readable zip archive: {describe_error(exc)}.", _HINT) from exc
    files: dict[str, bytes] = {}
    with archive:
        if len(infos) > MAX_FILES or sum(i.file_size for i in infos) > MAX_BYTES:
            raise _too_large(origin)
        for info in infos:
            if info.is_dir() or any(_skipped(p) for p in info.filename.split("/")):
                continue
            _check_name(info.filename, origin)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise InvalidPath(f"{origin}: the entry {info.filename!r} is a symlink.", "Store the file itself.")
            if info.filename in files:
                raise InvalidInput(f"{origin}: the entry {info.filename!r} appears twice.", _HINT)
            try:
                _add(files, info.filename, archive.read(info), origin)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
                raise InvalidInput(f"{origin}: the entry {info.filename!r} cannot be read: {exc}.", _HINT) from exc
    return files


def pack(files: Mapping[str, bytes]) -> bytes:
    """The deterministic archive of ``files``: sorted, stored, fixed time and permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_STAMP)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3
            archive.writestr(info, files[name])
    return buffer.getvalue()
