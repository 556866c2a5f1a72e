"""DVC, in-process: init, remote, add, push, and content-addressed reads from cache/remote.

Calling DVC's Python API avoids the start-up each ``dvc`` CLI call pays. DVC's
console output is switched off here; the core never prints.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollbackkit.errors import IntegrityError, RemoteError

if TYPE_CHECKING:
    from dvc.repo import Repo

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("GTO_NO_ANALYTICS", "1")


@contextmanager
def _quiet() -> Iterator[None]:
    from dvc.ui import ui

    logger = logging.getLogger("dvc")
    previous, level = ui._enabled, logger.level  # DVC's console has enable() but no disable()
    ui._enabled = False
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        ui._enabled = previous
        logger.setLevel(level)


class DvcStore:
    """DVC operations for one repository.

    Args:
        root: The git/DVC repository root.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._repo: Repo | None = None
        self._default_cache: bool | None = None

    @property
    def repo(self) -> Repo:
        """The opened DVC repo (opened on first use)."""
        if self._repo is None:
            from dvc.repo import Repo

            with _quiet():
                self._repo = Repo(str(self.root))
        return self._repo

    def is_initialised(self) -> bool:
        """True when ``.dvc/`` exists."""
        return (self.root / ".dvc").is_dir()

    def init(self) -> None:
        """``dvc init`` with analytics off (never phones home)."""
        from dvc.repo import Repo

        with _quiet():
            if not self.is_initialised():
                Repo.init(str(self.root))
            self._repo = Repo(str(self.root))
            with self._repo.config.edit() as conf:
                conf["core"]["analytics"] = False

    def set_remote(self, name: str, url: str, relative: bool = False) -> None:
        """Add (or replace) remote ``name`` and make it the default.

        Args:
            name: The remote's name.
            url: A URL, or an absolute directory for a local remote.
            relative: Store the directory relative to ``.dvc/config`` (DVC resolves it
                from there), so a copied or moved project keeps using its own remote.
        """
        value: str = url
        if "://" not in url:
            Path(url).mkdir(parents=True, exist_ok=True)
            if relative:
                from dvc.config_schema import RelPath

                value = RelPath(url)  # written as a path relative to .dvc/
        with _quiet(), self.repo.config.edit() as conf:
            conf["remote"][name] = {"url": value}
            conf["core"]["remote"] = name

    def remote_url(self) -> str | None:
        """URL of the default remote, if one is configured."""
        conf = self.repo.config
        name = conf["core"].get("remote")
        return conf["remote"].get(name, {}).get("url") if name else None

    def add(self, paths: Iterable[Path]) -> None:
        """Track files with DVC (writes ``*.dvc`` and ``.gitignore``, fills the cache)."""
        with _quiet():
            self.repo.add([str(p) for p in paths])

    def push(self, md5s: Iterable[str]) -> None:
        """Upload cache objects to the default remote; raise RemoteError on any failure."""
        self._transfer(
            "push",
            md5s,
            failed=(
                "Pushing to the DVC remote failed",
                "Check the remote with 'dvc remote list' and that it is reachable; nothing was registered.",
            ),
            incomplete=(
                "could not be pushed to the DVC remote",
                "Check the remote's space and permissions; nothing was registered.",
            ),
        )

    def pull(self, md5s: Iterable[str]) -> None:
        """Copy objects from the remote into the local cache, verifying each on the way.

        A read never changes the remote: DVC's own pull deletes a remote object whose hash
        does not match, which would turn "corrupted" into "missing" and destroy the
        evidence. Here a mismatching copy is refused and the remote is left as it was.

        Raises:
            RemoteError: The remote cannot be read, or an object is missing there too.
            IntegrityError: The remote's copy of an object does not match its md5.
        """
        missing = []
        for md5 in md5s:
            handle = self.remote_open(md5)
            if handle is None:
                missing.append(md5)
                continue
            with handle:
                self._fill_cache(md5, handle)
        if missing:
            raise RemoteError(
                f"{len(missing)} object(s) are missing from the local DVC cache and the DVC remote "
                f"(md5 {', '.join(missing)}).",
                "The data was never pushed or was deleted there; it cannot be restored.",
            )

    def _fill_cache(self, md5: str, source: Any) -> None:
        """Write one object into the cache through a temp file; rename only a matching copy."""
        import hashlib
        import uuid

        dest = self.cache_path(md5)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.rbk-tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with open(tmp, "wb") as out:
                try:
                    while chunk := source.read(4 * 1024 * 1024):
                        digest.update(chunk)
                        out.write(chunk)
                except OSError as exc:
                    raise RemoteError(
                        f"Reading {md5} from the DVC remote failed: {_one_line(exc)}.",
                        "Check the remote is reachable and retry.",
                    ) from exc
            if digest.hexdigest() != md5:
                raise IntegrityError(
                    f"The DVC remote's copy of object {md5} is corrupted (its md5 is {digest.hexdigest()}); "
                    "it was left there untouched and not used.",
                    "Push a good copy from a cache that holds it ('dvc push'), then run 'rollbackkit verify --all'.",
                )
            os.chmod(tmp, 0o444)  # DVC keeps cache objects read-only
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def _transfer(
        self, direction: str, md5s: Iterable[str], failed: tuple[str, str], incomplete: tuple[str, str]
    ) -> None:
        from dvc_data.hashfile.hash_info import HashInfo

        objs = [HashInfo("md5", m) for m in md5s]
        try:
            with _quiet():
                result = getattr(self.repo.cloud, direction)(objs)
        except Exception as exc:
            raise RemoteError(f"{failed[0]}: {_one_line(exc)}.", failed[1]) from exc
        if result.failed:
            raise RemoteError(f"{len(result.failed)} object(s) {incomplete[0]}.", incomplete[1])

    def cache_path(self, md5: str) -> Path:
        """Where the local cache keeps the object with this md5.

        DVC 3 lays its cache out as ``<cache dir>/files/md5/ab/cdef...``. Unless a
        ``cache.dir`` is configured, the path is computed without opening DVC (whose import
        is slow); with one, DVC itself answers.
        """
        if self._default_cache is None:
            self._default_cache = not self._cache_dir_configured()
        if self._default_cache:
            return self.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
        return Path(self.repo.cache.local.oid_to_path(md5))

    def _cache_dir_configured(self) -> bool:
        import configparser

        candidates = [
            self.root / ".dvc" / "config",
            self.root / ".dvc" / "config.local",
            Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "dvc" / "config",
            Path("/etc/xdg/dvc/config"),
        ]
        for path in candidates:
            parser = configparser.ConfigParser(strict=False, interpolation=None)
            try:
                parser.read(path)
            except configparser.Error:
                return True  # unreadable here: let DVC decide
            if parser.has_option("cache", "dir"):
                return True
        return False

    def remote_open(self, md5: str) -> Any:
        """Open the remote's copy of an object for reading (None when it is absent).

        Raises:
            RemoteError: The remote cannot be read, or it is a local directory that does not exist
                on this machine (:meth:`absent_remote`: a clone of a project on init's default remote).
        """
        absent = self.absent_remote()
        if absent is not None:
            raise RemoteError(*absent)
        try:
            odb = self.repo.cloud.get_remote_odb()
            path = odb.oid_to_path(md5)
            if not odb.fs.exists(path):
                return None
            return odb.fs.open(path, "rb")
        except Exception as exc:
            raise RemoteError(
                f"Reading the DVC remote failed: {_one_line(exc)}.", "Check the remote is configured and reachable."
            ) from exc

    def absent_remote(self) -> tuple[str, str] | None:
        """Message and hint when the default remote is a directory missing on this machine (init's
        default ``.rollbackkit/dvc-remote`` is gitignored: a git clone never has it), else None."""
        conf = self.repo.config
        name = conf["core"].get("remote")
        url = str(conf["remote"].get(name, {}).get("url") or "") if name else ""
        if not url or "://" in url or Path(url).is_dir():
            return None
        return (
            f"The DVC remote '{name}' is a local directory that does not exist on this machine ({url}); "
            "a git clone does not bring it.",
            f"Point the project at a shared remote (dvc remote add -d -f {name} s3://bucket/path; README "
            "'Scale-out') and run 'dvc push --all-tags' where the data is, then retry.",
        )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
