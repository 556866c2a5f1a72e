"""MLflow's own errors while a command asks a tracking store, as one :class:`~rollbackkit.errors.MlflowError` line.

MLflow raises ``MlflowException`` for what a user fixes: a store it will not open (MLflow 3 keeps
a directory store in maintenance mode unless ``MLFLOW_ALLOW_FILE_STORE=true``), a URI scheme it
does not know, a server that refuses the credentials or fails. :func:`asking` says which store
(never its credentials nor query) and what MLflow said, with a hint.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rollbackkit.errors import MlflowError
from rollbackkit.registry.mlflow_server import CREDENTIALS_HINT, scrub, shown

FILE_STORE_HINT = (
    "MLflow opens a directory store only with MLFLOW_ALLOW_FILE_STORE=true: set it, or migrate the store "
    "(mlflow migrate-filestore) and pass --tracking-uri sqlite:///PATH/mlflow.db, or the http URI of an mlflow server."
)
OTHER_HINT = (
    "Check --tracking-uri (an mlflow server's http(s) URI, or its database: sqlite:///PATH/mlflow.db) "
    "and what MLflow needs to open it."
)


@contextlib.contextmanager
def asking(tracking_uri: str) -> Iterator[None]:
    """Raise an ``MlflowException`` from the block as one :func:`refused` line about ``tracking_uri``."""
    try:
        yield
    except Exception as exc:
        errors = sys.modules.get("mlflow.exceptions")  # not loaded: MLflow raised nothing
        if errors is None or not isinstance(exc, errors.MlflowException):
            raise
        raise refused(exc, tracking_uri) from exc


def refused(exc: Exception, tracking_uri: str) -> MlflowError:
    """``exc`` (MLflow's) as one line: the store, MLflow's first sentence, and what to do."""
    where = shown(tracking_uri)
    text = " ".join(str(exc).split())
    said = scrub(text.split(". ")[0].rstrip(".")) if text else type(exc).__name__
    said = (said.replace(tracking_uri, where) if tracking_uri else said)[:240]
    if "MLFLOW_ALLOW_FILE_STORE" in text:
        hint = FILE_STORE_HINT
    elif getattr(exc, "error_code", "") in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        hint = CREDENTIALS_HINT
    else:
        hint = OTHER_HINT
    return MlflowError(f"MLflow refused the tracking store {where or '(none)'}: {said}.", hint)
