"""Bundle manifest: the components of one model version, their hashes, and the bundle id.

A bundle directory (``bundles/NAME/``) holds ``bundle.yaml`` plus its components. Text
components (schema, serving config, gates, preprocessing code) are stored in git so they
diff in review; binary ones (model, reference profile, golden sample) are tracked by DVC.

The **bundle id** is ``sha256:`` over the canonical JSON of the manifest's content part
(format, name, components). The ``registration`` block (version, time, author, message)
is left out, so the same content always has the same id and any change gives a new one.
"Same content" means byte-identical components: skops names arrays by object id, so saving
one in-memory estimator twice gives different bytes; register the same ``.skops`` file to
keep the id.

**Reading a manifest a newer rollbackkit wrote** (the rule, :mod:`rollbackkit.bundle.forward`):

- ``format`` names what the file means. A reader refuses a format it does not know in one line
  ("written by a newer rollbackkit (format rollbackkit/bundle@2); upgrade rollbackkit to read it").
- The top level and each component are closed: a field the reader does not know refuses the
  manifest, since the bundle id covers the components and the reader could not verify or use them.
  A content field added later is left out of the id and of the file while unset (``classes``), so
  bundles that do not use it keep their id and stay readable by releases that predate it.
- ``registration`` (and its ``runtime`` and ``raw_inputs``) is open: a field the reader does not
  know is dropped and listed in :attr:`Manifest.ignored` (``show`` prints it).
- A must-understand field, one an older reader would get wrong by ignoring it (a security setting,
  anything that changes what may load or how it serves), never goes into ``registration`` as an
  optional field: it bumps the format (writers then write the new format only for the bundles that
  use it) or becomes a content field. A field's default never changes within a format.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from rollbackkit.bundle import forward
from rollbackkit.bundle.runtime import Runtime
from rollbackkit.errors import IntegrityError, InvalidInput, InvalidPath

MANIFEST_FILE = "bundle.yaml"
MANIFEST_FAMILY = "rollbackkit/bundle"
MANIFEST_FORMATS: tuple[int, ...] = (1,)
"""The manifest formats this release reads (``rollbackkit/bundle@N``)."""
MANIFEST_FORMAT = "rollbackkit/bundle@1"
"""The format every writer writes by default (``Manifest.format``, a bundle-id input) and what a file
without ``format`` means: pinned, never the newest read (adding ``2`` to :data:`MANIFEST_FORMATS`
must not change the id of unchanged content, nor make older readers refuse it); a newer format is
written only by the bundles that use it."""
_CHUNK = 4 * 1024 * 1024

ROLES: tuple[str, ...] = ("model", "schema", "serving", "preprocess", "gates", "reference", "golden")
Storage = Literal["git", "dvc"]
# Fields added after the first manifest format: left out of the bundle id while unset, so
# the ids of bundles registered before them do not change.
_LATER_FIELDS = frozenset({"classes"})


class Component(BaseModel):
    """One file of a bundle, as recorded in the manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="File name inside the bundle directory.")
    md5: str = Field(description="md5 of the bytes, as DVC computes it.")
    size: int = Field(ge=0)
    storage: Storage
    format: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,31}$",
        description="Model serialisation format (its flavor's, see rollbackkit.bundle.flavors).",
    )
    trusted_types: tuple[str, ...] = Field(
        default=(), description="Types a skops model needs trusted, fixed at register time."
    )
    classes: tuple[str | int | float | bool, ...] | None = Field(
        default=None, description="Class labels in the model's output order, when its file does not hold them."
    )

    def content(self) -> dict[str, object]:
        """The fields that make the bundle id (later fields only when set)."""
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if v is not None or k not in _LATER_FIELDS}


InputRule = Literal["declared", "given", "model", "probed", "all"]


