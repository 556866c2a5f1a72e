"""A git clone of a project on init's default DVC remote: the remote is a directory on the machine
that registered (gitignored), so the clone has none. Reads say so, and how to point at a shared one,
instead of "the data was never pushed or was deleted"."""

from __future__ import annotations

import json
import shutil
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

    verified = run_cli("verify", "cancer@v1.1.0", "--json", cwd=clone)  # a report, not a stop: the cache is checked
    assert verified.returncode == 1, verified.stderr
    rows = [(p["component"], p["problem"]) for p in json.loads(verified.stdout)["problems"]]
    remote = [said for part, said in rows if part == "dvc-remote"]
    assert len(remote) == 1 and "does not exist on this machine" in remote[0], rows
    assert ("golden", "golden.parquet: missing from the local DVC cache, and the remote cannot be read here") in rows

    shared = two_versions / ".rollbackkit" / "dvc-remote"  # the hint followed: a directory both machines read
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "remote", "add", "-d", "-f", "rollbackkit", str(shared)], cwd=clone, check=True)
    assert Registry(clone).load("cancer@v1.0.0").info.version == "v1.0.0"

    shutil.rmtree(shared)  # every object in the cache, the remote dir gone: verify still checks every version
    report = Registry(two_versions).verify()
    assert report.checked == ["cancer@v1.0.0", "cancer@v1.1.0"]
    assert [(p.version, p.component) for p in report.problems] == [("*", "dvc-remote")], report.problems
