"""Reading a file a newer rollbackkit wrote: its format first, then closed and open parts.

The rule (git's ``repositoryformatversion``, protobuf's unknown fields, MLflow's ``MLmodel``):

- A file names its **format** (``rollbackkit/bundle@1``). A reader refuses a format it does
  not know, in one line that says a newer rollbackkit wrote it.
- Within a known format, a **closed** part (what an id covers, what changes how bytes are
  read) refuses a field the reader does not know: it cannot verify or use the file without it.
- An **open** part (metadata) drops a field the reader does not know, and the reader lists the
  dropped ones (dotted paths) so a person is told, never silently.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from pydantic import BaseModel, ValidationError

from rollbackkit.errors import IntegrityError

SHOWN = 10
"""The most unknown field names one line shows (``and N more`` after them)."""


class NewerFormat(IntegrityError):
    """A file this rollbackkit cannot read because a newer one may have written it: upgrade to read it.

    Not a damaged version: every reader (``verified_manifest``) keeps this error's own advice.
    """


def listed(names: list[str] | tuple[str, ...]) -> str:
    """Field names from a file, safe for a terminal: non-printable ones escaped (``ascii``), at most
    :data:`SHOWN`, then ``and N more``."""
    shown = [name if name.isprintable() else ascii(name) for name in names[:SHOWN]]
    more = len(names) - SHOWN
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def fields_of(model: type) -> frozenset[str]:
    """The field names of a pydantic model or a dataclass."""
    if issubclass(model, BaseModel):
        return frozenset(model.model_fields)
    if dataclasses.is_dataclass(model):
        return frozenset(f.name for f in dataclasses.fields(model))
    raise TypeError(f"{model!r} is neither a pydantic model nor a dataclass")


def check_format(value: object, family: str, known: tuple[int, ...], where: str) -> None:
    """Refuse ``value`` unless it is ``FAMILY@N`` with ``N`` in ``known``.

    Raises:
        NewerFormat: A newer format ("written by a newer rollbackkit ...; upgrade rollbackkit
            to read it").
        IntegrityError: A value that is no format of ``family`` at all.
    """
    said = {f"{family}@{n}" for n in known}
    if value in said:
        return
    reads = ", ".join(sorted(said))
    found = re.fullmatch(re.escape(family) + r"@([1-9][0-9]{0,8})", value) if isinstance(value, str) else None
    if found and int(found.group(1)) > max(known):
        raise NewerFormat(
            f"{where} was written by a newer rollbackkit (format {value}); upgrade rollbackkit to read it.",
            f"This rollbackkit reads {reads}.",
        )
    raise IntegrityError(
        f"{where} has format {str(value)[:60]!r}, which is not one rollbackkit writes (this one reads {reads}).",
        "Restore it from git or re-register the bundle.",
    )


def unknown(data: object, model: type) -> list[str]:
    """The keys of ``data`` (when it is a mapping) that ``model`` has no field for, sorted."""
    if not isinstance(data, Mapping):
        return []
    known = fields_of(model)
    return sorted(str(k) for k in data if k not in known)


def refuse_unknown(data: object, model: type, path: str, where: str) -> None:
    """Refuse a closed part of a file that holds fields ``model`` does not know.

    Raises:
        NewerFormat: Names the part and its unknown fields (:func:`listed`).
    """
    extra = unknown(data, model)
    if extra:
        raise _not_known(f"{where}: {path}", extra)


def drop_unknown(data: object, model: type, path: str) -> tuple[object, list[str]]:
    """An open part without the fields ``model`` does not know, and their dotted paths.

    Anything but a mapping is returned as it is (validation then says what is wrong with it).
    """
    extra = unknown(data, model)
    if not extra or not isinstance(data, Mapping):
        return data, []
    known = fields_of(model)
    kept = {k: v for k, v in data.items() if k in known}
    return kept, [f"{path}.{k}" for k in extra]


def refusal(exc: ValidationError, where: str) -> IntegrityError:
    """The one-line error for a closed part that failed validation: unknown fields named first
    (a :class:`NewerFormat`)."""
    extra = [".".join(map(str, e["loc"])) for e in exc.errors() if e["type"] == "extra_forbidden"]
    if extra:
        return _not_known(where, extra)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
    return IntegrityError(
        f"{where} is not valid ({'.'.join(map(str, first['loc'])) or 'the file'}: {first['msg']}).",
        "Restore it from git or re-register the bundle.",
    )


def _not_known(what: str, extra: list[str]) -> NewerFormat:
    return NewerFormat(
        f"{what} has fields this rollbackkit does not know ({listed(extra)}), so it is not read: "
        "a newer rollbackkit may have written it; upgrade rollbackkit to read it.",
        "If no newer rollbackkit wrote it, restore it from git.",
    )
