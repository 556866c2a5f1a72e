"""Deploy and roll back, with or without a running server: the orchestration the CLI calls.

With a server for the environment, both drive its admin API: the traffic shift happens in
the server (milliseconds; the previous version is still warm) and the server records the
assignment. Without one, they run preflight, restore the bundle in the workspace through
DVC, and record the assignment. Either way an incompatible target is refused unless
``force`` is set, and a forced override is recorded in the assignment tag.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.analysis.preflight import refuse_incompatible
from rollbackkit.errors import IncompatibleInput, InvalidInput, ServerError, VersionNotFound
from rollbackkit.locking import repo_lock
from rollbackkit.refs import Reference, validate_name
from rollbackkit.registry.assignments import Action, Deployments
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.people import actor
from rollbackkit.registry.store import Registry
from rollbackkit.serving.client import admin_call, find_server, no_server
from rollbackkit.serving.client import status as server_status
from rollbackkit.serving.predlog.log import open_log
from rollbackkit.serving.predlog.process import PredictionStore
from rollbackkit.serving.wire import decode_frame, encode_frame

WINDOW_LIMIT = 5_000


def deploy(
    repo: str | Path,
    ref: str,
    env: str,
    *,
    canary: int | None = None,
    features: pd.DataFrame | None = None,
    force: bool = False,
    reason: str = "",
    server: str | None = None,
) -> dict[str, Any]:
    """Deploy ``NAME@VERSION`` to ``env`` (canary ``percent`` if given)."""
    registry = Registry(repo)
    target = registry.resolve(Reference.parse(ref))
    validate_name(env, "environment name")
    url = server or find_server(registry.paths, target.name, env)
    if url is not None:
        body = {
            "version": target.version,
            "canary": canary,
            "force": force,
            "reason": reason,
            "features": encode_frame(features) if features is not None else None,
            "actor": actor(registry.root),
        }
        return {"via": url, **admin_call(registry.paths, url, "deploy", body)}
    if canary is not None:
        raise ServerError(
            f"A canary needs a running server for {env}.",
            f"Start one: rollbackkit serve {target.name} --env {env}.",
        )
    return _offline(registry, target.name, env, target.version, "deploy", features, force, reason, "")


def rollback(
    repo: str | Path,
    name: str,
    env: str,
    *,
    reason: str,
    to: str | None = None,
    incident: str = "",
    features: pd.DataFrame | None = None,
    force: bool = False,
    server: str | None = None,
) -> dict[str, Any]:
    """Roll ``name`` in ``env`` back to ``to``, by default to the target of the one rule
    (:meth:`~rollbackkit.deployments.Deployments.rollback_target`): the newest other version
    that served and was not rolled back from. A rollback that would change nothing is refused."""
    registry = Registry(repo)
    url = _server_for(registry, name, env, server)
    if url is not None:
        body = {
            "reason": reason,
            "incident": incident,
            "to": to,
            "force": force,
            "features": encode_frame(features) if features is not None else None,
            "actor": actor(registry.root),
        }
        return {"via": url, **admin_call(registry.paths, url, "rollback", body)}
    target = Deployments(registry).rollback_target(name, env, to)
    return _offline(registry, name, env, target.version, "rollback", features, force, reason, incident)


def _offline(
    registry: Registry,
    name: str,
    env: str,
    version: str,
    action: Action,
    features: pd.DataFrame | None,
    force: bool,
    reason: str,
    incident: str,
) -> dict[str, Any]:
    started = time.perf_counter()
    info = registry.resolve(f"{name}@{version}")
    report = registry.preflight(info, features).to_dict()
    refuse_incompatible(info.tag, report, force, "Nothing was changed.")
    restored = registry.restore(info)
    forced = force and report["verdict"] == "incompatible"
    deployments = Deployments(registry)
    with repo_lock(registry.paths.lock_file):
        assignment = deployments.assign_locked(
            info,
            env,
            action,
            reason=reason,
            incident=incident,
            actor=actor(registry.root),
            forced=forced,
        )
        Journal(registry.paths.journal).append(
            action,
            name=name,
            env=env,
            version=version,
            tag=assignment.tag,
            reason=reason,
            incident=incident,
            via="workspace",
            restore_s=round(restored.seconds, 4),
            total_s=round(time.perf_counter() - started, 4),
        )
    return {
        "via": "workspace",
        "assignment": assignment.to_dict(),
        "preflight": report,
        "restored": str(restored.directory),
    }


def log_operation(
    registry: Registry,
    log: PredictionStore,
    operation: str,
    name: str,
    env: str,
    version: str,
    since: str | None = None,
) -> dict[str, Any]:
    """``affected``, ``backfill``, ``drift``, ``window`` or ``gates`` against an open prediction log
    (in a server or the CLI).

    ``drift`` takes a comma-separated list of versions in ``version``.
    """
    from rollbackkit.refs import Version

    if operation == "drift":
        return log_drift(registry, log, name, env, [v for v in version.split(",") if v])
    if operation == "gates":
        from rollbackkit.analysis.gates import evaluate

        bundle = registry.describe(f"{name}@{version}")
        return evaluate(bundle, log.window(name, env, version=bundle.version)).to_dict()
    if operation == "window":
        frame = log.window(name, env, version=version, limit=WINDOW_LIMIT)
        return encode_frame(frame.drop(columns=["time"], errors="ignore"))
    Version.parse(version)
    if operation == "affected":
        return log.affected(name, env, version, since=since)
    serving = Deployments(registry).serving(name, env)
    if serving is None:
        raise VersionNotFound(
            f"Nothing serves {name} in {env}; there is no version to re-score with.", "Deploy or roll back first."
        )
    bundle = registry.load(f"{name}@{serving.version}")

    def rescore(inputs: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
        from rollbackkit.analysis.compat import check

        report = check(bundle.schema, inputs, domain=False)
        if report.verdict == "incompatible":
            raise IncompatibleInput(f"{bundle.info.tag} cannot score the stored inputs.", "See rollbackkit check.")
        return bundle.predict(inputs, adaptation=report.adaptation), bundle.version, bundle.bundle_id

    result = log.backfill(name, env, version, rescore, primary=bundle.schema.output.primary)
    Journal(registry.paths.journal).append(
        "backfill", name=name, env=env, version=version, rescored_with=serving.version, **result
    )
    return result


def log_drift(
    registry: Registry, log: PredictionStore, name: str, env: str, versions: list[str], bins: int = 20
) -> dict[str, Any]:
    """Per version: its logged primary predictions against its reference, with PSI.

    A numeric primary (a probability, a regression value) is binned in numpy (shared edges
    over both samples), so any number of rows becomes a few numbers; class labels (strings,
    booleans, integers) are counted per class in the log. Returns ``{version: {"kind",
    "column", "n", "psi", "bins", "reference", "current"}}``: ``bins`` are the left bin edges
    or the class names, ``reference`` and ``current`` the shares per bin (numeric results
    also give all ``edges``). A version with no logged rows is left out.
    """
    from rollbackkit.analysis.drift import is_numeric
    from rollbackkit.analysis.gates import is_class_label

    out: dict[str, Any] = {}
    for version in versions:
        bundle = registry.describe(f"{name}@{version}")
        primary = bundle.schema.output.primary
        reference = bundle.reference_part("output")[primary]
        if is_class_label(bundle, primary) or not is_numeric(reference):
            item = _label_shares(log, name, env, version, primary, reference)
        else:
            item = _numeric_shares(log, name, env, version, primary, reference, bins)
        if item is not None:
            out[version] = item
    return out


_LOGGED = (
    "FROM (SELECT * FROM predictions UNION ALL SELECT * FROM predictions_staging) "
    "WHERE name = ? AND env = ? AND version = ? AND replaces IS NULL AND error IS NULL"
)


def _numeric_shares(
    log: PredictionStore, name: str, env: str, version: str, primary: str, reference: pd.Series, bins: int
) -> dict[str, Any] | None:
    import numpy as np

    from rollbackkit.analysis.drift import numeric_drift

    logged = log.query(f"SELECT primary_output {_LOGGED}", [name, env, version])["primary_output"]
    current = logged.to_numpy(dtype="float64", na_value=np.nan)
    current = current[np.isfinite(current)]
    expected = reference.to_numpy(dtype="float64", na_value=np.nan)
    expected = expected[np.isfinite(expected)]
    if not len(current) or not len(expected):
        return None
    lo, hi = float(min(current.min(), expected.min())), float(max(current.max(), expected.max()))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    shares = [np.histogram(x, edges)[0] / len(x) for x in (expected, current)]
    return {
        "kind": "numeric",
        "column": primary,
        "n": len(current),
        "psi": round(float(numeric_drift(expected, current).psi), 6),
        "bins": edges[:-1].round(6).tolist(),
        "edges": edges.round(6).tolist(),
        "reference": shares[0].round(6).tolist(),
        "current": shares[1].round(6).tolist(),
    }


def _label_shares(
    log: PredictionStore, name: str, env: str, version: str, primary: str, reference: pd.Series
) -> dict[str, Any] | None:
    """Class shares of a label column, counted in the log from each row's typed outputs
    (``primary_output`` holds no copy of a text label), with PSI as the gate computes it."""
    import json

    from rollbackkit.analysis.drift import as_labels, psi

    pointer = "/" + primary.replace("~", "~0").replace("/", "~1")  # a JSON pointer to the column
    counts = log.query(
        f"SELECT CAST(json_extract(outputs, ?) AS VARCHAR) AS value, count(*) AS n {_LOGGED} GROUP BY 1",
        [pointer, name, env, version],
    )
    counts = counts[counts["value"].notna() & (counts["value"] != "null")]
    expected = as_labels(reference).dropna().value_counts()
    if counts.empty or expected.empty:
        return None
    labels = as_labels(pd.Series([json.loads(v) for v in counts["value"]], dtype=object))
    current = counts["n"].groupby(labels.to_numpy()).sum()  # 1 and 1.0 are one class
    classes = sorted(set(expected.index) | set(current.index))
    shares = [(x.reindex(classes, fill_value=0) / x.sum()).to_numpy(dtype="float64") for x in (expected, current)]
    return {
        "kind": "categorical",
        "column": primary,
        "n": int(current.sum()),
        "psi": round(psi(shares[0], shares[1]), 6),
        "bins": classes,
        "reference": shares[0].round(6).tolist(),
        "current": shares[1].round(6).tolist(),
    }


def logged_window(repo: str | Path, name: str, env: str, version: str, *, server: str | None = None) -> pd.DataFrame:
    """A version's latest logged rows in ``env`` (inputs, outputs, latency, error).

    Through the running server when there is one, else from the log file; empty when
    nothing was logged. At most ``WINDOW_LIMIT`` rows.
    """
    registry = Registry(repo)
    url = _log_server(registry, name, env, server)
    if not _logged(registry, url):
        return pd.DataFrame()
    return decode_frame(_log_call(registry, url, "window", name, env, version))


def prediction_drift(
    repo: str | Path, name: str, env: str, versions: list[str], *, server: str | None = None
) -> dict[str, Any]:
    """Logged predictions of each version against its reference (see :func:`log_drift`).

    Empty when nothing was logged yet (no server and no prediction log).
    """
    if not versions:
        return {}
    registry = Registry(repo)
    url = _log_server(registry, name, env, server)
    if not _logged(registry, url):
        return {}
    return _log_call(registry, url, "drift", name, env, ",".join(versions))


def promote(repo: str | Path, name: str, env: str, *, reason: str = "", server: str | None = None) -> dict[str, Any]:
    """Send all traffic to the running canary of ``name`` in ``env`` (needs its server)."""
    registry = Registry(repo)
    url = _server_for(registry, name, env, server)
    if url is None:
        raise InvalidInput(
            f"{no_server(registry.paths, name, env).removesuffix('.')}, so there is no canary to promote.",
            f"Start one with rollbackkit serve {name} --env {env}, or use --server URL.",
        )
    return {"via": url, **admin_call(registry.paths, url, "promote", {"reason": reason, "actor": actor(registry.root)})}


def affected(
    repo: str | Path, name: str, env: str, version: str, *, since: str | None = None, server: str | None = None
) -> dict[str, Any]:
    """Rows ``version`` wrote in ``env``: through the running server, or the log file directly."""
    registry = Registry(repo)
    return _log_call(registry, _log_server(registry, name, env, server), "affected", name, env, version, since)


def backfill(repo: str | Path, name: str, env: str, version: str, *, server: str | None = None) -> dict[str, Any]:
    """Re-score the rows ``version`` wrote in ``env`` with the version now serving.

    Raises:
        InvalidInput: ``version`` is the version serving now: re-scoring its rows with
            itself would change nothing.
    """
    registry = Registry(repo)
    if Deployments(registry).state(validate_name(name), validate_name(env, "environment name")).version == version:
        raise InvalidInput(
            f"{name}@{version} serves {env} now: re-scoring its rows with itself would change nothing.",
            f"Backfill the version rolled back from (rollbackkit history {name} --env {env} names it).",
        )
    return _log_call(registry, _log_server(registry, name, env, server), "backfill", name, env, version)


def _server_for(registry: Registry, name: str, env: str, server: str | None) -> str | None:
    """Validate ``name`` and ``env``; the server to drive: ``server``, a running one, or None."""
    validate_name(name)
    validate_name(env, "environment name")
    return server or find_server(registry.paths, name, env)


def has_prediction_log(repo: str | Path, name: str, env: str, *, server: str | None = None) -> bool:
    """Whether ``name`` in ``env`` has a prediction log to read: through a server that writes
    one, or the project's log file (False under ``serve --no-log`` with no file)."""
    registry = Registry(repo)
    return _logged(registry, _log_server(registry, name, env, server))


