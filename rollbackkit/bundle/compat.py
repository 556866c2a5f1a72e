"""Can this version score this live frame? ``compatible``, ``adaptable`` or ``incompatible``.

``adaptable`` means a declared, lossless adaptation makes the frame scoreable: extra columns
dropped, columns reordered, safe dtype widening (int32 -> int64, float32 -> float64,
int -> float, str <-> category) and values that convert exactly (whole-number floats, Python
booleans). Each column is decided by :func:`rollbackkit.bundle.conversions.conversion`, which
:func:`apply_adaptation` applies too. The adaptation is returned as data and
:func:`apply_adaptation` applies exactly it; the serving layer uses the same function.
Unlike MLflow, which only warns on extra columns, every adaptation is explicit.

Findings carry a severity: ``incompatible`` decides the verdict, ``adapt`` says what the
adaptation does, ``warning`` is reported without blocking (e.g. a few unseen categories).
Missing values are judged against the schema: a column missing far more often than in
training is a warning, and any missing value where the version cannot score one (recorded
per feature at register time, ``Feature.accepts_null``) is incompatible.
``LoadedBundle.predict`` applies this same check to every frame it is given without a
declared adaptation, so what ``check`` calls incompatible is never scored. The rule lives in
the bundle layer beside :mod:`rollbackkit.bundle.conform` for that reason: a version needs it
to score at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from rollbackkit.bundle.conversions import conversion, converted
from rollbackkit.bundle.schema import Feature, Schema
from rollbackkit.cards import Card, HasCard
from rollbackkit.errors import IncompatibleInput, InvalidInput

Verdict = Literal["compatible", "adaptable", "incompatible"]
Severity = Literal["incompatible", "adapt", "warning"]
VERDICT_ORDER: dict[str, int] = {"compatible": 0, "adaptable": 1, "incompatible": 2}


class HasSchema(Protocol):
    """A version (loaded or described bundle): anything with the version's :class:`Schema`."""

    @property
    def schema(self) -> Schema:
        """The version's input features and output contract."""


@dataclass(frozen=True)
class Thresholds:
    """When domain drift makes a frame incompatible.

    Attributes:
        unseen_category_share: Share of rows whose category was never seen in training.
        far_out_of_range_share: Share of rows far outside the trained numeric range.
        far_margin: "Far" means beyond min/max by more than this fraction of (max - min).
        missing_share_increase: A column's missing share this far above its training
            share is a warning (missing values the model cannot score are incompatible).
    """

    unseen_category_share: float = 0.05
    far_out_of_range_share: float = 0.01
    far_margin: float = 0.5
    missing_share_increase: float = 0.1


@dataclass(frozen=True)
class Finding:
    """One observation about a column (``column`` is ``"*"`` for frame-wide ones)."""

    column: str
    kind: str
    detail: str
    severity: Severity
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Adaptation:
    """The exact, lossless change that makes a frame scoreable by a version."""

    drop: list[str] = field(default_factory=list)
    reorder: bool = False
    casts: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when the frame needs no change."""
        return not (self.drop or self.reorder or self.casts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"drop", "reorder", "casts"}``."""
        return {"drop": self.drop, "reorder": self.reorder, "casts": self.casts}


