"""Rows scored by a server's warm slot (``POST /admin/score``), for a rollback preview.

The slot passed its golden-sample warm-up in the server's process and scores with the
serving path's own check and adaptation; a notebook kernel loading the bundle itself may run
other library versions. Nothing is routed, logged or shifted (see
:mod:`rollbackkit.serving.scoring`). When no slot holds the version, :func:`score_in_slot`
answers None and the caller loads the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import pandas as pd

from rollbackkit.bundle.compat import Adaptation
from rollbackkit.bundle.runtime import RuntimeFinding, RuntimeReport, Severity
from rollbackkit.errors import IncompatibleInput, InvalidInput, ServerError
from rollbackkit.refs import Version, validate_name
from rollbackkit.registry.repository import Repository
from rollbackkit.serving.bodies import MAX_SCORE_ROWS
from rollbackkit.serving.client import find_server
from rollbackkit.serving.tokens import admin_token
from rollbackkit.serving.wire import decode_frame, encode_frame

if TYPE_CHECKING:
    from rollbackkit.analysis.preflight import PreflightReport
    from rollbackkit.bundle.model import BundleDescription


@dataclass(frozen=True)
class SlotScores:
    """What a warm slot answered for the rows.

    Attributes:
        version: The version that scored them.
        bundle_id: Its bundle id.
        slot: ``blue`` or ``green``.
        role: ``live``, ``canary``, ``shadow`` or ``standby`` (warm, taking no traffic).
        deployment: The assignment tag the slot was loaded under.
        outputs: The output contract's columns, one row per input row, in order (index 0..n-1).
        adaptation: The adaptation the serving path applied (columns dropped, reordered, cast).
        batches: Model calls it took (live requests went first between them).
        score_ms: Server-side time scoring them, waits for live requests included.
        url: The server that answered.
        runtime: The slot's runtime findings (its server's libraries against the registered ones);
            None from a server that does not send them.
    """

    version: str
    bundle_id: str
    slot: str
    role: str
    deployment: str
    outputs: pd.DataFrame = field(repr=False)
    adaptation: Adaptation
    batches: int
    score_ms: float
    url: str
    runtime: RuntimeReport | None = None

    @property
    def n(self) -> int:
        """Rows scored."""
        return len(self.outputs)

    @property
    def where(self) -> str:
        """Where they were scored, in words: ``warm standby slot green of http://...``."""
        return f"warm {self.role} slot {self.slot} of {self.url}"


def score_in_slot(
    repo: str | Path, url: str | None, name: str, env: str, version: str, frame: pd.DataFrame
) -> SlotScores | None:
    """Score ``frame`` with the server's warm slot holding ``name@version``, routing and logging nothing.

    Args:
        repo: Any path inside the project (its admin token is sent).
        url: The server of ``env`` (None: the running one; no server running: None is returned).
        name: The bundle name.
        env: The environment.
        version: The version to score with.
        frame: The rows (typed: they cross the wire with their dtypes), at most 10,000.

    Returns:
        :class:`SlotScores`, or None when no slot of the server holds the version (or no server
        runs, or it has no ``/admin/score``): then load the bundle to score them.

    Raises:
        InvalidName: ``name`` or ``env`` is not a valid name.
        InvalidVersion: ``version`` is not a version.
        InvalidInput: ``frame`` has more than 10,000 rows, none, or a dtype the wire cannot carry.
        IncompatibleInput: The version cannot score these features (the server's 422).
        ServerError: The server refused the call, failed, or did not answer.
    """
    validate_name(name)
    validate_name(env, "environment")
    Version.parse(version)
    if not 0 < len(frame) <= MAX_SCORE_ROWS:
        raise InvalidInput(
            f"A slot scores 1 to {MAX_SCORE_ROWS:,} rows per call, not {len(frame):,}.", "Pass a sample of the rows."
        )
    registry = Repository(repo)
    url = url if url is not None else find_server(registry.paths, name, env)
    if url is None:
        return None
    body = {"name": name, "env": env, "version": version, "frame": encode_frame(frame)}
    status, data = _post(registry, url, body)
    if status == 404:  # no slot holds it ("slots" says what they hold), or a server without this route
        return None
    if status == 422:
        raise IncompatibleInput(str(data.get("error", "")), str(data.get("hint", "")), data.get("columns") or [])
    if status != 200:
        raise ServerError(f"The server refused to score in a slot: {data.get('error', status)}", str(data.get("hint")))
    return _scores(data, url)


