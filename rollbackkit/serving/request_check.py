"""Which requests a version takes: column names, columns and dtypes, and (once the model failed)
values outside what it was trained on. A refusal is the client's fault (IncompatibleInput, a 422),
never the model's; :class:`~rollbackkit.serving.router.Router` caches :func:`request_verdict` per
column set and asks :func:`refused_values` only after the model raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from rollbackkit.bundle.compat import Adaptation, Thresholds, check
from rollbackkit.errors import IncompatibleInput

if TYPE_CHECKING:
    from rollbackkit.bundle.model import LoadedBundle

__all__ = ["RESERVED_COLUMNS", "Refusal", "refused_values", "request_verdict"]

RESERVED_COLUMNS = frozenset({"request_id", "row"})
"""Column names the prediction log's input tables use for their keys (compared in lower case)."""


@dataclass(frozen=True)
class Refusal:
    """A cached refusal: the message and columns of the IncompatibleInput to raise."""

    message: str
    hint: str
    columns: tuple[str, ...]

    def error(self) -> IncompatibleInput:
        """A fresh exception (a cached one would keep every request it was raised in alive)."""
        return IncompatibleInput(self.message, self.hint, list(self.columns))


def request_verdict(bundle: LoadedBundle, frame: pd.DataFrame) -> Adaptation | Refusal:
    """The adaptation for ``frame``'s columns and dtypes, or why it is refused."""
    names = [c if isinstance(c, str) else None for c in frame.columns]
    lowered = [n.lower() for n in names if n is not None]
    bad = sorted(
        {repr(c) for c, n in zip(frame.columns, names, strict=True) if n is None or not n.strip() or "\x00" in n}
        | {repr(n) for n in names if n is not None and n.lower() in RESERVED_COLUMNS}
        | {repr(n) for n in names if n is not None and lowered.count(n.lower()) > 1}
    )
    if bad:
        return Refusal(
            f"{bundle.info.tag} cannot take these column names: {', '.join(bad[:5])}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            + " (empty, repeated ignoring case, not text, or reserved by the prediction log: request_id, row).",
            "Send each feature once, under the name it was trained with.",
            tuple(bad[:20]),
        )
    try:
        report = check(bundle.schema, frame, domain=False)
    except Exception as exc:  # a frame the check cannot even read is the client's, never the model's
        reason = str(exc).splitlines()[0] if str(exc) else ""
        return Refusal(
            f"{bundle.info.tag} cannot read these features: {type(exc).__name__}: {reason}.",
            "Send one value of a plain type per feature.",
            (),
        )
    if report.verdict != "incompatible":
        return report.adaptation
    return Refusal(
        f"{bundle.info.tag} cannot score these features: {report.said(10)}.",
        "Send the columns the version was trained on (see rollbackkit check).",
        tuple(report.columns()),
    )


_STRICT = Thresholds(unseen_category_share=0.0, far_out_of_range_share=0.0)


def refused_values(bundle: LoadedBundle, frame: pd.DataFrame) -> IncompatibleInput | None:
    """Why the model could not score ``frame``, when its values are outside what it was trained on.

    Asked only after the model raised: missing values where the version takes none, values
    far outside the trained range (infinities included) or categories never seen. Then the
    failure is the request's (a 422), not the model's; otherwise None.
    """
    try:
        report = check(bundle.schema, frame, _STRICT, domain=True)
    except Exception:  # the check itself cannot read the values: the model's failure stands
        return None
    if not report.columns():
        return None
    return IncompatibleInput(
        f"{bundle.info.tag} cannot score these values: {report.said(5)}.",
        "Send values in the range and categories the version was trained on, without missing values there.",
        report.columns(),
    )
