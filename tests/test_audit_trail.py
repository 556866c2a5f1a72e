"""The published audit trail: a real incident's runbook and journal, committed and signed, checked from a clone.

One project per module: the served churn project with v1.1.0 deployed over v1.0.0, then the real
rollback runbook (papermill, a kernel) rolling it back, as the on-call engineer runs it. It is
published with ``--push`` to a bare origin while the engineer has their own staged and unstaged
work; a fresh clone of the origin (no ``.rollbackkit/local``, no journal) verifies it; every kind
of tampering with the clone fails the check with one line per problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from rollbackkit.demo.data import ALL_FEATURES, churn_frame
from rollbackkit.ops import audit_commit, audit_trail
from rollbackkit.ops.audit_check import verify_published
from rollbackkit.ops.audit_trail import publish
from rollbackkit.ops.runbooks import run
from rollbackkit.ops.traffic import deploy
from rollbackkit.registry.audit_keys import signer
from rollbackkit.registry.journal import Journal

from .conftest import copy_project, git, run_cli, shared_template


@dataclass(frozen=True)
class Published:
    """The project after ``audit publish --push``, its bare origin, a fresh clone, and what publish said."""

    project: Path
    origin: Path
    clone: Path
    answer: dict[str, Any]
    unstaged: list[str]


def cli(repo: Path, *args: str, code: int = 0, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_cli(*args, "--json", cwd=repo, env=env)
    assert result.returncode == code, f"{args}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return json.loads(result.stdout) if code == 0 or result.stdout.strip() else {"stderr": result.stderr}


@pytest.fixture(scope="module")
def incident_template(served_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1.1.0 deployed over v1.0.0, then rolled back by the real rollback runbook (INC-21)."""

    def build(root: Path) -> Path:
        repo = copy_project(served_template, root)
        deploy(repo, "churn@v1.1.0", "prod", reason="boosted model")
        features = repo.parent / "live.parquet"
        churn_frame(300, seed=71)[ALL_FEATURES].to_parquet(features)
        values = {"name": "churn", "env": "prod", "reason": "tail degraded", "incident": "INC-21"}
        result = run("rollback", {**values, "features": str(features)}, repo=repo)
        assert (result.status, result.verdict) == ("ok", "rolled-back"), result.error
        return repo

    return shared_template(tmp_path_factory, "incident-template", build)


