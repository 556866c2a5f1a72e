"""Move a team from MLflow in one command: ``rollbackkit import mlflow``, and ``mlflow sync``.

Version mapping: MLflow version ``N`` of the registered model becomes ``vN.0.0`` of the
bundle (so ``models:/iris/3`` is ``iris@v3.0.0``), registered through its native flavor
with its signature and input example (:mod:`rollbackkit.registry.mlflow_source`); the
tag records the MLflow source. A second import skips the versions already imported (and
says so); a ``vN.0.0`` that came from somewhere else stops the import before anything is
registered. Each current alias becomes an assignment (action ``deploy``) in the
environment of the same name, or the one ``--sync-alias ENV=ALIAS`` pairs it with; an
alias that is not a valid environment name (lowercase letters, digits, inner hyphens) is
reported and not recorded. The tracking server and ``--sync-alias`` are saved in the
committed ``.rollbackkit/mlflow.yaml`` (:mod:`rollbackkit.registry.mlflow_sync`): a clone keeps
the alias sync, and a later import needs no ``--tracking-uri``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rollbackkit.errors import InvalidInput, MlflowError, RollbackkitError
from rollbackkit.locking import repo_lock
from rollbackkit.refs import NAME_RE, validate_name
from rollbackkit.registry import mlflow_server, mlflow_source
from rollbackkit.registry.assignments import Deployments, resolve
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.mlflow_sync import (
    AliasMove,
    MlflowLink,
    commit_link,
    links,
    move_alias,
    origin_of,
    parse_sync,
    save_link,
    slug,
)
from rollbackkit.registry.people import actor
from rollbackkit.registry.repository import Repository


@dataclass(frozen=True)
class ImportedVersion:
    """One MLflow version and what the import did with it.

    Attributes:
        mlflow_version: The MLflow model version ``N``.
        version: The rollbackkit version it maps to (``vN.0.0``).
        status: ``imported`` now, or ``skipped`` (imported before).
        run_id: The MLflow run that logged it.
    """

    mlflow_version: int
    version: str
    status: Literal["imported", "skipped"]
    run_id: str = ""


@dataclass(frozen=True)
class ImportedAlias:
    """One MLflow alias and the assignment the import recorded for it.

    Attributes:
        alias: The MLflow alias.
        mlflow_version: The MLflow version it points at.
        version: The rollbackkit version that is (``vN.0.0``).
        env: The environment it was recorded in (None: not recorded).
        status: ``assigned`` now, ``unchanged`` (already served there) or ``skipped``.
        note: Why it was skipped.
    """

    alias: str
    mlflow_version: int
    version: str
    env: str | None
    status: Literal["assigned", "unchanged", "skipped"]
    note: str = ""


@dataclass(frozen=True)
class ImportResult:
    """What ``rollbackkit import mlflow`` did.

    Attributes:
        name: The bundle.
        model: The MLflow registered model.
        tracking_uri: The tracking server.
        versions: Every MLflow version, oldest first.
        aliases: Every current alias.
        sync: Environment -> alias moved on every deploy and rollback (saved in ``config``).
        config: The project file that holds the link.
    """

    name: str
    model: str
    tracking_uri: str
    versions: list[ImportedVersion] = field(default_factory=list)
    aliases: list[ImportedAlias] = field(default_factory=list)
    sync: dict[str, str] = field(default_factory=dict)
    config: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``import mlflow --json`` prints."""
        return asdict(self)


def mlflow_version_tag(mlflow_version: int) -> str:
    """The rollbackkit version of MLflow version ``N``: ``vN.0.0``."""
    return f"v{int(mlflow_version)}.0.0"