def _logged(registry: Registry, url: str | None) -> bool:
    """Whether there is a prediction log to ask: the server at ``url`` (its one writer, from
    :func:`_log_server`), or the file."""
    return url is not None or registry.paths.prediction_log.exists()


def _log_server(registry: Registry, name: str, env: str, server: str | None) -> str | None:
    """The server to ask about the prediction log: ``server`` or the running one, unless it
    runs without a log (``serve --no-log``: then the file, if any, is free to read).

    Asks the server's ``/status`` once: resolve it once per operation and pass it on."""
    url = _server_for(registry, name, env, server)
    return url if url is not None and _writes_log(url) else None


def _writes_log(url: str) -> bool:
    """Whether the server at ``url`` writes a prediction log (its ``/status`` names the writer)."""
    try:
        answer = server_status(url)
    except ServerError:
        return True  # the admin call will say what is wrong
    return not ("log" in answer and answer["log"] is None)


def _log_call(
    registry: Registry, url: str | None, operation: str, name: str, env: str, version: str, since: str | None = None
) -> dict[str, Any]:
    """Run a log operation through the server at ``url`` (from :func:`_log_server`), or on the file."""
    if url is not None:
        return admin_call(registry.paths, url, operation, {"version": version, "since": since})
    path = registry.paths.prediction_log
    if not path.exists():
        raise InvalidInput(f"There is no prediction log at {path}.", "Serve with rollbackkit serve to create one.")
    log = open_log(registry.paths)
    try:
        return log_operation(registry, log, operation, name, env, version, since)
    finally:
        log.close()


