"""Checks of a registered version before it serves: compatibility with live features, parity of
its preprocessing, and one preflight verdict that adds the output contract consumers expect.

The verdicts themselves are pure (:mod:`rollbackkit.analysis.preflight`,
:mod:`rollbackkit.analysis.parity`, :func:`rollbackkit.bundle.compat.check`); this module
reads the versions they judge from the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.bundle.version import VersionInfo
from rollbackkit.errors import IntegrityError, VersionNotFound
from rollbackkit.registry.assignments import resolve
from rollbackkit.registry.contents import describe
from rollbackkit.registry.repository import Repository

if TYPE_CHECKING:
    import pandas as pd

    from rollbackkit.analysis.parity import ParityReport
    from rollbackkit.analysis.preflight import PreflightReport
    from rollbackkit.bundle.artifacts import Preprocess
    from rollbackkit.bundle.compat import CompatReport, Finding, Thresholds
    from rollbackkit.bundle.model import LoadedBundle
    from rollbackkit.bundle.schema import OutputContract


def check(
    repo: Repository, info: VersionInfo, features: pd.DataFrame | str | Path, thresholds: Thresholds | None = None
) -> CompatReport:
    """Can version ``info`` score this live frame (compatible / adaptable / incompatible)?"""
    from rollbackkit.bundle.compat import check
    from rollbackkit.bundle.conform import conform
    from rollbackkit.bundle.frames import read_frame

    schema = describe(repo, info).schema
    return check(schema, conform(read_frame(features, "live features"), schema), thresholds)


def parity(repo: Repository, bundle: LoadedBundle, preprocess: str | Path | Preprocess | None) -> ParityReport:
    """Re-run preprocessing on the bundle's golden inputs and compare features and outputs.

    ``preprocess`` is the code to check: a ``.py`` file, a function, or None for the file the
    version was registered from as it is in the repo now.
    """
    from rollbackkit.analysis.parity import feature_parity
    from rollbackkit.bundle.artifacts import load_preprocess

    if callable(preprocess):
        return feature_parity(bundle, preprocess, getattr(preprocess, "__qualname__", "a function"))
    if preprocess is not None:
        return feature_parity(bundle, load_preprocess(Path(preprocess)), str(preprocess))
    origin = bundle.manifest.registration.preprocess_origin
    if origin and (repo.root / origin).is_file():
        return feature_parity(bundle, load_preprocess(repo.root / origin), origin)
    label = (
        "the bundle's own code (no current copy in the repo)"
        if bundle.preprocess_source
        else ("no preprocessing (the model holds it)")
    )
    return feature_parity(bundle, bundle.preprocess, label)


def preflight_bundle(
    repo: Repository,
    bundle: LoadedBundle,
    features: pd.DataFrame | str | Path | None = None,
    *,
    consumer: str | None = None,
    preprocess: str | Path | Preprocess | None = None,
    thresholds: Thresholds | None = None,
    rollback: bool = False,
) -> PreflightReport:
    """One verdict for a loaded bundle (see :meth:`Registry.preflight`); ``rollback``: the change is a
    rollback (see :func:`output_contract`)."""
    from rollbackkit.analysis.preflight import combine
    from rollbackkit.bundle.compat import check
    from rollbackkit.bundle.conform import conform
    from rollbackkit.bundle.frames import read_frame

    compat = None
    if features is not None:  # a CSV carries no dtypes: read it with the trained ones where lossless
        compat = check(bundle.schema, conform(read_frame(features, "live features"), bundle.schema), thresholds)
    report = parity(repo, bundle, preprocess)
    consumer_info = _consumer(repo, bundle.info, consumer)
    contract = output_contract(repo, bundle.schema.output, bundle.info, consumer_info, rollback=rollback)
    consumer_tag = consumer_info.tag if consumer_info else None
    return combine(bundle.info.tag, consumer_tag, compat, report, contract, bundle.runtime)


UNCHECKED = "output_contract_unchecked"
"""The finding kind of an output contract that was not checked (the consumer's version unreadable)."""


def output_contract(
    repo: Repository,
    output: OutputContract,
    target: VersionInfo,
    consumer: VersionInfo | None,
    *,
    rollback: bool = False,
) -> list[Finding]:
    """The output-contract findings of ``target`` (its ``output``) against ``consumer``'s; none when
    they are one version. A consumer whose manifest fails integrity checks is not checked: on a
    ``rollback`` (the path that always works) or when a newer rollbackkit wrote it, one ``warning``
    finding of kind :data:`UNCHECKED` says so; elsewhere that finding is ``incompatible`` (an integrity
    alarm never switches the gate off: ``--force`` overrides it, and the override is recorded)."""
    from rollbackkit.analysis.preflight import contract_findings
    from rollbackkit.bundle.compat import Finding
    from rollbackkit.bundle.forward import NewerFormat

    if consumer is None or consumer.tag == target.tag:
        return []
    try:
        served = describe(repo, consumer).schema.output
    except IntegrityError as exc:
        why = exc.message.removeprefix(f"{consumer.tag}: ").rstrip(".")
        newer = isinstance(exc, NewerFormat)
        if newer and why.startswith(f"{consumer.tag}:"):  # "NAME@V:bundles/NAME/bundle.yaml was written by ..."
            why = why.partition(" ")[2].removeprefix("was ")
        then = "upgrade rollbackkit" if newer else "run 'rollbackkit verify --all'"
        what = "'s manifest is in a newer format" if newer else " failed integrity checks"
        said = f"{consumer.version}{what} ({why}): the output contract was not checked; {then}"
        return [Finding("*", UNCHECKED, said, "warning" if rollback or newer else "incompatible")]
    return contract_findings(output, served)


def unchecked(report: dict[str, Any]) -> dict[str, str]:
    """The journal field of a change whose preflight did not check the output contract (else empty)."""
    said = [f["detail"] for f in report.get("findings", ()) if f.get("kind") == UNCHECKED]
    return {"contract_unchecked": said[0]} if said else {}


def _consumer(repo: Repository, target: VersionInfo, consumer: str | None) -> VersionInfo | None:
    if consumer is not None:
        return resolve(repo, consumer)
    try:
        return resolve(repo, f"{target.name}#prod")
    except VersionNotFound:
        return resolve(repo, f"{target.name}@latest")
