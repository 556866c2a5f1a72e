"""Jupyter panel benchmark (results to bench/results/widgets.json).

The DriftPanel with 10 million reference and 10 million current values: building it (bins,
figure, all drift metrics), switching to the ECDF, and back to the histogram (metrics
cached). Target: an update well under a second; what reaches plotly is ``bins`` points.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench._common import write_results


def main() -> Path:
    """Measure DriftPanel updates on 10M vs 10M values."""
    from rollbackkit.widgets import DriftPanel

    rng = np.random.default_rng(0)
    reference, current = rng.normal(0, 1, 10_000_000), rng.normal(0.1, 1.1, 10_000_000)
    started = time.perf_counter()
    panel = DriftPanel(reference, current)
    build = time.perf_counter() - started
    timings = {}
    for view in ("ECDF", "histogram", "ECDF"):
        started = time.perf_counter()
        panel.view.value = view
        timings.setdefault(view, []).append(time.perf_counter() - started)
    points = sum(len(t.x) for t in panel.figure.data)
    return write_results(
        "widgets",
        {
            "drift_panel_10M_vs_10M": {
                "build_with_metrics_s": build,
                "update_to_ecdf_s": min(timings["ECDF"]),
                "update_to_histogram_s": timings["histogram"][0],
                "points_sent_to_plotly": points,
            },
            "targets": {"update_s_max": 1.0},
        },
    )


if __name__ == "__main__":
    print(main())