@dataclass(frozen=True)
class RawInputs:
    """Which raw columns a version takes from the data, and how that was decided.

    ``rule``: ``declared`` (``INPUTS`` in preprocess.py), ``given`` (``features=``), ``model`` (the
    model's recorded feature names), ``probed`` (the preprocess gives the model the same features
    without ``dropped``) or ``all`` (every column but the target; ``reason`` says why).
    The rule itself: :mod:`rollbackkit.registry.raw_inputs`.
    """

    kept: tuple[str, ...]
    dropped: tuple[str, ...] = ()
    rule: InputRule = "all"
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (``show --json``)."""
        return {"kept": list(self.kept), "dropped": list(self.dropped), "rule": self.rule, "reason": self.reason}

    def line(self) -> str:
        """``alcohol, malic_acid (probed; left out: promo)``: what register and ``show`` print."""
        shown = ", ".join(self.kept[:12]) + (f" and {len(self.kept) - 12} more" if len(self.kept) > 12 else "")
        left = ", ".join(self.dropped[:8]) + (f" and {len(self.dropped) - 8} more" if len(self.dropped) > 8 else "")
        notes = [self.rule, *([f"left out: {left}"] if left else []), *([self.reason] if self.reason else [])]
        return f"{shown} ({'; '.join(notes)})"

    def warning(self) -> str | None:
        """:meth:`line` when every column was kept for a ``reason`` (register and ``show`` print it yellow), else None.

        The reason carries its own hint (a preprocess's ``INPUTS``); a model without one gets none.
        """
        return self.line() if self.rule == "all" and self.reason else None


class Registration(BaseModel):
    """Who registered which version when; not part of the bundle id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    created: str
    author: str = ""
    message: str = ""
    preprocess_origin: str = Field(
        default="", description="Repo-relative path the preprocessing code was registered from."
    )
    trust: tuple[str, ...] = Field(
        default=(),
        description="Model types trusted by the registering operator (--trust, or a fitted object's own types) "
        "beyond the reviewed list; a load refuses any other.",
    )
    unsafe: bool = Field(default=False, description="The operator allowed a joblib/pickle model with --unsafe.")
    runtime: Runtime | None = Field(
        default=None,
        description="Python and the model's libraries at register (see rollbackkit.bundle.runtime; None: "
        "registered before it was recorded).",
    )
    raw_inputs: RawInputs | None = Field(
        default=None, description="The raw input columns and how they were chosen (None: registered before)."
    )


class Manifest(BaseModel):
    """The content of ``bundle.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = MANIFEST_FORMAT
    name: str
    components: dict[str, Component]
    registration: Registration
    bundle_id: str = ""
    _ignored: tuple[str, ...] = PrivateAttr(default=())

    @property
    def ignored(self) -> tuple[str, ...]:
        """Registration fields this rollbackkit does not know, dropped on reading (dotted paths; empty: none).

        A newer rollbackkit wrote them; they are metadata, not part of the bundle id.
        """
        return self._ignored

    def __eq__(self, other: object) -> bool:
        """Equal when every field is (what a reading ignored is not compared)."""
        if not isinstance(other, Manifest):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def content_id(self) -> str:
        """The bundle id computed from the content part of this manifest."""
        content = {
            "format": self.format,
            "name": self.name,
            "components": {role: comp.content() for role, comp in sorted(self.components.items())},
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def with_id(self) -> Manifest:
        """A copy whose ``bundle_id`` field holds :meth:`content_id`."""
        return self.model_copy(update={"bundle_id": self.content_id()})

    def to_yaml(self) -> str:
        """Serialise to the YAML written as ``bundle.yaml``."""
        import yaml

        data = self.model_dump(mode="json")
        # a later content field only when set, as in the bundle id
        data["components"] = {role: comp.content() for role, comp in self.components.items()}
        return yaml.safe_dump(data, sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str | bytes, where: str = MANIFEST_FILE) -> Manifest:
        """Parse and validate ``bundle.yaml``; raise IntegrityError on anything malformed.

        A format this release does not know, or an unknown field in a closed part, is refused;
        unknown registration fields are dropped and listed in :attr:`ignored` (module docstring).
        """
        from rollbackkit.yamlsafe import load

        try:
            data, ignored = _readable(load(text, where), where)
            manifest = cls.model_validate(data)
        except InvalidInput as exc:
            raise IntegrityError(exc.message, "Restore it from git or re-register the bundle.") from exc
        except (ValidationError, TypeError) as exc:
            first = str(exc).splitlines()[0]
            raise IntegrityError(
                f"{where} is not a valid rollbackkit manifest ({first}).",
                "Restore it from git or re-register the bundle.",
            ) from exc
        for comp in manifest.components.values():
            safe_relative(comp.path, where)
        manifest._ignored = tuple(ignored)
        return manifest

    @property
    def version(self) -> str:
        """The registered version, e.g. ``v1.0.0``."""
        return self.registration.version


def _readable(data: object, where: str) -> tuple[object, list[str]]:
    """``bundle.yaml``'s data as this release reads it, and the registration fields it dropped.

    Raises:
        IntegrityError: An unknown format, or an unknown field at the top level or in a component.
    """
    if not isinstance(data, dict):
        return data, []
    forward.check_format(data.get("format", MANIFEST_FORMAT), MANIFEST_FAMILY, MANIFEST_FORMATS, where)
    forward.refuse_unknown(data, Manifest, "the top level", where)
    components = data.get("components")
    for role, comp in components.items() if isinstance(components, dict) else ():
        forward.refuse_unknown(comp, Component, f"components.{role}", where)
    registration, ignored = forward.drop_unknown(data.get("registration"), Registration, "registration")
    if isinstance(registration, dict):
        registration = dict(registration)
        for key, model in (("runtime", Runtime), ("raw_inputs", RawInputs)):
            if key in registration:
                registration[key], dropped = forward.drop_unknown(registration[key], model, f"registration.{key}")
                ignored += dropped
        data = {**data, "registration": registration}
    return data, ignored


def md5_file(path: str | os.PathLike[str]) -> str:
    """md5 hex digest of a file's bytes (DVC 3's ``md5`` hash)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def md5_bytes(data: bytes) -> str:
    """md5 hex digest of bytes."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def safe_relative(path: str, where: str = "manifest") -> str:
    """Return ``path`` if it is a plain relative path that stays inside its directory."""
    parts = Path(path).parts
    if not path or Path(path).is_absolute() or ".." in parts or "\\" in path or len(parts) != 1:
        raise InvalidPath(
            f"Unsafe component path {path!r} in {where}.",
            "Component paths must be plain file names inside the bundle directory.",
        )
    return path


def copy_verified(src: str | os.PathLike[str], dest: str | os.PathLike[str], md5: str) -> None:
    """Copy ``src`` to ``dest`` hashing on the way; only a matching copy is renamed into place.

    Raises:
        IntegrityError: The bytes do not hash to ``md5``; ``dest`` is left untouched.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.rbk-tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        # Hash each chunk while a writer thread writes the same chunk: both release the GIL,
        # so a large restore costs about max(hash, write) instead of their sum, and what
        # lands on disk is exactly what was hashed.
        with open(src, "rb") as fin, open(tmp, "wb") as fout, ThreadPoolExecutor(1) as writer:
            pending: Future[int] | None = None
            while chunk := fin.read(_CHUNK):
                if pending is not None:
                    pending.result()
                pending = writer.submit(fout.write, chunk)
                digest.update(chunk)
            if pending is not None:
                pending.result()
        if digest.hexdigest() != md5:
            raise IntegrityError(
                f"{src} does not match its manifest (md5 {digest.hexdigest()} != {md5}).",
                "The cached copy was altered; delete it and run 'rollbackkit restore' to fetch "
                "it again from the DVC remote.",
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temp file, fsync and rename.

    The temp file's name is unique to this call, so concurrent writers of one path (threads
    of a server, other processes) never rename each other's half-written file away.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.rbk-tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    raw = data.encode() if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
