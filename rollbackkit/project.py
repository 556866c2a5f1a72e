"""Where a rollbackkit project keeps things, and its small committed config file.

``.rollbackkit/config.yaml`` is committed; ``.rollbackkit/local/`` (lock, journal, scratch
space, crash-recovery records) is machine-local and git-ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollbackkit.errors import InvalidInput, InvalidPath
from rollbackkit.refs import validate_name

CONFIG_DIR = ".rollbackkit"
DEFAULT_REMOTE_NAME = "rollbackkit"
DEFAULT_REMOTE_DIR = ".rollbackkit/dvc-remote"
# Files shipped inside the package: the demo project and the runbook templates (package data).
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class ProjectPaths:
    """Paths of one project, all derived from its git root."""

    root: Path

    @property
    def config_dir(self) -> Path:
        """``.rollbackkit/`` (committed config)."""
        return self.root / CONFIG_DIR

    @property
    def config_file(self) -> Path:
        """``.rollbackkit/config.yaml``."""
        return self.config_dir / "config.yaml"

    @property
    def local(self) -> Path:
        """``.rollbackkit/local/``: machine-local state, git-ignored."""
        return self.config_dir / "local"

    @property
    def lock_file(self) -> Path:
        """The repository lock every mutating command takes."""
        return self.local / "repo.lock"

    @property
    def journal(self) -> Path:
        """The append-only, hash-chained journal."""
        return self.local / "journal.jsonl"

    @property
    def prediction_log(self) -> Path:
        """The prediction log (DuckDB): staging/production rows, quarantine, backfill."""
        return self.local / "predictions.duckdb"

    @property
    def audit(self) -> Path:
        """``audit/``: executed runbook notebooks, committed next to the bundles."""
        return self.root / "audit"

    def read_config(self) -> dict[str, Any]:
        """The committed ``.rollbackkit/config.yaml`` as a mapping (empty when missing)."""
        from rollbackkit.yamlsafe import load_file

        if not self.config_file.exists():
            return {}
        data = load_file(self.config_file, hint="Fix the file and retry.")
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise InvalidInput(f"{self.config_file} must be a mapping.", "Write 'key: value' lines.")
        return data

    @property
    def scratch(self) -> Path:
        """Scratch space for bundles being built."""
        return self.local / "tmp"

    @property
    def intents(self) -> Path:
        """Records of operations in flight, used to recover after a crash."""
        return self.local / "intents"

    def bundle_dir(self, name: str) -> Path:
        """``bundles/NAME/`` in the work tree."""
        return self.root / "bundles" / validate_name(name)

    @staticmethod
    def bundle_relpath(name: str) -> str:
        """``bundles/NAME`` as a repo-relative POSIX path."""
        return f"bundles/{validate_name(name)}"


def refuse_metadata_dir(path: Path, repo_root: Path, option: str) -> None:
    """Refuse a destination given as ``option`` inside ``.git/`` or ``.dvc/`` of ``repo_root``.

    Raises:
        InvalidPath: ``path`` (symlinks resolved) is git's or DVC's metadata.
    """
    resolved = path.expanduser().resolve()
    for meta, owner in ((".git", "git"), (".dvc", "DVC")):
        if (repo_root / meta).resolve() in (resolved, *resolved.parents):
            raise InvalidPath(
                f"{option} {path} is inside {meta}/, which {owner} owns.", f"Choose a directory outside {meta}/."
            )
