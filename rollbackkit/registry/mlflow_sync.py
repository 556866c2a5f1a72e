"""Keep MLflow aliases on what serves: the project's MLflow links and the alias move.

``rollbackkit import mlflow --sync-alias prod=champion`` records, in the project's
committed ``.rollbackkit/mlflow.yaml`` (:data:`CONFIG_NAME`), which MLflow registered
model a bundle came from, on which tracking server, and which environments move which
alias::

    bundles:
      iris:
        model: iris                       # the MLflow registered model
        tracking_uri: http://127.0.0.1:5000
        sync:                             # environment -> MLflow alias
          prod: champion

Then every deploy, promote and rollback that makes a version live in ``prod`` (CLI, Python
API, the server's automatic rollback) also points ``champion`` at the MLflow version that
rollbackkit version came from (read from its tag, :class:`~rollbackkit.registry.mlflow_source.MlflowOrigin`),
so consumers loading ``models:/iris@champion`` follow. A failed move never undoes the
traffic change: it is journaled (``mlflow-alias``, ``ok: false``) and returned, and
``rollbackkit mlflow sync NAME --env ENV`` retries it. A change sent to a running server
(CLI or its HTTP admin API) is moved by the server, which answers it as ``mlflow_alias``
(a client then moves nothing itself) and counts a failure in ``/status`` ``background``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from rollbackkit.errors import InvalidInput
from rollbackkit.project import ProjectPaths
from rollbackkit.refs import validate_name
from rollbackkit.registry.journal import Journal
from rollbackkit.registry.mlflow_source import MlflowOrigin
from rollbackkit.registry.repository import Repository

CONFIG_NAME = "mlflow.yaml"
LIVE_ACTIONS = frozenset({"deploy", "promote", "rollback", "auto-rollback"})  # a canary moves no alias


@dataclass(frozen=True)
class MlflowLink:
    """One bundle's MLflow source and the aliases its environments move.

    Attributes:
        name: The rollbackkit bundle.
        model: The MLflow registered model it was imported from.
        tracking_uri: The tracking server.
        sync: Environment -> MLflow alias to move on every deploy and rollback there.
    """

    name: str
    model: str
    tracking_uri: str
    sync: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AliasMove:
    """One move of an MLflow alias after a traffic change (or its failure).

    Attributes:
        name: The bundle.
        env: The environment whose live version the alias follows.
        alias: The MLflow alias.
        model: The MLflow registered model.
        version: The rollbackkit version now live.
        mlflow_version: The MLflow version the alias was pointed at (None: not moved).
        ok: Whether the alias now points there.
        error: Why not (empty when ok).
        retry: The command that retries it.
    """

    name: str
    env: str
    alias: str
    model: str
    version: str
    mlflow_version: int | None
    ok: bool
    error: str = ""
    retry: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AliasMove:
        """From :meth:`to_dict`'s JSON (a server's ``mlflow_alias`` answer)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def line(self) -> str:
        """One line for the terminal: what moved, or the warning and the command to retry."""
        if self.ok:
            return f"MLflow alias {self.alias} -> {self.model} version {self.mlflow_version} ({self.version})."
        which = f"MLflow alias {self.alias}" if self.alias != "?" else f"the MLflow alias of {self.env}"
        return f"warning: {which} was not moved: {self.error} Retry: {self.retry}"


def config_file(paths: ProjectPaths) -> Any:
    """``.rollbackkit/mlflow.yaml``."""
    return paths.config_dir / CONFIG_NAME


def links(paths: ProjectPaths) -> dict[str, MlflowLink]:
    """Every bundle's MLflow link (empty when the project has none)."""
    from rollbackkit.yamlsafe import load_file

    path = config_file(paths)
    if not path.is_file():
        return {}
    data = load_file(path, hint=f"Fix {path} (see 'rollbackkit import mlflow --help').") or {}
    bundles = data.get("bundles") if isinstance(data, dict) else None
    if not isinstance(bundles, dict):
        raise InvalidInput(f"{path} must hold a 'bundles:' mapping.", "Fix it, or import again to rewrite it.")
    out = {}
    for name, spec in bundles.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("model"), str):
            raise InvalidInput(f"{path}: bundles.{name} must name its MLflow 'model'.", "Fix it, or import again.")
        sync = spec.get("sync") or {}
        if not isinstance(sync, dict) or not all(isinstance(v, str) for v in sync.values()):
            raise InvalidInput(f"{path}: bundles.{name}.sync must map environments to aliases.", "Fix it.")
        out[str(name)] = MlflowLink(str(name), spec["model"], str(spec.get("tracking_uri") or ""), dict(sync))
    return out


def save_link(paths: ProjectPaths, link: MlflowLink) -> None:
    """Write (or replace) one bundle's link into ``.rollbackkit/mlflow.yaml``."""
    import yaml

    from rollbackkit.bundle.manifest import atomic_write

    for env in link.sync:
        validate_name(env, "environment name")
    every = {**links(paths), link.name: link}
    data = {
        "bundles": {
            n: {"model": x.model, "tracking_uri": x.tracking_uri, **({"sync": dict(x.sync)} if x.sync else {})}
            for n, x in sorted(every.items())
        }
    }
    head = "# MLflow sources of bundles (rollbackkit import mlflow); sync: environment -> alias it moves\n"
    atomic_write(config_file(paths), head + yaml.safe_dump(data, sort_keys=False))


