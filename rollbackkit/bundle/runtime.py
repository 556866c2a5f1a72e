"""The runtime a version was registered with, and how the runtime here compares.

At register, the manifest's ``registration.runtime`` records Python's version and the
versions of the libraries the model needs: numpy, pandas and its flavor's ``packages``
(an imported module's ``__version__``, else its distribution's version: nothing is
imported). Registration is not part of the bundle id, so recording it changes no id, and
manifests written before it (no ``runtime``) load as they did.

At load, serve and preflight, :func:`compare` judges the recorded runtime against this
one, library by library:

- the same version, or a minor or patch difference: shown (``info``), not a problem;
- a different major version: a ``warning`` ("xgboost 2.1.0 at register, 3.2.0 here: a
  different major version; check parity before traffic moves");
- a version the stored format is known not to load (:data:`KNOWN_LIMITS`): ``incompatible``,
  and the version is refused before a byte of its model is read, so no traffic moves.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ALWAYS = ("numpy", "pandas")
Severity = Literal["info", "warning", "incompatible"]


class Runtime(BaseModel):
    """Python's version and the versions of the libraries a model needs (import name -> version)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    python: str = Field(description="Python's version, e.g. 3.12.3.")
    libraries: dict[str, str] = Field(default_factory=dict, description="Import name -> its version.")


@dataclass(frozen=True)
class Limit:
    """A documented case where a model file does not load in some versions of its library.

    Attributes:
        library: The import name.
        suffixes: Model file suffixes it applies to (``()``: every file of the library).
        rule: ``min:X.Y`` (needs at least X.Y here), ``major`` (needs the major it was
            written with, or later), ``not-older`` (needs at least the major.minor that wrote it).
        why: The documented reason, for the message.
    """

    library: str
    suffixes: tuple[str, ...]
    rule: str
    why: str


# Kept small and documented: each row is a format change its library announced.
KNOWN_LIMITS: tuple[Limit, ...] = (
    Limit("xgboost", (".ubj",), "min:1.6", "XGBoost reads UBJSON model files from 1.6 on"),
    Limit("xgboost", (".json",), "min:1.0", "XGBoost reads JSON model files from 1.0 on"),
    Limit("lightgbm", (".txt",), "major", "a LightGBM 4.x text model may not load in 3.x"),
    Limit("skops", (".skops",), "not-older", "skops files need skops at least as new as the one that wrote them"),
)


@dataclass(frozen=True)
class RuntimeFinding:
    """One library (or Python) compared: what was recorded, what runs here, and the verdict.

    Attributes:
        library: ``python`` or an import name.
        registered: The version recorded at register.
        here: The version here (None: not installed).
        severity: ``info`` (same or minor/patch), ``warning`` (major), ``incompatible`` (will not load).
        detail: The line that says it.
    """

    library: str
    registered: str
    here: str | None
    severity: Severity
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class RuntimeReport:
    """Every comparison of one version's recorded runtime with this one (empty: none recorded)."""

    findings: tuple[RuntimeFinding, ...] = ()

    @property
    def incompatible(self) -> list[RuntimeFinding]:
        """Libraries whose version here is known not to load the model."""
        return [f for f in self.findings if f.severity == "incompatible"]

    @property
    def problems(self) -> list[RuntimeFinding]:
        """Warnings and incompatibilities (what preflight reports)."""
        return [f for f in self.findings if f.severity != "info"]

    def to_dict(self) -> list[dict[str, Any]]:
        """JSON-ready list of findings."""
        return [f.to_dict() for f in self.findings]


def installed_version(name: str) -> str | None:
    """The version of import name ``name`` here (``python``: the interpreter's), None when not installed.

    Nothing is imported: an already-imported module's ``__version__``, else the installed
    distribution's version from its metadata (``sklearn`` -> ``scikit-learn``, ``xgboost`` ->
    ``xgboost`` or ``xgboost-cpu``). A manifest names libraries, so it must not be able to
    make ``show`` or ``preflight`` run a module's code.
    """
    if name == "python":
        return platform.python_version()
    module = sys.modules.get(name)
    version = getattr(module, "__version__", None) if module is not None else None
    if version is not None:
        return str(version)
    for distribution in _distributions().get(name, [name]):
        try:
            return importlib.metadata.version(distribution)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            continue
    return None


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    """Top-level import name -> the installed distributions providing it (read once, from metadata)."""
    return {name: list(dict.fromkeys(dists)) for name, dists in importlib.metadata.packages_distributions().items()}


def current(names: Iterable[str]) -> Runtime:
    """Python's version and each of ``names``' version here (those not installed left out)."""
    found = {name: installed_version(name) for name in dict.fromkeys(names)}
    return Runtime(python=platform.python_version(), libraries={k: v for k, v in found.items() if v is not None})


def record(packages: Iterable[str]) -> Runtime:
    """The runtime to record at register for a model needing ``packages`` (plus numpy and pandas)."""
    return current([*ALWAYS, *packages])


def _release(version: str) -> tuple[int, ...]:
    """The leading numbers of a version (``2.1.0rc1`` -> (2, 1, 0)); () when it has none."""
    numbers = []
    for part in version.split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        numbers.append(int(match.group()))
        if match.end() != len(part):
            break
    return tuple(numbers)


def compare(recorded: Runtime | None, model_file: str = "", here: Runtime | None = None) -> RuntimeReport:
    """Judge the runtime ``recorded`` at register against ``here`` (default: this process's).

    Args:
        recorded: The manifest's ``registration.runtime`` (None: an older manifest, no findings).
        model_file: The model component's file name (its suffix selects :data:`KNOWN_LIMITS`).
        here: The runtime to compare with (default: the recorded libraries' versions here).
    """
    if recorded is None:
        return RuntimeReport()
    now = here or current(recorded.libraries)
    suffix = PurePosixPath(model_file).suffix.lower()
    findings = [_finding("python", recorded.python, now.python, suffix)]
    for name, version in recorded.libraries.items():
        findings.append(_finding(name, version, now.libraries.get(name), suffix))
    return RuntimeReport(tuple(findings))


def _finding(name: str, registered: str, here: str | None, suffix: str) -> RuntimeFinding:
    at = f"{name} {registered} at register"
    if here is None:
        return RuntimeFinding(name, registered, None, "warning", f"{at}, not installed here")
    for limit in KNOWN_LIMITS:
        if (
            limit.library == name
            and (not limit.suffixes or suffix in limit.suffixes)
            and _breaks(limit, registered, here)
        ):
            return RuntimeFinding(
                name, registered, here, "incompatible", f"{at}, {here} here: {limit.why}; the model will not load"
            )
    old, new = _release(registered), _release(here)
    if old[:1] != new[:1]:
        detail = f"{at}, {here} here: a different major version; check parity before traffic moves"
        return RuntimeFinding(name, registered, here, "warning", detail)
    detail = f"{at}, {here} here" + ("" if registered == here else ": a minor or patch difference")
    return RuntimeFinding(name, registered, here, "info", detail)


def _breaks(limit: Limit, registered: str, here: str) -> bool:
    old, new = _release(registered), _release(here)
    if not old or not new:
        return False
    if limit.rule.startswith("min:"):
        return new < _release(limit.rule.removeprefix("min:"))
    if limit.rule == "major":
        return new[:1] < old[:1]
    return new[:2] < old[:2]  # not-older