def _post(registry: Repository, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /admin/score with the project's token: the status and the JSON answer (``{}`` when none)."""
    import httpx

    token = admin_token(registry.paths)
    if token is None:
        raise ServerError("No admin token is available.", "Set ROLLBACKKIT_ADMIN_TOKEN to the server's token.")
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/admin/score", json=body, timeout=300, headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:
        raise ServerError(f"Cannot reach the server at {url}: {exc}.", "Check that it runs.") from exc
    try:
        data = response.json()
    except ValueError:
        data = {"error": " ".join(response.text.split())[:200] or f"HTTP {response.status_code}"}
    return response.status_code, data if isinstance(data, dict) else {}


def _scores(data: dict[str, Any], url: str) -> SlotScores:
    """The typed answer; ServerError when it does not read as one."""
    try:
        adaptation = data["adaptation"]
        return SlotScores(
            version=str(data["version"]),
            bundle_id=str(data["bundle_id"]),
            slot=str(data["slot"]),
            role=str(data["role"]),
            deployment=str(data["deployment"]),
            outputs=decode_frame(data["outputs"]),
            adaptation=Adaptation(list(adaptation["drop"]), bool(adaptation["reorder"]), dict(adaptation["casts"])),
            batches=int(data["batches"]),
            score_ms=float(data["score_ms"]),
            url=url,
            runtime=_runtime(data.get("runtime")),
        )
    except (KeyError, TypeError, ValueError, InvalidInput) as exc:
        raise ServerError(f"The server at {url} answered /admin/score with no scores: {exc!r}.", "Upgrade it.") from exc


def _runtime(sent: Any) -> RuntimeReport | None:
    """The slot's runtime findings as sent (None: the server sent none, or any one does not read as a
    finding, e.g. a newer server's; the preview then says the runtime was not checked: the scores stand)."""
    if not isinstance(sent, list):
        return None
    findings = [_finding(f) for f in sent]
    return RuntimeReport(tuple(f for f in findings if f is not None)) if None not in findings else None


def _finding(sent: Any) -> RuntimeFinding | None:
    """One finding as sent, or None when it lacks a field, has a wrong type or an unknown severity."""
    if not isinstance(sent, dict):
        return None
    text = [sent.get(k) for k in ("library", "registered", "detail")]
    here = sent.get("here")
    if not all(isinstance(t, str) for t in text) or not (here is None or isinstance(here, str)):
        return None
    if sent.get("severity") not in get_args(Severity):
        return None
    return RuntimeFinding(sent["library"], sent["registered"], here, sent["severity"], sent["detail"])


SLOT_UNCHECKED = (
    "Not checked, the warm slot's bundle not being loaded here: feature parity of the repo's current "
    "preprocess.py against the bundle's golden sample, and the runtime's findings (library versions); "
    "rollbackkit preflight checks both."
)
"""What a preview's preflight leaves out when a warm slot of a server that does not send its runtime scored its rows."""

SLOT_PARITY_UNCHECKED = (
    "Not checked, the warm slot's bundle not being loaded here: feature parity of the repo's current "
    "preprocess.py against the bundle's golden sample (rollbackkit preflight checks it); the runtime's "
    "findings are the slot's (its server's library versions)."
)
"""What a preview's preflight leaves out when a warm slot scored its rows and sent its runtime findings."""


def slot_preflight(
    repo: str | Path,
    target: BundleDescription,
    features: pd.DataFrame,
    consumer: str,
    runtime: RuntimeReport | None = None,
) -> PreflightReport:
    """The preflight of a version a warm slot holds, without loading it here: the live features'
    compatibility check and the output contract against ``consumer`` (``name@version``) only.

    Not checked (the bundle is not loaded): feature parity of the repo's *current* preprocess.py
    against the bundle's golden sample (the slot's warm-up ran the bundle's own code, so it cannot
    catch repo code that drifted); the report's ``parity`` is None. ``runtime``: the slot's runtime
    findings (:attr:`SlotScores.runtime`); None: unknown, the report's runtime empty
    (:data:`SLOT_UNCHECKED`, else :data:`SLOT_PARITY_UNCHECKED`, says so where it is shown)."""
    from rollbackkit.analysis.preflight import combine, contract_findings
    from rollbackkit.bundle.compat import check
    from rollbackkit.bundle.conform import conform
    from rollbackkit.registry.assignments import resolve
    from rollbackkit.registry.contents import describe

    registry = Repository(repo)
    compat = check(target.schema, conform(features, target.schema))
    served = resolve(registry, consumer)
    contract = []
    if served.tag != target.info.tag:
        contract = contract_findings(target.schema.output, describe(registry, served).schema.output)
    return combine(target.info.tag, served.tag, compat, None, contract, runtime)
