"""One exception hierarchy: every user-facing failure says what happened and what to do.

The CLI turns any :class:`RollbackkitError` into one red line on stderr and exit code 1.
"""

from __future__ import annotations

from typing import Any


class RollbackkitError(Exception):
    """Root of every error rollbackkit raises on purpose.

    Args:
        message: What went wrong, in one sentence.
        hint: What the user can do about it, in one sentence.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}".strip())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with every field (the prediction-log process sends errors back to the server)."""
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[RollbackkitError], args: tuple[Any, ...], state: dict[str, Any]) -> RollbackkitError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class NotAGitRepo(RollbackkitError):
    """The directory is not inside a git work tree."""


class NotInitialised(RollbackkitError):
    """The repo has not been set up with ``rollbackkit init``."""


class InvalidName(RollbackkitError):
    """A bundle, environment or artifact name breaks GTO/DVC naming rules."""


class InvalidVersion(RollbackkitError):
    """A version string is not ``vMAJOR.MINOR.PATCH`` semver."""


class InvalidReference(RollbackkitError):
    """A reference such as ``NAME@v1.0.0`` or ``NAME#prod`` cannot be parsed."""


class InvalidPath(RollbackkitError):
    """A path is missing, unreadable, or escapes the directory it must stay in."""


class InvalidInput(RollbackkitError):
    """An input (model, data, config file) is not what rollbackkit needs."""


class VersionExists(RollbackkitError):
    """A version is already registered; versions are immutable."""


class VersionNotFound(RollbackkitError):
    """No registered version matches the reference."""


class DirtyWorkspace(RollbackkitError):
    """Uncommitted changes would be swept into a rollbackkit commit."""


class RemoteError(RollbackkitError):
    """The DVC remote cannot be reached or does not hold the data."""


class IntegrityError(RollbackkitError):
    """Bytes on disk, in the cache or in git do not match the manifest."""


class UntrustedModel(InvalidInput):
    """A model file needs types nobody trusted, or is a pickle registered without --unsafe."""


class MissingLibrary(RollbackkitError):
    """A model flavor needs a library that is not installed (the message names the extra)."""


class LockTimeout(RollbackkitError):
    """Another rollbackkit process holds the repository lock."""


class JournalDamaged(RollbackkitError):
    """The journal's last line or its head file is not what rollbackkit wrote; appends stop."""


class UnreadableRecord(RollbackkitError):
    """A crash-recovery record under ``.rollbackkit/local/`` cannot be read."""


class RecoveryUnfinished(RollbackkitError):
    """``rollbackkit recover`` found a register's untagged commit it must not or cannot tag."""


class RollbackRefused(RollbackkitError):
    """A rollback has no eligible target, or would not change what serves."""


class Superseded(RollbackkitError):
    """An automatic action was decided on a state that an operator has changed since."""


class IncompatibleInput(RollbackkitError):
    """Live features cannot be scored by a version without an adaptation (or at all).

    Args:
        message: What cannot be scored.
        hint: What to send instead.
        columns: The columns at fault, for the HTTP answer (empty when not known).
    """

    def __init__(self, message: str, hint: str = "", columns: list[str] | None = None) -> None:
        super().__init__(message, hint)
        self.columns = list(columns or [])


class InvalidToken(RollbackkitError):
    """The admin token is missing, empty, too short or not plain visible ASCII."""


class ServerAlreadyRunning(RollbackkitError):
    """Another server already serves this bundle and environment from this project."""


class RunbookError(RollbackkitError):
    """A runbook could not be started, or its record cannot be read."""


class GitError(RollbackkitError):
    """A git command failed."""


class MlflowError(RollbackkitError):
    """An MLflow tracking server cannot be reached, or does not hold the model or version named."""


class ServerError(RollbackkitError):
    """No server runs for an environment, or it refused or did not answer a call."""


class UnknownAnswer(ServerError):
    """A server answered in a shape this client does not know (another rollbackkit version)."""


class ServerTimeout(ServerError):
    """A server took the connection but did not answer in time (stopped or overloaded)."""


class RoutingError(RollbackkitError):
    """A traffic operation is not possible in the router's current state."""


class IncompatibleRuntime(RollbackkitError):
    """A library here is a version known not to load a version's model file (see bundle/runtime.py)."""


class WarmupError(RollbackkitError):
    """A bundle failed its warm-up (its golden sample scored differently)."""


class PreflightFailed(RollbackkitError):
    """The target version is incompatible with live traffic; nothing was shifted.

    Args:
        message: What failed preflight.
        hint: What to do about it.
        report: The preflight report (its ``to_dict()``), for the HTTP answer.
    """

    def __init__(self, message: str, hint: str, report: dict[str, Any]) -> None:
        super().__init__(message, hint)
        self.report = report


class LogWriterStopped(RollbackkitError):
    """The prediction-log process stopped or could not start."""


class DemoError(RollbackkitError):
    """A demo step did not go as the story says."""


class StoreError(RollbackkitError):
    """The shared PostgreSQL store (``store:`` / ``ROLLBACKKIT_STORE``) failed; never shows its password."""


class StoreUnavailable(StoreError):
    """The store cannot be reached: refused, timed out, unknown host, or its database is missing."""


class StoreAuthFailed(StoreError):
    """The store refused the credentials (wrong password, unknown role, or no permission)."""


class StoreSchemaTooNew(StoreError):
    """The store was created by a newer rollbackkit whose schema this one cannot read."""


class StoreNotCreated(StoreError):
    """A reader (``status``, finding a server) found no schema, or an older one: no replica of this
    rollbackkit has started on the store yet (readers never create nor upgrade it)."""


class NotifyConfigError(RollbackkitError):
    """The ``notify:`` targets of ``.rollbackkit/config.yaml`` are malformed (the message names target and key)."""


class SignatureInvalid(RollbackkitError):
    """A webhook signature is malformed, wrong, or older than the tolerance (a replay)."""


class AuditTrailError(RollbackkitError):
    """``audit publish`` could not publish the trail (nothing was committed), or a signing key is unusable."""


class VersionNotServed(RollbackkitError):
    """A gate verdict was asked for a version that takes no traffic on this server (``GET /analysis``: 404)."""


class MetricsBusy(RollbackkitError):
    """``GET /metrics`` is being rendered for another scrape and none was rendered before (503)."""