def commit_link(repo: Repository, name: str) -> str | None:
    """Commit ``.rollbackkit/mlflow.yaml`` when it changed (a clone keeps the link and the alias sync).

    Returns the commit, or None when the committed file already says the same.
    """
    from rollbackkit.locking import repo_lock

    rel = str(config_file(repo.paths).relative_to(repo.root))
    with repo_lock(repo.paths.lock_file):
        if not repo.git.dirty_paths([rel]) and not repo.git.run("ls-files", "--others", "--", rel):
            return None
        return repo.git.commit_paths([rel], f"rollbackkit: MLflow link of {name} ({CONFIG_NAME})")


def origin_of(repo: Repository, name: str, version: str) -> MlflowOrigin | None:
    """The MLflow origin recorded in ``NAME@version``'s tag (None: not from MLflow)."""
    from rollbackkit.registry.tags import version_tag

    tag = version_tag(name, version)
    message = next((t.message for t in repo.git.tags() if t.name == tag), "")
    return MlflowOrigin.from_message(message)


def move_alias(repo: Repository, name: str, env: str, version: str, *, action: str = "deploy") -> AliasMove | None:
    """Point the alias ``env`` syncs at the MLflow version ``version`` came from; journal it.

    Returns None when nothing is to move (no link, no alias for ``env``, or a canary). Never
    raises for MLflow's failures: they come back as ``ok=False`` with the retry command.
    """
    if action not in LIVE_ACTIONS:
        return None
    link = links(repo.paths).get(name)
    alias = link.sync.get(env) if link is not None else None
    if link is None or alias is None:
        return None
    origin = origin_of(repo, name, version)
    retry = f"rollbackkit mlflow sync {name} --env {env}"
    move = AliasMove(name, env, alias, link.model, version, None, False, retry=retry)
    if origin is None or origin.model != link.model or origin.version is None:
        move = replace(move, error=f"{name}@{version} was not imported from MLflow model {link.model}.")
    else:
        try:
            from rollbackkit.registry.mlflow_server import client, scrub

            client(link.tracking_uri).set_registered_model_alias(link.model, alias, str(origin.version))
            move = replace(move, mlflow_version=origin.version, ok=True)
        except Exception as exc:  # never undo the traffic change: report, journal, retry later
            text = scrub(" ".join((getattr(exc, "message", "") or str(exc) or type(exc).__name__).split()))
            move = replace(move, mlflow_version=origin.version, error=text[:300])
    _journal(repo, move)
    return move


def try_move_alias(repo: Repository, name: str, env: str, version: str, *, action: str = "deploy") -> AliasMove | None:
    """:func:`move_alias` after a committed traffic change: nothing it raises escapes.

    A broken ``.rollbackkit/mlflow.yaml`` (or journal) comes back as ``ok=False`` with the
    retry command, so the change that already happened never turns into an error exit.
    """
    try:
        return move_alias(repo, name, env, version, action=action)
    except Exception as exc:  # the traffic change stands whatever the sync's configuration says
        said = " ".join(f"{getattr(exc, 'message', '') or exc} {getattr(exc, 'hint', '')}".split())
        retry = f"rollbackkit mlflow sync {name} --env {env}"
        return AliasMove(name, env, "?", "", version, None, False, error=f"the alias was not checked: {said[:300]}",
                         retry=retry)  # fmt: skip


def _journal(repo: Repository, move: AliasMove) -> None:
    """Record one alias move (or its failure) in the journal."""
    Journal(repo.paths.journal).append(
        "mlflow-alias",
        name=move.name,
        env=move.env,
        version=move.version,
        alias=move.alias,
        model=move.model,
        mlflow_version=move.mlflow_version,
        ok=move.ok,
        **({"error": move.error} if move.error else {}),
    )


def parse_sync(items: list[str] | dict[str, str] | None) -> dict[str, str]:
    """``ENV=ALIAS`` pairs (``--sync-alias prod=champion``) as a mapping, validated."""
    if items is None:
        return {}
    pairs = items.items() if isinstance(items, dict) else [_pair(i) for i in items]
    out: dict[str, str] = {}
    for env, alias in pairs:
        validate_name(env, "environment name")
        if not alias:
            raise InvalidInput(f"--sync-alias {env}= names no alias.", "Write ENV=ALIAS, e.g. prod=champion.")
        out[env] = alias
    return out


def _pair(item: str) -> tuple[str, str]:
    env, sep, alias = item.partition("=")
    if not sep:
        raise InvalidInput(f"--sync-alias {item!r} is not ENV=ALIAS.", "Write it as e.g. prod=champion.")
    return env.strip(), alias.strip()


def slug(model: str) -> str:
    """A valid bundle name close to MLflow model name ``model`` (for ``--as``)."""
    import re

    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", model.lower())).strip("-") or "model"
