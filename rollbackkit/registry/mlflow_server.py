"""The MLflow tracking server: import MLflow, reach the server, and never show its credentials.

A tracking URI may carry credentials (``http://user:password@host``) and a query; neither is
ever printed or recorded: :func:`shown` is the URI rollbackkit prints and stores, :func:`scrub`
takes them out of MLflow's messages, and :func:`reach` probes ``/health`` with a URL built by
:mod:`urllib.parse` (credentials in an ``Authorization`` header). Keep credentials in
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (or ``MLFLOW_TRACKING_TOKEN``): MLflow
reads them, and a stored link then works for every later alias move.

MLflow raises ``MlflowException`` for what a user fixes: a store it will not open (MLflow 3 keeps
a directory store in maintenance mode unless ``MLFLOW_ALLOW_FILE_STORE=true``), a URI scheme it
does not know, a server that refuses the credentials or fails. :func:`asking` turns it into one
:class:`~rollbackkit.errors.MlflowError` line (:func:`refused`): which store, what MLflow said, a hint.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from rollbackkit.errors import InvalidInput, MissingLibrary, MlflowError

PROBE_SECONDS = 5.0
CREDENTIALS_HINT = "Keep credentials in MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)."
FILE_STORE_HINT = (
    "MLflow opens a directory store only with MLFLOW_ALLOW_FILE_STORE=true: set it, or migrate the store "
    "(mlflow migrate-filestore) and pass --tracking-uri sqlite:///PATH/mlflow.db, or the http URI of an mlflow server."
)
OTHER_HINT = (
    "Check --tracking-uri (an mlflow server's http(s) URI, or its database: sqlite:///PATH/mlflow.db) "
    "and what MLflow needs to open it."
)


def library() -> ModuleType:
    """Import MLflow, or fail with one line naming the extra to install.

    MLflow's INFO lines stay off stderr (a failure is one line): its loggers log warnings and
    worse, unless ``MLFLOW_LOGGING_LEVEL`` says otherwise.
    """
    try:
        import mlflow
    except ImportError as exc:
        raise MissingLibrary(
            f"This model comes from MLflow, and mlflow is not installed here ({exc}).",
            "Install it: pip install 'rollbackkit[mlflow]'.",
        ) from exc
    if not os.environ.get("MLFLOW_LOGGING_LEVEL"):
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    return mlflow


def tracking_uri_of(tracking_uri: str | None) -> str:
    """``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else refuse (a URI needs a server to ask)."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        raise InvalidInput(
            "No MLflow tracking URI: pass --tracking-uri URI or set MLFLOW_TRACKING_URI.",
            "e.g. --tracking-uri http://127.0.0.1:5000.",
        )
    return uri


def shown(tracking_uri: str) -> str:
    """``tracking_uri`` without its credentials and query: what rollbackkit prints and records."""
    try:
        parts = urllib.parse.urlsplit(tracking_uri)
    except ValueError:
        return tracking_uri.split("@")[-1].split("?")[0]
    if not parts.scheme or not parts.netloc:
        return tracking_uri.split("?")[0]
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def reach(tracking_uri: str) -> None:
    """Refuse an HTTP tracking server that does not answer (before MLflow retries for minutes).

    The probe is ``/health`` under the URI's path (built with :mod:`urllib.parse`: the query
    stays a query, credentials go in an ``Authorization`` header, never in a message).

    Raises:
        MlflowError: Connection refused, timed out, or not an MLflow server.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return
    where = shown(tracking_uri)
    parts = urllib.parse.urlsplit(tracking_uri)
    host = parts.netloc.rpartition("@")[2]
    url = urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/") + "/health", parts.query, ""))
    request = urllib.request.Request(url)  # http(s) only, checked above
    if parts.username is not None:
        pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    probe = f"{where.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(request, timeout=PROBE_SECONDS) as answer:
            answer.read(64)
    except urllib.error.HTTPError as exc:
        raise MlflowError(
            f"The MLflow tracking server at {where} answered {probe} with HTTP {exc.code}.",
            f"Check that {where} is an MLflow tracking server (curl {probe} should print OK)."
            + (f" {CREDENTIALS_HINT}" if exc.code in (401, 403) else ""),
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = " ".join(str(getattr(exc, "reason", exc)).split()).replace(tracking_uri, where)
        raise MlflowError(
            f"Cannot reach the MLflow tracking server at {where} ({reason}).",
            f"Check it runs and the URI is right (curl {probe} should print OK), or pass another --tracking-uri.",
        ) from exc


def scrub(text: str) -> str:
    """``text`` without any ``user:password@`` in the URLs it quotes (MLflow's errors quote its URLs)."""
    return re.sub(r"(?<=//)[^/@\s]*@", "", text)


def name_filter(model: str) -> str:
    """MLflow's search filter for registered model ``model`` (quoted so a quote in the name stays in it)."""
    if "'" not in model:
        return f"name='{model}'"
    if '"' not in model:
        return f'name="{model}"'
    raise InvalidInput(
        f"The MLflow model name {model!r} holds both quote kinds: MLflow's search cannot name it.",
        "Rename the registered model in MLflow.",
    )


def client(tracking_uri: str | None) -> Any:
    """An ``MlflowClient`` for a tracking server that answers."""
    uri = tracking_uri_of(tracking_uri)
    library()
    reach(uri)
    from mlflow import MlflowClient

    with asking(uri):  # MLflow opens the store here: a directory store, an unknown scheme
        return MlflowClient(tracking_uri=uri, registry_uri=uri)


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