@pytest.fixture(scope="module")
def published(incident_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """Published with --push while the engineer has a staged and an unstaged change of their own."""
    repo = copy_project(incident_template, tmp_path_factory.mktemp("published"))
    origin = repo.parent / "origin.git"
    git(repo.parent, "clone", "-q", "--bare", str(repo), str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    (repo / "README.md").write_text("# churn project\n\nstaged, not ready\n")
    git(repo, "add", "README.md")
    (repo / "notes.txt").write_text("mine\n")
    git(repo, "add", "notes.txt")
    (repo / "notes.txt").write_text("mine, edited since\n")
    unstaged = git(repo, "diff", "--name-only").split()
    assert "notes.txt" in unstaged
    answer = cli(repo, "audit", "publish", "--push")
    clone = repo.parent / "clone"
    git(repo.parent, "clone", "-q", str(origin), str(clone))
    return Published(repo, origin, clone, answer, unstaged)


def test_publish_commits_only_the_trail_and_leaves_the_engineers_work_alone(published: Published) -> None:
    repo, answer = published.project, published.answer
    assert answer["published"] and answer["pushed"] and answer["manifest"] == "audit/manifests/000001.json"
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert all(path.startswith("audit/") for path in committed), committed
    assert "audit/journal/journal.jsonl" in committed and "audit/signing-key.pub" in committed
    assert any(path.startswith("audit/runbooks/") and path.endswith("-rollback-INC-21.ipynb") for path in committed)
    assert git(repo, "diff", "--cached", "--name-only").split() == ["README.md", "notes.txt"]  # still staged
    assert git(repo, "diff", "--name-only").split() == published.unstaged  # unstaged edits are still there
    assert (repo / "notes.txt").read_text() == "mine, edited since\n"
    assert git(published.origin, "rev-parse", "main").strip() == answer["commit"]  # pushed

    key = repo / ".rollbackkit" / "local" / "audit-signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    everything = git(repo, "log", "--all", "-p", "--format=") + git(published.origin, "log", "--all", "-p")
    assert "PRIVATE KEY" not in everything and key.read_text().splitlines()[1] not in everything
    entry = Journal(repo / ".rollbackkit" / "local" / "journal.jsonl").entries()[-1]
    assert (entry["event"], entry["commit"], entry["key"]) == ("audit-published", answer["commit"], answer["key"])
    assert not any("PRIVATE" in json.dumps(e) for e in Journal(key.parent / "journal.jsonl").entries())


def test_publishing_twice_with_nothing_new_makes_no_commit(published: Published) -> None:
    repo = copy_project(published.project, published.project.parent / "twice")
    head = git(repo, "rev-parse", "HEAD")
    again = run_cli("audit", "publish", cwd=repo)
    assert again.returncode == 0 and "nothing new to publish" in again.stdout, again.stdout + again.stderr
    assert git(repo, "rev-parse", "HEAD") == head

    (repo / "audit/manifests/000001.json").unlink()  # killed between the commit and the work tree
    git(repo, "rm", "-q", "--cached", "audit/signing-key.pub")
    assert "nothing new" in run_cli("audit", "publish", cwd=repo).stdout and git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain", "--", "audit") == ""

    deploy(repo, "churn@v1.1.0", "staging", reason="try it on staging")  # something new happened
    second = cli(repo, "audit", "publish", "--message", "audit: after the staging deploy")
    assert second["manifest"] == "audit/manifests/000002.json"
    assert git(repo, "log", "-1", "--format=%s").strip() == "audit: after the staging deploy"
    first, latest = (
        (repo / "audit/manifests/000001.json").read_bytes(),
        json.loads((repo / "audit/manifests/000002.json").read_text()),
    )
    assert latest["previous"] == hashlib.sha256(first).hexdigest()  # the manifests chain
    assert cli(repo, "audit", "verify")["published"]["manifests"] == 2


def test_a_fresh_clone_verifies_the_trail_without_any_local_state(published: Published) -> None:
    clone = published.clone
    assert not (clone / ".rollbackkit" / "local").exists()
    fingerprint = published.answer["key"]
    verdict = cli(clone, "audit", "verify", "--key", fingerprint)
    assert verdict["ok"] and verdict["published"]["problems"] == [], verdict
    assert verdict["published"]["key"] == fingerprint and verdict["published"]["files"] == published.answer["files"]
    assert verdict["published"]["pinned"] == "--key"
    text = run_cli("audit", "verify", cwd=clone)
    assert text.returncode == 0 and f"key {fingerprint[:16]}: ok" in text.stdout, text.stdout
    assert text.stdout.startswith("no journal here (a clone)"), text.stdout

    short = run_cli("audit", "verify", "--key", "9b0c", cwd=clone)
    assert short.returncode == 1 and "is not a key fingerprint" in short.stderr, short.stderr
    wrong = cli(clone, "audit", "verify", "--key", "ab" * 32, code=1)
    assert [p["problem"] for p in wrong["published"]["problems"]] == [
        f"signed by key {fingerprint[:16]}, not the expected {'ab' * 8}"
    ]


def _notebook(clone: Path) -> Path:
    return next((clone / "audit" / "runbooks").glob("*-rollback-INC-21.ipynb"))


def _edit_notebook(clone: Path) -> None:
    path = _notebook(clone)
    os.chmod(path, 0o644)
    notebook = json.loads(path.read_text())
    notebook["metadata"]["rollbackkit"]["verdict"] = "refused"
    path.write_text(json.dumps(notebook))


def _lines(clone: Path) -> tuple[Path, list[str]]:
    path = clone / "audit" / "journal" / "journal.jsonl"
    return path, path.read_text().splitlines(keepends=True)


def _edit_journal(clone: Path) -> None:
    path, lines = _lines(clone)
    lines[2] = lines[2].replace('"churn@v1.0.0"', '"churn@v9.9.9"', 1).replace('"event": "', '"event": "x', 1)
    path.write_text("".join(lines))


def _truncate_journal(clone: Path) -> None:
    path, lines = _lines(clone)
    path.write_text("".join(lines[:-2]))


def _reorder_journal(clone: Path) -> None:
    path, lines = _lines(clone)
    lines[3], lines[4] = lines[4], lines[3]
    path.write_text("".join(lines))


def _edit_manifest(clone: Path) -> None:
    path = clone / "audit" / "manifests" / "000001.json"
    manifest = json.loads(path.read_text())
    notebook = next(p for p in manifest["files"] if p.endswith(".ipynb"))
    manifest["files"][notebook] = "0" * 64
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _remove_notebook(clone: Path) -> None:
    _notebook(clone).unlink()


def _add_notebook(clone: Path) -> None:
    shutil.copy(_notebook(clone), clone / "audit" / "runbooks" / "20260101T000000Z-rollback-forged.ipynb")


def _garble_manifest(clone: Path) -> None:
    (clone / "audit" / "manifests" / "000001.json").write_text("{not json")


def _link_journal(clone: Path) -> None:  # a committed link to a file outside (or /dev/zero): never followed
    path, _ = _lines(clone)
    path.unlink()
    path.symlink_to("/etc/hostname")


def _directory_manifest(clone: Path) -> None:
    (clone / "audit" / "manifests" / "000002.json").mkdir()


TAMPERING = {
    "an edited notebook": (_edit_notebook, ["edited: sha256 differs from the manifest", "edited: sha256 differs"]),
    "an edited journal export": (_edit_journal, ["edited: sha256 differs from the manifest", "(edited)"]),
    "a truncated journal export": (_truncate_journal, ["edited: sha256 differs from the manifest", "(truncated)"]),
    "a reordered journal export": (_reorder_journal, ["edited: sha256 differs from the manifest", "reordered"]),
    "an edited manifest": (_edit_manifest, ["signature does not verify", "edited: sha256 differs from the manifest"]),
    "a manifest that is not JSON": (_garble_manifest, ["not a readable signed manifest"]),
    "a missing notebook": (_remove_notebook, ["missing"]),
    "a notebook nobody published": (_add_notebook, ["not in the published manifest"]),
    "a journal export that is a symbolic link": (_link_journal, ["is a symbolic link (not followed)"]),
    "a manifest that is a directory": (_directory_manifest, ["is not a regular file"]),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_with_the_clone_fails_verify_one_line_per_problem(
    published: Published, tmp_path: Path, case: str
) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(published.clone, clone, symlinks=True)
    tamper, expected = TAMPERING[case]
    tamper(clone)
    shown = run_cli("audit", "verify", "--key", published.answer["key"], cwd=clone)
    assert shown.returncode == 1 and shown.stderr == "", shown.stderr
    head, trail, *problems = shown.stdout.splitlines()
    assert head.startswith("no journal here") and trail.endswith(": PROBLEMS"), shown.stdout
    assert problems and all(line.startswith("  audit/") and ": " in line for line in problems), shown.stdout
    for words in expected:  # one line per problem, each naming its file
        assert any(words in line for line in problems), (case, shown.stdout)


def test_a_publish_that_fails_midway_leaves_nothing_behind(incident_template: Path, tmp_path: Path) -> None:
    repo = copy_project(incident_template, tmp_path)
    (repo / "notes.txt").write_text("mine\n")
    git(repo, "add", "notes.txt")
    head, status = git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain")
    journal = Journal(repo / ".rollbackkit" / "local" / "journal.jsonl")
    before = len(journal.entries())
    lock = repo / ".git" / "refs" / "heads" / "main.lock"  # another git holds the branch: update-ref fails
    lock.write_text("")
    failed = run_cli("audit", "publish", cwd=repo)
    assert failed.returncode == 1 and "nothing was published" in failed.stderr, failed.stderr
    assert len([line for line in failed.stderr.splitlines() if line.strip()]) <= 2, failed.stderr
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == status
    assert not (repo / "audit" / "manifests").exists() and not (repo / "audit" / "journal").exists()
    assert len(journal.entries()) == before
    lock.unlink()
    assert cli(repo, "audit", "publish")["published"]  # and it works once git is free


def test_an_edited_notebook_is_refused_before_anything_is_published(incident_template: Path, tmp_path: Path) -> None:
    repo = copy_project(incident_template, tmp_path)
    _edit_notebook(repo)
    head = git(repo, "rev-parse", "HEAD")
    refused = run_cli("audit", "publish", cwd=repo)
    assert refused.returncode == 1 and "was edited after it ran" in refused.stderr, refused.stderr
    assert git(repo, "rev-parse", "HEAD") == head and not (repo / "audit" / "manifests").exists()


def test_another_key_cannot_extend_a_trail(published: Published, tmp_path: Path) -> None:
    repo = copy_project(published.project, tmp_path)
    deploy(repo, "churn@v1.1.0", "staging", reason="try it on staging")
    other = tmp_path / "other.pem"
    other.write_bytes(Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    refused = run_cli("audit", "publish", cwd=repo, env={"ROLLBACKKIT_AUDIT_KEY": str(other)})
    assert refused.returncode == 1 and f"signed by key {published.answer['key'][:16]}" in refused.stderr
    assert "BEGIN" not in refused.stderr + refused.stdout
    assert not (repo / "audit" / "manifests" / "000002.json").exists()
    mine = (repo / ".rollbackkit" / "local" / "audit-signing.key").read_text().strip().replace("\n", "\\n")
    given = {"ROLLBACKKIT_AUDIT_KEY": mine}  # the trail's key as a CI secret holds it: one line, "\n" escaped
    assert cli(repo, "audit", "publish", env=given)["key"] == published.answer["key"]


def test_publishing_while_a_server_journals_exports_a_whole_chain(incident_template: Path, tmp_path: Path) -> None:
    repo = copy_project(incident_template, tmp_path)
    journal = Journal(repo / ".rollbackkit" / "local" / "journal.jsonl")
    stop = threading.Event()

    def server() -> None:  # a serving process journals shifts and deliveries all the time
        while not stop.is_set():
            journal.append("notification", target="oncall", outcome="delivered")

    writer = threading.Thread(target=server)
    writer.start()
    try:
        results = [publish(repo) for _ in range(3)]
    finally:
        stop.set()
        writer.join()
    assert [r.manifest for r in results] == [f"audit/manifests/00000{i}.json" for i in (1, 2, 3)]
    report = verify_published(repo, results[0].key)
    assert report.ok and report.manifests == 3, report.problems


def test_a_key_value_is_never_echoed(published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = copy_project(published.project, tmp_path)
    pem = (repo / ".rollbackkit" / "local" / "audit-signing.key").read_text()
    body = pem.splitlines()[1]
    for secret in (body, body.replace("A", "B"), "not-a-file " + body):  # a bare base64 line, garbage, no path
        refused = run_cli("audit", "publish", cwd=repo, env={"ROLLBACKKIT_AUDIT_KEY": secret})
        assert refused.returncode == 1 and "neither PEM text nor the path" in refused.stderr, refused.stderr
        assert body[8:40] not in refused.stderr + refused.stdout and len(refused.stderr.strip().splitlines()) <= 2
    for given in (f'"{pem}"', f"Bag Attributes\n    localKeyID: 01\n{pem}", pem.replace("\n", " ")):
        monkeypatch.setenv("ROLLBACKKIT_AUDIT_KEY", given)  # quoted, an openssl pkcs12 export, newlines lost
        assert signer(tmp_path).fingerprint == published.answer["key"]


def test_a_detached_head_is_refused_unless_asked(incident_template: Path, tmp_path: Path) -> None:
    repo = copy_project(incident_template, tmp_path)
    git(repo, "checkout", "-q", "--detach")
    head = git(repo, "rev-parse", "HEAD")
    refused = run_cli("audit", "publish", "--push", cwd=repo)
    assert refused.returncode == 1 and "HEAD is detached" in refused.stderr and "Check out a branch" in refused.stderr
    assert git(repo, "rev-parse", "HEAD") == head and not (repo / "audit" / "manifests").exists()
    assert cli(repo, "audit", "publish", "--detached")["published"]  # a CI job that pushes the commit itself


def test_a_busy_index_publishes_nothing_and_a_publish_never_stages_the_trails_deletion(
    incident_template: Path, tmp_path: Path
) -> None:
    repo = copy_project(incident_template, tmp_path)
    (repo / "notes.txt").write_text("mine\n")
    git(repo, "add", "notes.txt")
    head, journal = git(repo, "rev-parse", "HEAD"), Journal(repo / ".rollbackkit" / "local" / "journal.jsonl")
    before, status = len(journal.entries()), git(repo, "status", "--porcelain")
    (repo / ".git" / "index.lock").write_text("")  # another git command is running
    busy = run_cli("audit", "publish", cwd=repo)
    assert busy.returncode == 1 and "Git is busy" in busy.stderr and "nothing was published" in busy.stderr
    assert git(repo, "rev-parse", "HEAD") == head and len(journal.entries()) == before
    (repo / ".git" / "index.lock").unlink()
    assert cli(repo, "audit", "publish")["published"]
    assert git(repo, "status", "--porcelain") == status.replace("?? audit/\n", "")  # trail clean, mine staged


def _journal_of_its_own(repo: Path, text: str) -> None:
    journal = Journal(repo / ".rollbackkit" / "local" / "journal.jsonl")
    journal.path.unlink()
    journal.head_path.unlink()
    journal.append("note", text=text)


def test_a_journal_that_does_not_extend_the_published_one_is_refused(published: Published, tmp_path: Path) -> None:
    repo = copy_project(published.project, tmp_path)
    _journal_of_its_own(repo, "staging deploy on the CI box")  # a second machine
    refused = run_cli("audit", "publish", cwd=repo)
    assert refused.returncode == 1 and "does not extend the published one" in refused.stderr, refused.stderr
    assert not (repo / "audit" / "manifests" / "000002.json").exists()


def test_rewriting_the_published_history_fails_verify(
    published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = copy_project(published.project, tmp_path)
    _journal_of_its_own(repo, "nothing happened")
    monkeypatch.setattr(audit_trail, "_extends", lambda previous, entries: None)  # a forger's rollbackkit
    publish(repo)  # with the trail's own key: manifest 2 replaces the incident with one line
    shown = verify_published(repo, published.answer["key"])
    problems = [f"{p.path}: {p.problem}" for p in shown.problems]
    assert any("000001.json: its journal head" in line and "history was rewritten" in line for line in problems)
    assert any("000002.json: drops audit/runbooks/" in line for line in problems), problems

    clone = copy_project(published.project, tmp_path / "fresh")  # start over: a new trail, a new key
    git(clone, "rm", "-q", "-r", "audit/manifests", "audit/journal", "audit/signing-key.pub")
    git(clone, "commit", "-q", "-m", "tidy up")
    (clone / ".rollbackkit" / "local" / "audit-signing.key").unlink()
    publish(clone)
    shown = verify_published(clone)
    problems = [f"{p.path}: {p.problem}" for p in shown.problems]
    assert shown.pinned == "the first published key" and any("deleted in commit" in line for line in problems)
    assert any(f"not the expected {published.answer['key'][:16]}" in line for line in problems), problems


def test_a_clone_with_its_own_journal_verifies_the_published_trail(published: Published, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(published.clone, clone, symlinks=True)
    Journal(clone / ".rollbackkit" / "local" / "journal.jsonl").append("note", text="a teammate's staging deploy")
    verdict = cli(clone, "audit", "verify")
    assert verdict["ok"] and verdict["problems"] == [] and verdict["published"]["pinned"], verdict


def test_a_machine_without_the_trails_key_makes_none_up(published: Published, tmp_path: Path) -> None:
    repo = copy_project(published.project, tmp_path)
    key = repo / ".rollbackkit" / "local" / "audit-signing.key"
    key.unlink()
    deploy(repo, "churn@v1.1.0", "staging", reason="try it on staging")
    refused = run_cli("audit", "publish", cwd=repo)
    assert refused.returncode == 1 and "no audit signing key" in refused.stderr and not key.exists()


def test_two_notebooks_that_would_share_one_published_path_are_refused(incident_template: Path, tmp_path: Path) -> None:
    repo = copy_project(incident_template, tmp_path)
    elsewhere = tmp_path / "elsewhere" / _notebook(repo).name  # saved with --audit-dir on another day
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(_notebook(repo).read_bytes() + b" ")
    digest = hashlib.sha256(elsewhere.read_bytes()).hexdigest()
    Journal(repo / ".rollbackkit" / "local" / "journal.jsonl").append("runbook", notebook=str(elsewhere), sha256=digest)
    refused = run_cli("audit", "publish", cwd=repo)
    assert refused.returncode == 1 and "would be published as audit/runbooks/" in refused.stderr, refused.stderr


def test_an_index_that_cannot_be_replaced_after_the_commit_is_put_right_by_git(
    incident_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = copy_project(incident_template, tmp_path)

    def full_disk(self: audit_commit.IndexLock, staged: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_commit.IndexLock, "install", full_disk)
    result = publish(repo)
    assert result.published and git(repo, "status", "--porcelain", "--", "audit") == ""  # no staged deletion
    entry = Journal(repo / ".rollbackkit" / "local" / "journal.jsonl").entries()[-1]
    assert (entry["event"], entry["commit"]) == ("audit-published", result.commit)


def test_a_deleted_journal_line_is_the_same_problem_locally_and_in_the_published_export(tmp_path: Path) -> None:
    """One chain check (registry.journal_chain.check_chain) for the journal and its published export: a line
    deleted from either is one broken link, never a cascade of problems for every line after it."""
    from rollbackkit.ops import audit_check
    from rollbackkit.ops.audit_trail import JOURNAL_EXPORT

    journal = Journal(tmp_path / "local" / "journal.jsonl")
    for step in range(6):
        journal.append("note", text=f"step {step}")
    lines = journal.path.read_bytes().splitlines(keepends=True)
    exported = tmp_path / "clone" / JOURNAL_EXPORT
    exported.parent.mkdir(parents=True)
    exported.write_bytes(b"".join(lines[:2] + lines[3:]))  # the third entry deleted from the export
    journal.path.write_bytes(exported.read_bytes())
    head = {"seq": 6, "hash": journal.entries()[-1]["hash"]}
    report = audit_check.TrailReport()
    entries = audit_check._journal(tmp_path / "clone", head, report)
    local = [f"line {p.line}: {p.problem}" for p in journal.verify()]
    published = [p.problem for p in report.problems]
    assert len(entries) == 5 and published == local, (published, local)
    assert len(published) == 2 and all(p.startswith("line 3:") for p in published), published
    assert "reordered" in published[0] and "sequence 4 where 3 was expected" in published[1]


def test_a_clone_that_deletes_the_whole_trail_fails_plain_verify(published: Published, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(published.origin), str(clone))
    git(clone, "rm", "-q", "-r", "audit")
    git(clone, "commit", "-q", "-m", "cleanup")
    shown = run_cli("audit", "verify", cwd=clone)  # no --key: git's history alone says a trail existed
    assert shown.returncode == 1 and shown.stderr == "", shown.stdout + shown.stderr
    assert "audit/manifests: the published trail is gone (published in commit" in shown.stdout, shown.stdout
    assert "deleted in commit" in shown.stdout, shown.stdout
    verdict = cli(clone, "audit", "verify", code=1)
    assert verdict["ok"] is False and not verdict["published"]["ok"], verdict
