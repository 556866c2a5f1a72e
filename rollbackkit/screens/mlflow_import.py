"""The ``import mlflow`` screen: one line per version, per alias and per alias sync."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollbackkit.ops.mlflow_import import ImportResult


def lines(done: ImportResult) -> list[str]:
    """``churn@v3.0.0  <- models:/churn/3  imported``, ``alias prod -> churn@v3.0.0  prod: deployed``,
    ``sync: deploys and rollbacks in prod move alias prod (.rollbackkit/mlflow.yaml)``."""
    out = [
        f"{done.name}@{v.version}  <- models:/{done.model}/{v.mlflow_version}  "
        + ("imported" if v.status == "imported" else "skipped (imported before)")
        for v in done.versions
    ]
    out += [
        f"alias {a.alias} -> {done.name}@{a.version}  " + (f"{a.env}: {a.status}" if a.env else f"skipped: {a.note}")
        for a in done.aliases
    ]
    out += [
        f"sync: deploys and rollbacks in {env} move alias {alias} ({done.config})" for env, alias in done.sync.items()
    ]
    return out


def render(console: Any, done: ImportResult) -> None:
    """Print :func:`lines` whole (no markup, no highlighting, never folded)."""
    for line in lines(done):
        console.print(line, highlight=False, soft_wrap=True, markup=False)