@dataclass(frozen=True)
class CompatReport(HasCard):
    """The verdict of a compatibility check, its findings, and the adaptation."""

    verdict: Verdict
    findings: list[Finding]
    adaptation: Adaptation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the shape of ``rollbackkit check --json``)."""
        return {
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
            "adaptation": self.adaptation.to_dict(),
        }

    def columns(self, severity: Severity = "incompatible") -> list[str]:
        """Columns named by findings of one severity."""
        return sorted({f.column for f in self.findings if f.severity == severity})

    def said(self, most: int, severity: Severity = "incompatible") -> str:
        """The first ``most`` findings of one severity in words: ``col: kind (detail); ...; and N more``."""
        found = [f for f in self.findings if f.severity == severity]
        words = "; ".join(f"{f.column}: {f.kind} ({f.detail})" for f in found[:most])
        return words + (f"; and {len(found) - most} more" if len(found) > most else "")

    def card(self) -> Card:
        """Its card: verdict, findings by severity, the adaptation, each finding."""
        from rollbackkit.bundle.card_views import compat_card

        return compat_card(self)


def check(
    schema: Schema | HasSchema,
    frame: pd.DataFrame,
    thresholds: Thresholds | None = None,
    *,
    domain: bool = True,
) -> CompatReport:
    """Classify ``frame`` against the input schema of a version.

    Args:
        schema: The version's schema, or the version itself (a loaded or described bundle).
        frame: Live features.
        thresholds: Domain-drift limits.
        domain: Also check value domains (ranges, categories, missing values). Serving turns
            this off per request: domain drift is judged over windows by the gates, not row
            by row.
    """
    schema = _schema_of(schema)
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(
            f"A compatibility check needs a pandas DataFrame, not {type(frame).__name__}.",
            "Pass the live features as a DataFrame (or use Registry.check with a CSV/Parquet path).",
        )
    limits = thresholds or Thresholds()
    findings: list[Finding] = []
    expected = schema.feature_names
    present = set(map(str, frame.columns))
    missing = [name for name in expected if name not in present]
    extra = [str(c) for c in frame.columns if str(c) not in set(expected)]
    for name in missing:
        findings.append(
            Finding(name, "missing_column", "required by the model but absent from the frame", "incompatible")
        )
    for name in extra:
        findings.append(Finding(name, "extra_column", "not used by this version; dropped", "adapt"))
    kept = [str(c) for c in frame.columns if str(c) in set(expected)]
    reorder = kept != [n for n in expected if n in present]
    if reorder:
        findings.append(Finding("*", "reordered", "columns are put in the trained order", "adapt"))
    casts: dict[str, str] = {}
    for feature in schema.features:
        if feature.name not in present:
            continue
        column = frame[feature.name]
        rule = conversion(feature, column)
        if rule.cast is None:
            findings.append(Finding(feature.name, "dtype", rule.detail, "incompatible"))
            continue
        if rule.cast:
            casts[feature.name] = rule.cast
            findings.append(Finding(feature.name, "cast", rule.detail, "adapt"))
        if domain:  # on the values as they came: a cast to the trained categories makes unseen ones missing
            findings += _domain_findings(feature, column, limits)
    adaptation = Adaptation(drop=extra, reorder=reorder, casts=casts)
    verdict: Verdict = (
        "incompatible"
        if any(f.severity == "incompatible" for f in findings)
        else ("adaptable" if not adaptation.empty else "compatible")
    )
    return CompatReport(verdict, findings, adaptation)


def _schema_of(target: Any) -> Schema:
    if isinstance(target, Schema):
        return target
    schema = getattr(target, "schema", None)
    if isinstance(schema, Schema):
        return schema
    raise InvalidInput(
        f"Cannot check compatibility against a {type(target).__name__}.",
        "Pass a version's schema or the bundle itself: check(registry.load('NAME@vX.Y.Z'), frame).",
    )


def apply_adaptation(
    frame: pd.DataFrame, adaptation: Adaptation, schema: Schema, who: str = "This version"
) -> pd.DataFrame:
    """Apply exactly the declared adaptation: keep the trained columns in order, convert.

    Every column goes through :func:`rollbackkit.bundle.conversions.converted`, the rule
    :func:`check` reports, so a frame ``check`` calls incompatible by dtype is refused here too.
    The result is assembled column by column without copying untouched columns, so adapting
    a wide frame costs about the size of the converted columns, not of the frame.

    Raises:
        IncompatibleInput: A column has no safe conversion or one the adaptation does not declare.
    """
    dtypes = dict(zip(map(str, frame.columns), map(str, frame.dtypes), strict=True))  # hot path: no Series yet
    columns: dict[str, pd.Series] = {}
    refused: list[IncompatibleInput] = []
    for feature in schema.features:
        if feature.name not in dtypes or dtypes[feature.name] == feature.pandas_dtype:
            continue  # a missing column the caller names, or nothing to convert
        try:
            columns[feature.name] = converted(feature, frame[feature.name], adaptation.casts.get(feature.name, ""))
        except IncompatibleInput as exc:
            refused.append(exc)
    if refused:
        raise IncompatibleInput(
            f"{who} cannot score this frame: "
            + "; ".join(exc.message.rstrip(".") for exc in refused[:3])
            + (f"; and {len(refused) - 3} more" if len(refused) > 3 else "")
            + ".",
            refused[0].hint,
        )
    if (adaptation.empty and not columns) or any(name not in dtypes for name in schema.feature_names):
        return frame  # nothing to do, or a missing column the caller names
    whole = {name: columns[name] if name in columns else frame[name] for name in schema.feature_names}
    return pd.DataFrame(whole, index=frame.index, copy=False)


def _domain_findings(feature: Feature, column: pd.Series, limits: Thresholds) -> list[Finding]:
    n = len(column)
    found: list[Finding] = []
    nulls = int(column.isna().sum())
    share = nulls / n if n else 0.0
    if nulls and feature.accepts_null is False:
        found.append(
            Finding(
                feature.name,
                "nulls",
                f"{nulls} of {n} values ({share:.1%}) are missing; this version cannot score a missing value here",
                "incompatible",
                nulls,
            )
        )
    elif nulls and share - feature.null_fraction > limits.missing_share_increase:
        found.append(
            Finding(
                feature.name,
                "missing_share",
                f"{nulls} of {n} values ({share:.1%}) are missing; {feature.null_fraction:.1%} were in training",
                "warning",
                nulls,
            )
        )
    elif nulls and not feature.nullable:
        found.append(
            Finding(feature.name, "nulls", f"{nulls} of {n} values are null; none were in training", "warning", nulls)
        )
    if not n:
        return found
    if feature.dtype in ("float", "int") and feature.min is not None and feature.max is not None:
        values = _float_values(column)
        below, above = int(np.count_nonzero(values < feature.min)), int(np.count_nonzero(values > feature.max))
        if below or above:
            margin = limits.far_margin * (feature.max - feature.min)
            far = int(np.count_nonzero((values < feature.min - margin) | (values > feature.max + margin)))
            detail = (
                f"{below} below the trained min {feature.min:.6g}, {above} above the trained max "
                f"{feature.max:.6g}; {far} far outside"
            )
            severity: Severity = "incompatible" if far / n > limits.far_out_of_range_share else "warning"
            found.append(Finding(feature.name, "out_of_range", detail, severity, below + above))
    elif feature.categories is not None and feature.dtype in ("category", "string", "bool"):
        values = column.dropna().astype(str)
        unseen_mask = ~values.isin(set(feature.categories))
        unseen = int(unseen_mask.sum())
        if unseen:
            examples = sorted(values[unseen_mask].unique().tolist())[:5]
            share = unseen / n
            severity = "incompatible" if share > limits.unseen_category_share else "warning"
            found.append(
                Finding(
                    feature.name,
                    "unseen_categories",
                    f"{unseen} of {n} rows ({share:.1%}) have categories never seen in training, e.g. {examples}",
                    severity,
                    unseen,
                )
            )
    return found


def _float_values(column: pd.Series) -> np.ndarray:
    """The column as float64 without a copy when it already is (NaN for missing values)."""
    if column.dtype == np.float64:
        return column.to_numpy()
    return column.to_numpy(dtype="float64", na_value=np.nan)