def import_mlflow(
    repo: str | Path,
    model: str,
    *,
    tracking_uri: str | None = None,
    name: str | None = None,
    sync_alias: list[str] | dict[str, str] | None = None,
    train_data: Any = None,
    trust: tuple[str, ...] = (),
    unsafe: bool = False,
) -> ImportResult:
    """Bring every version of MLflow registered model ``model`` across, with its aliases.

    Args:
        repo: Any path inside the project.
        model: The MLflow registered model's name.
        tracking_uri: The tracking server (default: ``MLFLOW_TRACKING_URI``, else the one
            ``.rollbackkit/mlflow.yaml`` recorded for this bundle at the last import).
        name: The bundle name (default: ``model``, when it is a valid bundle name).
        sync_alias: ``ENV=ALIAS`` pairs: every deploy and rollback in ENV then moves ALIAS.
        train_data: Training data for every version (default: each version's input example).
        trust: Types a skops model may load beyond the reviewed ones.
        unsafe: Allow MLflow flavors saved with pickle.

    Returns:
        :class:`ImportResult`: each version imported or skipped, each alias's assignment.

    Raises:
        MissingLibrary: MLflow is not installed.
        MlflowError: The server cannot be reached, MLflow refuses the store, or it holds no such model.
        InvalidInput: ``model`` is not a valid bundle name and ``name`` is not given, or a
            version has no flavor rollbackkit reads.
        VersionExists: A ``vN.0.0`` is registered but not from this MLflow model.
    """
    registry = Repository(repo)
    registry.require_initialised()
    name = _bundle_name(model, name)
    saved = links(registry.paths).get(name)  # a second import keeps the pairs the first one saved
    sync = {**(saved.sync if saved is not None and saved.model == model else {}), **parse_sync(sync_alias)}
    recorded = saved.tracking_uri if saved is not None and saved.model == model else None
    given = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or recorded
    with mlflow_server.asking(given or ""):  # a store MLflow will not open, an unknown scheme, a refusal: one line
        mlflow_client = mlflow_server.client(given)
        uri = mlflow_server.shown(mlflow_client.tracking_uri)  # never credentials nor query: printed and stored
        registered = _registered(mlflow_client, model, uri)
        found = mlflow_client.search_model_versions(mlflow_server.name_filter(model))
    found = sorted(found, key=lambda v: int(v.version))
    todo, done = _plan(registry, name, model, found)
    _read_first(mlflow_client.tracking_uri, model, todo, train_data is None, trust, unsafe)
    imported = _register_all(registry, name, model, todo, mlflow_client.tracking_uri, train_data, trust, unsafe)
    versions = sorted(done + imported, key=lambda v: v.mlflow_version)
    aliases = _assign_aliases(registry, name, model, dict(registered.aliases or {}), sync)
    save_link(registry.paths, MlflowLink(name, model, uri, sync))
    commit_link(registry, name)
    Journal(registry.paths.journal).append(
        "mlflow-import",
        name=name,
        model=model,
        tracking_uri=uri,
        imported=[v.version for v in imported],
        skipped=[v.version for v in done],
        aliases={a.alias: a.env for a in aliases},
        sync=sync,
    )
    config = str(registry.paths.config_dir.relative_to(registry.root) / "mlflow.yaml")
    return ImportResult(name, model, uri, versions, aliases, sync, config)


def _bundle_name(model: str, name: str | None) -> str:
    """The bundle ``--as`` names, else the MLflow model's own name when it is a valid one."""
    if name is None and not NAME_RE.fullmatch(model):
        raise InvalidInput(
            f"The MLflow model name {model!r} is not a valid bundle name.",
            "Pass --as NAME (lowercase letters, digits and hyphens), e.g. --as " + slug(model) + ".",
        )
    return validate_name(name or model)


def _plan(registry: Repository, name: str, model: str, found: list[Any]) -> tuple[list[Any], list[ImportedVersion]]:
    """The MLflow versions still to import, and those imported before (skipped)."""
    from rollbackkit.errors import VersionExists

    known = {v.version for v in registry.versions(name)}
    todo, done = [], []
    for mv in found:
        version = mlflow_version_tag(int(mv.version))
        if version not in known:
            todo.append(mv)
            continue
        origin = origin_of(registry, name, version)
        if origin is None or origin.model != model or origin.version != int(mv.version):
            raise VersionExists(
                f"{name}@{version} is registered but was not imported from models:/{model}/{mv.version}.",
                "Import into another bundle with --as NAME.",
            )
        done.append(ImportedVersion(int(mv.version), version, "skipped", mv.run_id or ""))
    return todo, done


def _read_first(
    tracking_uri: str, model: str, todo: list[Any], needs_example: bool, trust: tuple[str, ...], unsafe: bool
) -> None:
    """Read every version's MLmodel (flavor, model file format, input example size) before
    registering any, so a version rollbackkit cannot take stops the import with nothing imported."""
    import tempfile

    from rollbackkit.bundle import flavors

    for mv in todo:
        uri = f"models:/{model}/{mv.version}"
        with tempfile.TemporaryDirectory(prefix="rollbackkit-mlflow-") as scratch:
            try:
                fetched = mlflow_source.fetch(uri, tracking_uri, Path(scratch), trust, unsafe)
                if isinstance(fetched.model, Path):
                    flavors.for_file(fetched.model, fetched.flavor)
                if needs_example:
                    mlflow_source.training_example(fetched)
            except RollbackkitError as exc:
                raise _said(exc, exc.message, f"{exc.hint} Nothing was imported.") from exc