# --------------------------------------------------------------------------- runbook steps
def situation(repo: str | Path, name: str, env: str) -> dict[str, Any]:
    """What serves ``name`` in ``env`` now, through which server (if any), and the history.

    Returns:
        ``{"name", "env", "serving", "canary", "server", "status", "history": [assignment, ...]}``;
        ``serving`` is the live version and ``canary`` a running canary's version (or None),
        both from :meth:`Deployments.state`.
    """
    registry = Registry(repo)
    deployments = Deployments(registry)
    history = deployments.history(validate_name(name), validate_name(env, "environment name"))
    state = deployments.state(name, env)
    url = find_server(registry.paths, name, env)
    status = None
    if url is not None:
        try:
            status = server_status(url)
        except ServerError:
            url = None
    return {
        "name": name,
        "env": env,
        "serving": state.version,
        "canary": state.canary.version if state.canary else None,
        "server": url,
        "status": status,
        "history": [a.to_dict() for a in history],
    }


def rollback_target(repo: str | Path, name: str, env: str, to: str | None = None) -> str:
    """The runbook's rollback target, by the one rule (:meth:`Deployments.rollback_target`).

    When the latest assignment already is a rollback and ``to`` is empty or names the
    version it restored (an automatic rollback hands its runbook that version), the version
    now serving is returned: the rollback already happened, and the runbook goes on to
    check and repair, never rolling the restored version back too (pass ``to`` for a
    further rollback). Hints name the runbook parameter.
    """
    deployments = Deployments(Registry(repo))
    state = deployments.state(name, env)
    done = state.canary is None and bool(state.last_rolled_back_from)
    if done and state.version is not None and to in (None, "", state.version):
        return state.version
    return deployments.rollback_target(name, env, to or None, flag="-p to_version=VERSION").version


