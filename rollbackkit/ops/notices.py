"""The notices operations send themselves (``notify:``): a finished runbook, a change made without a server.

A server sends its own traffic changes (:mod:`rollbackkit.serving.notifying`); these are the
rest. :func:`send` runs after the operation and only queues (a delivery thread, or a detached
drain at a CLI's exit, sends). A broken ``notify:`` never stops a rollback, a deploy or a
runbook: the operation is made, the notice is one warning line, a ``notification`` journal
entry (outcome ``failed``, error ``config: ...``) and counted (``config_errors``). Only
``serve`` refuses to start with it (a server must not run deaf).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.errors import NotifyConfigError
from rollbackkit.project import ProjectPaths
from rollbackkit.registry.journal import Journal

if TYPE_CHECKING:  # rollbackkit.notify is imported when a notice is made, not by every command that could send one
    from rollbackkit.notify.delivery import Attempt
    from rollbackkit.notify.message import Notice
    from rollbackkit.registry.assignments import Assignment


def send(paths: ProjectPaths, notice: Notice) -> None:
    """Queue ``notice`` (never raises: the operation is done). A broken ``notify:`` is one warning
    line, journaled (``notification``, outcome ``failed``, ``config: ...``) and counted."""
    from rollbackkit.notify.config import note_config_failure
    from rollbackkit.notify.delivery import Attempt, journal_outcome
    from rollbackkit.notify.process import notify

    try:
        notify(paths, notice)
    except NotifyConfigError as exc:
        note_config_failure()
        print(f"warning: not notified ({notice.event}): {exc.message} {exc.hint}", file=sys.stderr)
        with contextlib.suppress(Exception):  # the warning said it; a failing journal must not undo the change
            journal_outcome(
                Journal(paths.journal), notice, None, 0, Attempt(False, False, error=f"config: {exc.message}"[:300])
            )


def runbook_notice(result: Any, template: str, values: dict[str, Any], root: Path) -> Notice:
    """A finished runbook (``result``: its :class:`~rollbackkit.ops.runbooks.RunbookResult`): verdict, notebook."""
    from rollbackkit.notify.message import Notice

    try:
        notebook = str(Path(result.notebook).resolve().relative_to(root.resolve()))
    except ValueError:
        notebook = str(result.notebook)
    name, env = str(values.get("name", "")), str(values.get("env", ""))
    where = f" for {name} in {env}" if name and env else ""
    summary = f"runbook {template}{where} {result.status}: {result.verdict} ({notebook})"
    details: dict[str, Any] = {"template": template, "status": result.status, "verdict": result.verdict}
    details["notebook"] = notebook
    details |= {"sha256": result.sha256, "incident": values.get("incident") or None, "error": result.error or None}
    return Notice("runbook", summary, name, env, str(values.get("version", "")), details)


def assignment_notice(assignment: Assignment, previous: str | None) -> Notice:
    """A deploy or rollback made in the workspace, without a server (its action is the event)."""
    from rollbackkit.notify.message import Notice

    where = f"{assignment.name} in {assignment.env}"
    summary = {
        "deploy": f"{where}: {assignment.version} deployed (workspace, no server)",
        "rollback": f"{where}: rolled back to {assignment.version} (workspace, no server)",
    }.get(assignment.action, f"{where}: {assignment.action} {assignment.version}")
    if previous:
        summary += f" (was {previous})"
    details = {"tag": assignment.tag, "action": assignment.action, "previous": previous, "reason": assignment.reason}
    details |= {"via": "workspace", "incident": assignment.incident or None}
    return Notice(assignment.action, summary, assignment.name, assignment.env, assignment.version, details)


def send_test(repo: str | Path, target: str | None = None) -> dict[str, Attempt]:
    """``rollbackkit notify test``: a signed ``test`` notice to each target (or ``target`` alone) now, once.

    Waits at most the slowest target's ``timeout``; no retry, nothing left in the outbox.

    Raises:
        NotifyConfigError: The config is malformed, no target is configured, or ``target`` is not one.
    """
    from rollbackkit.notify.config import NO_TARGET_HINT, load_target
    from rollbackkit.notify.delivery import Notifier
    from rollbackkit.notify.message import Notice
    from rollbackkit.notify.outbox import Outbox
    from rollbackkit.notify.process import notifier_for, outbox_dir
    from rollbackkit.registry.repository import Repository

    paths = Repository(repo).paths
    notice = Notice("test", "rollbackkit notify test: this target receives rollbackkit's notifications", details={})
    if target is not None:  # that target alone: another target's unset variable is not its error
        one = load_target(paths, target)
        return Notifier(Outbox(outbox_dir(paths)), [one], Journal(paths.journal)).send_now(notice, [target])
    notifier = notifier_for(paths)
    if notifier is None:
        raise NotifyConfigError("notify: no target is configured.", NO_TARGET_HINT)
    return notifier.send_now(notice, list(notifier.targets))
