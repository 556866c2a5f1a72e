"""Equal-width histograms of several samples on shared edges, for drawing them one over the other.

The drift panel draws them and the log-drift call returns them; the drift metrics
themselves bin at the reference's deciles (:func:`rollbackkit.analysis.drift_formulas.psi_edges`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SharedHistogram:
    """Samples binned on the same equal-width edges, for drawing them one over the other.

    Attributes:
        edges: ``bins + 1`` edges spanning the finite values of every sample.
        shares: Per sample, the share of its finite values in each bin.
    """

    edges: np.ndarray
    shares: list[np.ndarray]


def shared_histogram(samples: Sequence[np.ndarray], bins: int) -> SharedHistogram | None:
    """Bin float samples on shared edges (NaN and +-inf left out); None when none has a finite value.

    The edges span the smallest to the largest finite value over all samples (one unit
    wide when they are all equal), so any number of rows becomes ``bins`` numbers per sample.
    """
    finite = [values[np.isfinite(values)] for values in samples]
    present = [values for values in finite if values.size]
    if not present:
        return None
    lo = float(min(values.min() for values in present))
    hi = float(max(values.max() for values in present))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    return SharedHistogram(edges, [np.histogram(values, edges)[0] / max(values.size, 1) for values in finite])