def rolled_back_from(repo: str | Path, name: str, env: str, target: str) -> str | None:
    """The bad version a rollback to ``target`` takes traffic from (the canary, else the live
    version), or, when ``target`` already serves after a rollback, the version it replaced."""
    state = Deployments(Registry(repo)).state(name, env)
    if state.canary is not None:
        return state.canary.version
    if state.version is not None and state.version != target:
        return state.version
    return state.last_rolled_back_from[0] if state.last_rolled_back_from else None


def preflight(
    repo: str | Path, ref: str, features: pd.DataFrame | None = None, *, env: str | None = None
) -> dict[str, Any]:
    """Preflight ``ref`` against live ``features``, with ``env``'s serving version as consumer."""
    registry = Registry(repo)
    consumer = None
    if env is not None:
        target = registry.resolve(Reference.parse(ref))
        serving = Deployments(registry).serving(target.name, validate_name(env, "environment name"))
        consumer = f"{target.name}@{serving.version}" if serving else None
    return registry.preflight(ref, features, consumer=consumer).to_dict()


def gate_status(repo: str | Path, name: str, env: str) -> dict[str, Any]:
    """The latest gate report for what serves ``env``: from its server, else from the log.

    Returns:
        A ``GateReport`` dict (``decision``, ``gates``...), or ``{"decision": "insufficient",
        "reason": ...}`` when there is nothing to evaluate yet.
    """
    from rollbackkit.analysis.gates import evaluate_logged

    where = situation(repo, name, env)
    if where["status"] is not None:
        report = where["status"].get("gates")
        return report or {"decision": "insufficient", "reason": "the server has not evaluated its gates yet"}
    if where["serving"] is None:
        return {"decision": "insufficient", "reason": f"nothing serves {name} in {env}"}
    registry = Registry(repo)
    if not registry.paths.prediction_log.exists():
        return {"decision": "insufficient", "reason": "no prediction log yet"}
    return evaluate_logged(registry, f"{name}@{where['serving']}", env=env).to_dict()


