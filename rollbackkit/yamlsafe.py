"""The one way rollbackkit reads YAML: bounded before any Python object is built.

Every YAML file rollbackkit reads (``gates.yaml``, ``serving.yaml``, ``bundle.yaml``,
``.rollbackkit/config.yaml``, ``dvc.yaml``, ``params.yaml``) may come from someone else: a
bundle in git, a file passed to ``register``. A "billion laughs" document (anchors whose
aliases nest nine deep) is a few hundred bytes that expands to 10^9 nodes once anything
walks it (a diff, a JSON dump, a validator); a 20,000-deep ``[[[...]]]`` exhausts Python's
recursion in the composer. So a document is first read as a stream of parser events
(PyYAML's parser keeps its own stack and never recurses) and refused when it is larger than
:data:`MAX_BYTES`, nests deeper than :data:`MAX_DEPTH`, holds more than :data:`MAX_ALIASES`
aliases, or would expand (every alias counted as the node it repeats) to more than
:data:`MAX_NODES` nodes, or holds an alias inside the node it names (a recursive alias builds a
list or mapping that contains itself, which every walker of the data recurses into forever).
Only then is it composed and constructed, with the safe loader.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rollbackkit.errors import InvalidInput

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 100
MAX_ALIASES = 1_000
MAX_NODES = 1_000_000


def decode(data: str | bytes, where: str, hint: str = "Fix the file.") -> str:
    """``data`` as text: UTF-8 (a byte-order mark is dropped), at most :data:`MAX_BYTES`."""
    if isinstance(data, str):
        if len(data) > MAX_BYTES:
            raise InvalidInput(f"{where} is larger than {MAX_BYTES // (1024 * 1024)} MB; refusing to read it.", hint)
        return data
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"{where} is larger than {MAX_BYTES // (1024 * 1024)} MB; refusing to read it.", hint)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{where} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}).", hint) from exc


def read_text(path: str | Path, where: str | None = None, hint: str = "Fix the file.") -> str:
    """Read a YAML (or other text) file: UTF-8, bounded, every failure naming the file."""
    path = Path(path)
    where = where or str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except IsADirectoryError as exc:
        raise InvalidInput(f"{where} is a directory, not a file.", hint) from exc
    except OSError as exc:
        raise InvalidInput(f"{where} cannot be read: {exc.strerror or exc}.", hint) from exc
    return decode(data, where, hint)


def check_events(events: Iterable[Any], where: str, hint: str = "Fix the file.") -> None:
    """Refuse a parser event stream that nests, aliases or expands beyond the bounds.

    Works on PyYAML's and ruamel.yaml's events alike (the same class names and ``anchor``).
    """
    depth = 0
    aliases = 0
    anchored: dict[str, int] = {}  # anchor -> expanded size of the node it names
    stack: list[list[Any]] = [[None, 0]]  # [anchor, expanded size so far] per open collection

    def close(anchor: str | None, size: int) -> None:
        if anchor is not None:
            anchored[anchor] = size
        stack[-1][1] += size
        if stack[-1][1] > MAX_NODES:
            raise InvalidInput(
                f"{where}: expands to more than {MAX_NODES:,} YAML nodes (aliases repeating aliases); "
                "refusing to read it.",
                hint,
            )

    for event in events:
        kind = type(event).__name__
        if kind in ("MappingStartEvent", "SequenceStartEvent"):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if getattr(event, "start_mark", None) else 0
                raise InvalidInput(f"{where} line {line}: nested deeper than {MAX_DEPTH} levels.", hint)
            stack.append([event.anchor, 1])
        elif kind in ("MappingEndEvent", "SequenceEndEvent"):
            depth -= 1
            anchor, size = stack.pop()
            close(anchor, size)
        elif kind == "ScalarEvent":
            close(event.anchor, 1)
        elif kind == "AliasEvent":
            aliases += 1
            if aliases > MAX_ALIASES:
                raise InvalidInput(f"{where}: more than {MAX_ALIASES} aliases (*name); refusing to read it.", hint)
            if event.anchor is not None and any(open_anchor == event.anchor for open_anchor, _ in stack):
                line = event.start_mark.line + 1 if getattr(event, "start_mark", None) else 0
                raise InvalidInput(
                    f"{where} line {line}: alias *{event.anchor} inside the node &{event.anchor} it names "
                    "(a recursive alias); refusing to read it.",
                    hint,
                )
            close(None, anchored.get(event.anchor, 1))  # an unknown alias: the composer reports it


def _syntax_error(exc: Exception, where: str, hint: str) -> InvalidInput:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = f" line {mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return InvalidInput(f"{where}{line}: not valid YAML ({problem}).", hint)


def compose(data: str | bytes, where: str, hint: str = "Fix the YAML syntax.") -> Any:
    """The checked document's node graph (for line numbers), or None when it is empty."""
    import yaml

    text = decode(data, where, hint)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        check_events(yaml.parse(text, Loader=loader), where, hint)
        return yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, where, hint) from exc


def load(data: str | bytes, where: str, hint: str = "Fix the YAML syntax.") -> Any:
    """Parse one YAML document safely (plain data only), within the bounds.

    Raises:
        InvalidInput: Not UTF-8, not valid YAML, or beyond a bound; the message names ``where``.
    """
    import yaml

    text = decode(data, where, hint)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        check_events(yaml.parse(text, Loader=loader), where, hint)
        return yaml.load(text, Loader=loader)  # a safe loader: plain data only
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, where, hint) from exc
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. a timestamp out of range
        raise InvalidInput(f"{where}: {type(exc).__name__}: {exc}.", hint) from exc


def load_file(path: str | Path, where: str | None = None, hint: str = "Fix the file.") -> Any:
    """:func:`load` a file (see :func:`read_text`)."""
    where = where or str(path)
    return load(read_text(path, where, hint), where, hint)


def load_round_trip(text: str, where: str, hint: str = "Fix the file.") -> Any:
    """Load with ruamel.yaml's round-trip loader (comments and quotes kept), within the bounds."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    text = decode(text, where, hint)
    yaml = YAML()
    yaml.preserve_quotes = True
    try:
        check_events(yaml.parse(text), where, hint)
        return yaml.load(text)
    except YAMLError as exc:
        raise _syntax_error(exc, where, hint) from exc
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"{where}: {type(exc).__name__}: {exc}.", hint) from exc
