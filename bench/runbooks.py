"""Runbook benchmarks (results to bench/results/runbooks.json).

1. Overhead over bare papermill on the same 3-cell notebook with a ``parameters`` cell:
   ``papermill.execute_notebook`` vs ``rollbackkit.ops.runbooks.run`` in-process (a new kernel
   each call, like papermill), and ``papermill`` vs ``rollbackkit runbook run`` as whole
   processes. Target: <= 1.2x.
2. A whole rollback runbook on the demo bundle (v1.1.0 deployed over v1.0.0, 52-column live
   features, restore in the workspace). Target: < 15 s.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from bench._common import BIN, ENV, median_seconds, run, write_results
from bench.serving import _project


def _tiny_notebook(path: Path) -> Path:
    params = new_code_cell("x = 0")
    params.metadata["tags"] = ["parameters"]
    book = new_notebook(cells=[params, new_code_cell("y = x * 2"), new_code_cell("print(y)")])
    book.metadata["kernelspec"] = {"name": "rollbackkit", "display_name": "Python (rollbackkit)", "language": "python"}
    nbformat.write(book, str(path))
    return path


def main() -> Path:
    """Run the runbook benchmarks and write bench/results/runbooks.json."""
    import papermill

    from rollbackkit.demo.data import ALL_FEATURES, churn_frame
    from rollbackkit.ops.runbooks import ensure_kernel
    from rollbackkit.ops.runbooks import run as run_runbook
    from rollbackkit.ops.traffic import deploy

    ensure_kernel()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = _project(root / "project")
        notebook = _tiny_notebook(root / "tiny.ipynb")
        out = root / "out.ipynb"
        bare = median_seconds(
            lambda: papermill.execute_notebook(
                str(notebook), str(out), parameters={"x": 1}, kernel_name="rollbackkit", progress_bar=False
            )
        )
        ours = median_seconds(lambda: run_runbook(notebook, {"x": 1}, repo=repo, audit_dir=root / "audit"))
        bare_cli = median_seconds(
            lambda: run([str(BIN / "papermill"), str(notebook), str(out), "-p", "x", "1", "-k", "rollbackkit"], repo),
            runs=3,
        )
        ours_cli = median_seconds(
            lambda: run([str(BIN / "rollbackkit"), "runbook", "run", str(notebook), "-p", "x=1", "--json"], repo),
            runs=3,
        )

        deploy(repo, "churn@v1.1.0", "prod", reason="bench")
        live = root / "live.parquet"
        churn_frame(400, seed=3)[ALL_FEATURES].to_parquet(live)
        started = time.perf_counter()
        result = run_runbook(
            "rollback",
            {"name": "churn", "env": "prod", "reason": "bench", "incident": "BENCH-1", "features": str(live)},
            repo=repo,
        )
        whole = time.perf_counter() - started
        assert result.verdict == "rolled-back", result
    return write_results(
        "runbooks",
        {
            "in_process": {"papermill_s": bare, "rollbackkit_s": ours, "ratio": ours / bare},
            "cli_process": {"papermill_s": bare_cli, "rollbackkit_s": ours_cli, "ratio": ours_cli / bare_cli},
            "rollback_runbook_demo_bundle_s": whole,
            "targets": {"ratio_max": 1.2, "rollback_runbook_s_max": 15},
        },
    )


if __name__ == "__main__":
    os.environ.update({k: v for k, v in ENV.items() if k.startswith(("GIT_", "DVC_", "GTO_"))})
    print(main())