def _register_all(
    registry: Repository,
    name: str,
    model: str,
    todo: list[Any],
    tracking_uri: str,
    train_data: Any,
    trust: tuple[str, ...],
    unsafe: bool,
) -> list[ImportedVersion]:
    """Register each version still to import, oldest first; a failure names what was imported."""
    from rollbackkit.registry.register import register

    imported: list[ImportedVersion] = []
    for mv in todo:
        version = mlflow_version_tag(int(mv.version))
        try:
            register(
                registry,
                name,
                f"models:/{model}/{mv.version}",
                train_data,
                version=version,
                message=f"Imported from MLflow models:/{model}/{mv.version}"
                + (f" (run {mv.run_id})" if mv.run_id else ""),
                trust=trust,
                unsafe=unsafe,
                tracking_uri=tracking_uri,
            )
        except RollbackkitError as exc:
            raise _partial(registry, name, model, imported, version, exc) from exc
        imported.append(ImportedVersion(int(mv.version), version, "imported", mv.run_id or ""))
    return imported


def _partial(
    registry: Repository, name: str, model: str, imported: list[ImportedVersion], failed: str, exc: RollbackkitError
) -> RollbackkitError:
    """``exc`` saying which versions were imported before ``failed`` (journaled) and that a rerun resumes."""
    done = [v.version for v in imported]
    Journal(registry.paths.journal).append(
        "mlflow-import", name=name, model=model, imported=done, failed=failed, error=str(exc)[:300]
    )
    said = f"imported before it: {name}@{', '.join(done)} (kept)" if done else "nothing was imported"
    return _said(
        exc, f"{name}@{failed}: {exc.message} ({said}).", f"{exc.hint} Then rerun the same import: it resumes."
    )


def _said(exc: RollbackkitError, message: str, hint: str) -> RollbackkitError:
    """A copy of ``exc`` (same type and fields) saying ``message`` and ``hint``."""
    import copy

    out = copy.copy(exc)
    out.message, out.hint = message, hint.strip()
    out.args = (f"{out.message} {out.hint}".strip(),)
    return out


def _registered(mlflow_client: Any, model: str, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_registered_model(model)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise  # not a missing model: asking() says what MLflow refused
        raise MlflowError(
            f"No registered model {model!r} on {uri}.",
            "Check the name (mlflow's Models page, or MlflowClient().search_registered_models()).",
        ) from exc


def _assign_aliases(
    registry: Repository, name: str, model: str, aliases: dict[str, str], sync: dict[str, str]
) -> list[ImportedAlias]:
    """Record each alias as an assignment in its environment (the sync pair's, else its own name)."""
    env_of = {alias: env for env, alias in sync.items()}
    deployments = Deployments(registry)
    out = []
    for alias, number in sorted(aliases.items()):
        version = mlflow_version_tag(int(number))
        env = env_of.get(alias, alias)
        if not NAME_RE.fullmatch(env):
            note = (
                f"{alias!r} is not a valid environment name (lowercase letters, digits, hyphens): not recorded; "
                f"pair it with one (--sync-alias ENV={alias}) or run rollbackkit deploy {name}@{version} --env ENV"
            )
            out.append(ImportedAlias(alias, int(number), version, None, "skipped", note))
            continue
        if deployments.state(name, env).version == version:
            out.append(ImportedAlias(alias, int(number), version, env, "unchanged"))
            continue
        info = resolve(registry, f"{name}@{version}")
        reason = f"imported from MLflow: alias {alias} -> models:/{model}/{number}"
        with repo_lock(registry.paths.lock_file):
            assignment = deployments.assign_locked(info, env, "deploy", reason=reason, actor=actor(registry.root))
            Journal(registry.paths.journal).append(
                "deploy", name=name, env=env, version=version, tag=assignment.tag, reason=reason, via="mlflow-import"
            )
        out.append(ImportedAlias(alias, int(number), version, env, "assigned"))
    return out


def mlflow_sync(repo: str | Path, name: str, env: str) -> AliasMove:
    """Point ``env``'s MLflow alias at the MLflow version of what serves ``env`` now
    (``rollbackkit mlflow sync NAME --env ENV``: the retry after a failed move).

    Raises:
        InvalidInput: No alias is synced for ``env`` (``import mlflow --sync-alias``).
        VersionNotFound: Nothing serves ``name`` in ``env``.
        MlflowError: The move failed (journaled; the message says why).
    """
    from rollbackkit.registry.assignments import require_known

    registry = Repository(repo)
    require_known(registry, name, env)
    version = Deployments(registry).state(name, env).version
    moved = move_alias(registry, name, env, version, action="deploy") if version is not None else None
    if moved is None:
        raise InvalidInput(
            f"No MLflow alias is synced for {name} in {env}"
            + ("" if version is not None else " (nothing serves there)")
            + ".",
            f"Link one: rollbackkit import mlflow NAME --as {name} --sync-alias {env}=ALIAS.",
        )
    if not moved.ok:
        raise MlflowError(f"MLflow alias {moved.alias} was not moved: {moved.error}", f"Retry: {moved.retry}.")
    return moved
