"""A git clone of a project on init's default DVC remote: the remote is a directory on the machine
that registered (gitignored), so the clone has none. Reads say so, and how to point at a shared one,
instead of "the data was never pushed or was deleted"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rollbackkit import Registry
from rollbackkit.errors import RemoteError

from .cli import run_cli


def test_a_clone_without_the_local_remote_says_where_it_is_missing_and_how_to_share_one(
    two_versions: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(two_versions), str(clone)], check=True)
    assert not (clone / ".rollbackkit" / "dvc-remote").exists()

    with pytest.raises(RemoteError) as caught:
        Registry(clone).load("cancer@v1.0.0")
    said = str(caught.value)
    assert f"does not exist on this machine ({clone / '.rollbackkit' / 'dvc-remote'})" in said
    assert "never pushed" not in said and "dvc remote add -d -f rollbackkit" in said

    verified = run_cli("verify", "cancer@v1.1.0", cwd=clone)
    assert verified.returncode == 1 and "does not exist on this machine" in verified.stderr, verified.stderr
    assert len(verified.stderr.strip().splitlines()) == 1

    shared = two_versions / ".rollbackkit" / "dvc-remote"  # the hint followed: a directory both machines read
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "remote", "add", "-d", "-f", "rollbackkit", str(shared)], cwd=clone, check=True)
    assert Registry(clone).load("cancer@v1.0.0").info.version == "v1.0.0"
