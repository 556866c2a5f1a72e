"""Feature parity: are this version's features still computed the same way?

The bundle's golden sample stores raw inputs, the features its preprocessing produced, and
the model's outputs at register time. Parity re-runs preprocessing code (the code now in
the repo, by default the file the version was registered from) on those inputs, compares
each feature column, then scores the recomputed features with the version's model and
compares the outputs. Floats are compared with tolerances; a change that only reformats
the code is not flagged, a change in any feature's values is, by name. A value missing on
both sides (NaN, None, ``pd.NA``, NaT, whatever the dtype) is equal; a value missing on one
side only is a mismatch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rollbackkit.bundle.artifacts import USER_CODE_ERRORS, Preprocess
from rollbackkit.bundle.frames import part
from rollbackkit.bundle.model import LoadedBundle

RTOL = 1e-7
"""Relative tolerance when a float recomputed from the golden sample is compared with the
stored one (here, and by the router when it warms a version up)."""
ATOL = 1e-9
"""Absolute tolerance of the same comparison (see :data:`RTOL`)."""


@dataclass(frozen=True)
class ColumnParity:
    """Parity of one feature or output column over the golden rows."""

    column: str
    ok: bool
    mismatches: int
    max_abs_diff: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class ParityReport:
    """Result of a feature-parity run."""

    code: str
    rows: int
    features: list[ColumnParity] = field(default_factory=list)
    outputs: list[ColumnParity] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when every feature and output matches and the code ran."""
        return not self.error and all(c.ok for c in [*self.features, *self.outputs])

    @property
    def mismatched(self) -> list[str]:
        """Names of the feature columns whose values differ."""
        return [c.column for c in self.features if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "ok": self.ok,
            "code": self.code,
            "rows": self.rows,
            "error": self.error,
            "features": [asdict(c) for c in self.features],
            "outputs": [asdict(c) for c in self.outputs],
        }


def feature_parity(bundle: LoadedBundle, preprocess: Preprocess, code: str) -> ParityReport:
    """Compare ``preprocess`` on the golden inputs with the stored features and outputs.

    Args:
        bundle: The loaded version whose golden sample is the reference.
        preprocess: The preprocessing function to check.
        code: Where that function came from (shown in the report).
    """
    golden = bundle.golden
    inputs, stored_features, stored_outputs = part(golden, "input"), part(golden, "feature"), part(golden, "output")
    try:
        features = bundle.select_features(preprocess(inputs.copy()), strict=False)  # what the model gets
        outputs = bundle.score_features(features)
    except USER_CODE_ERRORS as exc:  # sys.exit() in the code is a failed check, not the end of the process
        return ParityReport(code, len(golden), error=f"the code failed on the golden inputs: {exc!r}")
    return ParityReport(code, len(golden), _compare(stored_features, features), _compare(stored_outputs, outputs))


def _compare(expected: pd.DataFrame, actual: pd.DataFrame) -> list[ColumnParity]:
    out = []
    for name in expected.columns:
        if name not in actual.columns:
            out.append(ColumnParity(str(name), False, len(expected), detail="no longer produced"))
            continue
        out.append(_compare_column(str(name), expected[name], actual[name].reset_index(drop=True)))
    out += [
        ColumnParity(str(name), False, len(actual), detail="new column")
        for name in actual.columns
        if name not in expected.columns
    ]
    return out


def _compare_column(name: str, expected: pd.Series, actual: pd.Series) -> ColumnParity:
    if len(actual) != len(expected):
        return ColumnParity(name, False, len(expected), detail=f"{len(actual)} rows instead of {len(expected)}")
    if pd.api.types.is_numeric_dtype(expected) and pd.api.types.is_numeric_dtype(actual):
        e = expected.to_numpy(dtype="float64", na_value=np.nan)
        a = actual.to_numpy(dtype="float64", na_value=np.nan)
        close = np.isclose(a, e, rtol=RTOL, atol=ATOL, equal_nan=True)
        both = ~(np.isnan(a) | np.isnan(e))
        max_diff = float(np.max(np.abs(a[both] - e[both]))) if both.any() else 0.0
        bad = int((~close).sum())
        return ColumnParity(name, bad == 0, bad, max_diff)
    missing_e, missing_a = expected.isna().to_numpy(), actual.isna().to_numpy()
    same = (missing_e & missing_a) | (~missing_e & ~missing_a & (_text(expected) == _text(actual)))
    bad = int((~same).sum())
    return ColumnParity(name, bad == 0, bad, detail=_missing_detail(missing_e, missing_a))


def _text(values: pd.Series) -> np.ndarray:
    """Values as text with missing ones blanked: NaN, None, ``pd.NA`` and NaT compare as missing.

    (``astype(str)`` keeps NaN as NaN for pandas 3 strings, and ``NaN != NaN``.)
    """
    present = values.notna().to_numpy()
    return np.array([str(v) if ok else "" for v, ok in zip(values.astype(object), present, strict=True)], dtype=object)


def _missing_detail(expected: np.ndarray, actual: np.ndarray) -> str:
    now, gone = int((actual & ~expected).sum()), int((expected & ~actual).sum())
    parts = [f"{now} now missing"] if now else []
    parts += [f"{gone} no longer missing"] if gone else []
    return ", ".join(parts)
