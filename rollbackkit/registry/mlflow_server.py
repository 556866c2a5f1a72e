"""The MLflow tracking server: import MLflow, reach the server, and never show its credentials.

A tracking URI may carry credentials (``http://user:password@host``) and a query; neither is
ever printed or recorded: :func:`shown` is the URI rollbackkit prints and stores, :func:`scrub`
takes them out of MLflow's messages, and :func:`reach` probes ``/health`` with a URL built by
:mod:`urllib.parse` (credentials in an ``Authorization`` header). Keep credentials in
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (or ``MLFLOW_TRACKING_TOKEN``): MLflow
reads them, and a stored link then works for every later alias move.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from types import ModuleType
from typing import Any

from rollbackkit.errors import InvalidInput, MissingLibrary, MlflowError

PROBE_SECONDS = 5.0
CREDENTIALS_HINT = "Keep credentials in MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)."


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

    return MlflowClient(tracking_uri=uri, registry_uri=uri)