def check_gates(
    repo: str | Path,
    ref: str,
    *,
    window: str | Path | None = None,
    env: str | None = None,
    server: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``ref``'s gates over a window file, or over its latest logged rows in ``env``.

    With ``env`` and a server for it that writes the prediction log, the server evaluates
    (it holds the log file open); otherwise the file is read here.

    Returns:
        A ``GateReport`` dict (``version``, ``n``, ``decision``, ``gates``).
    """
    from rollbackkit.analysis.gates import evaluate_logged

    registry = Registry(repo)
    if env is not None and window is None:
        target = registry.resolve(Reference.parse(ref))
        url = _log_server(registry, target.name, env, server)
        if url is not None:
            return admin_call(registry.paths, url, "gates", {"version": target.version})
    return evaluate_logged(registry, ref, window=window, env=env).to_dict()


def side_effects(repo: str | Path, name: str, env: str, version: str | None, *, repair: bool) -> dict[str, Any]:
    """Rows ``version`` wrote in ``env``, and (with ``repair``) their backfill.

    Returns:
        ``{"version", "logged", "affected": {...} or None, "backfill": {...} or None}``;
        ``logged`` is False when there is no prediction log to look in (a server started
        with ``--no-log`` and no log file), and ``note`` then says so.
    """
    registry = Registry(repo)
    url = _log_server(registry, name, env, None) if version is not None else None
    if version is None or not _logged(registry, url):
        note = "no prediction log" if version is not None else "no version to look for"
        return {"version": version, "logged": False, "affected": None, "backfill": None, "note": note}
    rows = _log_call(registry, url, "affected", name, env, version)
    rows.pop("sample", None)
    repaired = _log_call(registry, url, "backfill", name, env, version) if repair and rows["quarantined"] else None
    return {"version": version, "logged": True, "affected": rows, "backfill": repaired}
