"""The file system and the journal under careless operators, crashes and concurrent writers.

Damaged journal lines, head and intent files; scratch left by killed commands; restore
targets that hold someone else's files or lie in git's or DVC's metadata; a corrupted
object in the DVC remote; a copied project; parallel appenders and parallel admin calls.
Each case asserts the exit code, one line, and that nothing else changed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rollbackkit.errors import JournalDamaged

from ..conftest import Data, copy_project, git, new_repo, run_cli
from .conftest import Outcome, assert_journal_whole, assert_one_clean_line, rollbackkit, state

LOCAL = Path(".rollbackkit") / "local"
JOURNAL = LOCAL / "journal.jsonl"
HEAD = LOCAL / "journal.jsonl.head"
INTENT = LOCAL / "intents" / "current.json"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, data: Data, isolated_home: Path) -> Path:
    """``cancer@v1.0.0`` and ``cancer@v1.1.0`` (small linear models), plus a model file and a CSV."""
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from rollbackkit import Registry

    base = tmp_path_factory.mktemp("files-and-journal")
    repo = new_repo(base / "project", "project")
    registry = Registry.init(repo)
    for version, c in (("v1.0.0", 1.0), ("v1.1.0", 0.1)):
        model = LogisticRegression(C=c, solver="liblinear").fit(data.X, data.y)
        registry.register("cancer", model, data.frame, target="target", version=version)
    skops.io.dump(LogisticRegression(solver="liblinear").fit(data.X, data.y), base / "model.skops")
    data.frame.to_csv(base / "train.csv", index=False)
    return repo


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path)


def register_cli(repo: Path, version: str = "v2.0.0") -> Outcome:
    """``rollbackkit register`` of the template's model file and CSV as ``cancer@VERSION``."""
    return rollbackkit(
        "register",
        "cancer",
        "--model",
        str(MODEL_FILES["model"]),
        "--train-data",
        str(MODEL_FILES["data"]),
        "--target",
        "target",
        "--version",
        version,
        cwd=repo,
    )


MODEL_FILES: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def _model_files(template: Path) -> None:
    MODEL_FILES["model"] = template.parent / "model.skops"
    MODEL_FILES["data"] = template.parent / "train.csv"


def events(repo: Path) -> list[str]:
    from rollbackkit.registry.journal import Journal

    return [e["event"] for e in Journal(repo / JOURNAL).entries()]


# ---------------------------------------------------------------------------------- journal
@pytest.mark.parametrize(
    "torn",
    [b'{"seq": 99, "time": "2026-', b"\xff\xfe\x00 not even text", b'{"seq": 3}'],
    ids=["half-an-entry", "binary", "json-without-newline"],
)
def test_a_torn_last_line_is_cut_on_the_next_append_and_the_repair_recorded(repo: Path, torn: bytes) -> None:
    with open(repo / JOURNAL, "ab") as fh:
        fh.write(torn)  # a crash mid-append: no newline, never fsync'd, the head never moved
    assert_journal_whole(repo)  # never committed: not a break in the chain
    outcome = rollbackkit("restore", "cancer@v1.0.0", cwd=repo)
    assert outcome.code == 0, outcome.stderr
    assert events(repo)[-2:] == ["journal-repair", "restore"]
    assert_journal_whole(repo)
    from rollbackkit.registry.journal import Journal

    repair = Journal(repo / JOURNAL).entries()[-2]
    assert (repo / LOCAL / repair["kept"]).read_bytes() == torn and repair["bytes"] == len(torn)


DAMAGED_LAST_LINES = [b"garbage\n", b"{}\n", b"[1, 2]\n", b"\xff\xfe\n", b'{"seq": "7", "hash": 1}\n']


@pytest.mark.parametrize("line", DAMAGED_LAST_LINES, ids=["text", "empty-object", "array", "binary", "bad-fields"])
def test_a_damaged_last_line_stops_restore_in_one_line_until_recover(repo: Path, line: bytes) -> None:
    with open(repo / JOURNAL, "ab") as fh:
        fh.write(line)
    before = state(repo)
    assert_one_clean_line(rollbackkit("restore", "cancer@v1.0.0", cwd=repo), "journal.jsonl", "rollbackkit recover")
    assert state(repo) == before
    recovered = rollbackkit("recover", cwd=repo)
    assert recovered.code == 0 and "journal" in recovered.stdout, recovered.stdout + recovered.stderr
    assert_journal_whole(repo)  # the extra line was moved aside; the move is in the journal
    kept = sorted((repo / LOCAL).glob("journal.jsonl.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == line
    assert rollbackkit("restore", "cancer@v1.0.0", cwd=repo).code == 0


@pytest.mark.parametrize("line", [b"garbage\n", b"\xff\n"], ids=["text", "binary"])
def test_a_damaged_last_line_stops_register_before_the_tag(repo: Path, line: bytes) -> None:
    with open(repo / JOURNAL, "ab") as fh:
        fh.write(line)
    before = state(repo)
    assert_one_clean_line(register_cli(repo), "journal.jsonl", "rollbackkit recover")
    assert state(repo) == before  # no commit, no tag without its journal record
    assert rollbackkit("recover", cwd=repo).code == 0
    assert register_cli(repo).code == 0
    assert "cancer@v2.0.0" in git(repo, "tag")
    assert_journal_whole(repo)


@pytest.mark.parametrize("line", [b"garbage\n", b"\xc3\x28 not utf-8\n"], ids=["text", "binary"])
def test_a_damaged_middle_line_fails_verify_but_never_blocks_appends(repo: Path, line: bytes) -> None:
    lines = (repo / JOURNAL).read_bytes().splitlines(keepends=True)
    (repo / JOURNAL).write_bytes(b"".join([*lines[:1], line, *lines[1:]]))
    assert rollbackkit("restore", "cancer@v1.0.0", cwd=repo).code == 0
    verified = rollbackkit("journal", "verify", cwd=repo)
    assert verified.code == 1 and "line 2" in verified.stdout and "Traceback" not in verified.stderr


def _cut_lines(repo: Path, n: int) -> None:
    lines = (repo / JOURNAL).read_bytes().splitlines(keepends=True)
    (repo / JOURNAL).write_bytes(b"".join(lines[:-n]))


def _rewrite_last(repo: Path) -> None:
    from rollbackkit.registry.journal_chain import digest

    lines = (repo / JOURNAL).read_bytes().splitlines(keepends=True)
    entry = json.loads(lines[-1])
    entry["reason"] = "rewritten"
    entry["hash"] = digest(entry)  # a careful forger recomputes the line's own hash
    (repo / JOURNAL).write_bytes(b"".join([*lines[:-1], (json.dumps(entry, sort_keys=True) + "\n").encode()]))


UNANCHORED: dict[str, Callable[[Path], None]] = {
    "cut-one": lambda repo: _cut_lines(repo, 1),
    "cut-two": lambda repo: _cut_lines(repo, 2),
    "cut-all-but-one": lambda repo: _cut_lines(repo, len((repo / JOURNAL).read_bytes().splitlines()) - 1),
    "last-rewritten": _rewrite_last,
    "head-deleted": lambda repo: (repo / HEAD).unlink(),
}


@pytest.mark.parametrize("damage", UNANCHORED, ids=str)
def test_a_journal_cut_or_rewritten_below_its_head_stops_appends_until_recover_re_anchors(
    repo: Path, damage: str
) -> None:
    """Before: the next append chained onto what was left and moved the head, so verify said [] again."""
    from rollbackkit.registry.journal import Journal

    for _ in range(2):
        assert rollbackkit("restore", "cancer@v1.0.0", cwd=repo).code == 0  # a few more entries
    UNANCHORED[damage](repo)
    before = state(repo)
    assert_one_clean_line(rollbackkit("restore", "cancer@v1.0.0", cwd=repo), "journal.jsonl", "rollbackkit recover")
    assert_one_clean_line(register_cli(repo), "journal.jsonl", "rollbackkit recover")
    with pytest.raises(JournalDamaged, match="rollbackkit recover"):
        Journal(repo / JOURNAL).append("deploy", version="v9")
    assert state(repo) == before
    recovered = rollbackkit("recover", cwd=repo)
    assert recovered.code == 0 and "re-anchored" in recovered.stdout, recovered.stdout + recovered.stderr
    anchor = Journal(repo / JOURNAL).entries()[-1]
    assert anchor["event"] == "journal-repair" and anchor["repair"].startswith("re-anchored") and anchor["lost"]
    assert_journal_whole(repo)
    assert rollbackkit("restore", "cancer@v1.0.0", cwd=repo).code == 0


def test_one_line_past_the_head_is_a_crash_not_damage(repo: Path) -> None:
    head = (repo / HEAD).read_bytes()
    assert rollbackkit("restore", "cancer@v1.0.0", cwd=repo).code == 0
    (repo / HEAD).write_bytes(head)  # the process died between the line's fsync and the head's move
    assert rollbackkit("restore", "cancer@v1.0.0", cwd=repo).code == 0
    assert_journal_whole(repo)
    assert rollbackkit("restore", "cancer@v1.0.0", cwd=repo).code == 0
    (repo / HEAD).write_bytes(head)  # two lines past: not a crash window any more
    assert_one_clean_line(rollbackkit("restore", "cancer@v1.0.0", cwd=repo), "journal.jsonl", "rollbackkit recover")


@pytest.mark.parametrize(
    "head", [b"garbage", b"{}", b"\xff\xfe", b'{"seq": 1}'], ids=["text", "empty", "binary", "half"]
)
def test_a_garbage_head_file_is_named_in_one_line_and_cleared_by_recover(repo: Path, head: bytes) -> None:
    (repo / HEAD).write_bytes(head)
    before = state(repo)
    assert_one_clean_line(
        rollbackkit("restore", "cancer@v1.0.0", cwd=repo), "journal.jsonl.head", "rollbackkit recover"
    )
    assert state(repo) == before
    verified = rollbackkit("journal", "verify", cwd=repo)
    assert verified.code == 1 and "head" in verified.stdout and "Traceback" not in verified.stderr
    assert rollbackkit("recover", cwd=repo).code == 0
    kept = list((repo / LOCAL).glob("journal.jsonl.head.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == head
    assert_journal_whole(repo)
    assert rollbackkit("restore", "cancer@v1.0.0", cwd=repo).code == 0


GARBAGE_INTENTS = [
    b"not json",
    b"",
    b"[]",
    b"\xff\xfe",
    b'{"op": "register"}',
    b'{"op": "register", "name": "../../etc", "version": "v1.0.0"}',
    b'{"op": "register", "name": "cancer", "version": "latest\\n"}',
    b'{"op": "drop-everything", "name": "cancer", "version": "v1.0.0"}',
]


@pytest.mark.parametrize("content", GARBAGE_INTENTS, ids=lambda c: c[:20].decode(errors="replace") or "empty")
def test_a_garbage_intent_file_is_named_in_one_line_and_moved_aside_by_recover(repo: Path, content: bytes) -> None:
    (repo / INTENT).parent.mkdir(parents=True, exist_ok=True)
    (repo / INTENT).write_bytes(content)
    before = state(repo)
    assert_one_clean_line(rollbackkit("restore", "cancer@v1.0.0", cwd=repo), "current.json", "rollbackkit recover")
    assert state(repo) == before
    recovered = rollbackkit("recover", cwd=repo)
    assert recovered.code == 0 and "unreadable" in recovered.stdout, recovered.stdout + recovered.stderr
    assert not (repo / INTENT).exists()
    (aside,) = (repo / INTENT).parent.glob("current.json.unreadable-*")
    assert aside.read_bytes() == content
    assert rollbackkit("restore", "cancer@v1.0.0", cwd=repo).code == 0
    assert_journal_whole(repo)


@pytest.mark.parametrize(
    "leftover",
    [
        LOCAL / "tmp" / "cancer-0badc0de",
        Path("bundles") / ".cancer.rbk-restore-0badc0de",
        Path("bundles") / ".cancer.rbk-old-0badc0de",
    ],
    ids=["register-scratch", "restore-staging", "swapped-out"],
)
def test_recover_removes_what_killed_commands_left_in_scratch_space(repo: Path, leftover: Path) -> None:
    (repo / leftover).mkdir(parents=True)
    (repo / leftover / "model.skops").write_bytes(b"half a model")
    recovered = rollbackkit("recover", cwd=repo)
    assert recovered.code == 0 and "scratch" in recovered.stdout, recovered.stdout + recovered.stderr
    assert not (repo / leftover).exists()
    assert (repo / "bundles" / "cancer" / "bundle.yaml").is_file()


# ---------------------------------------------------------------------------------- the journal's register records
def _forge_v1(repo: Path) -> str:
    """Point cancer@v1.0.0 at a commit holding v1.1.0's content relabelled as v1.0.0, with
    a tag message whose trailers agree: every check but the journal's passes."""
    from rollbackkit.bundle.manifest import Manifest

    path = repo / "bundles" / "cancer" / "bundle.yaml"  # HEAD holds v1.1.0's bundle
    manifest = Manifest.from_yaml(path.read_text())
    forged = manifest.model_copy(
        update={"registration": manifest.registration.model_copy(update={"version": "v1.0.0"})}
    )
    path.write_text(forged.to_yaml())
    git(repo, "commit", "-q", "-am", "relabel")
    commit = git(repo, "rev-parse", "HEAD").strip()
    message = (
        "Registering artifact cancer version v1.0.0\n\nfirst model\n\n"
        f"Rollbackkit-Bundle-Id: {forged.bundle_id}\nRollbackkit-Commit: {commit}\n"
    )
    git(repo, "tag", "-f", "-a", "cancer@v1.0.0", "-m", message, commit)
    return commit


def _edit_register_line(repo: Path, tag: str, **fields: str) -> None:
    """Change a ``register`` line's fields in place, keeping its hash, size and mtime."""
    lines = (repo / JOURNAL).read_bytes().splitlines(keepends=True)
    for i, line in enumerate(lines):
        entry = json.loads(line)
        if entry.get("event") == "register" and entry.get("tag") == tag:
            for key, value in fields.items():
                assert len(value) == len(entry[key])
                lines[i] = line.replace(entry[key].encode(), value.encode())
    stat = (repo / JOURNAL).stat()
    (repo / JOURNAL).write_bytes(b"".join(lines))
    assert (repo / JOURNAL).stat().st_size == stat.st_size
    os.utime(repo / JOURNAL, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("how", ["forged-tag-and-line", "line-only-commit", "line-only-bundle-id"])
def test_a_register_line_that_does_not_match_its_hash_fails_the_tag_closed(repo: Path, how: str) -> None:
    """Before: an edited register line moved a tag past load and verify REF (its hash was never checked)."""
    from rollbackkit import Registry
    from rollbackkit.errors import IntegrityError

    registry = Registry(repo)
    assert registry.load("cancer@v1.0.0").version == "v1.0.0"  # the journal's records are now cached
    if how == "forged-tag-and-line":
        _edit_register_line(repo, "cancer@v1.0.0", commit=_forge_v1(repo))
    elif how == "line-only-commit":
        _edit_register_line(repo, "cancer@v1.0.0", commit="f" * 40)
    else:
        _edit_register_line(repo, "cancer@v1.0.0", bundle_id="0" * len(registry.resolve("cancer@v1.0.0").bundle_id))
    damaged = "journal's record of registering cancer@v1.0.0 is damaged"
    for reader in (registry, Registry(repo)):  # an edit keeping size and mtime is not hidden by the cache
        with pytest.raises(IntegrityError, match=damaged):
            reader.load("cancer@v1.0.0")
    outcome = rollbackkit("verify", "cancer@v1.0.0", cwd=repo)
    assert outcome.code == 1 and damaged in outcome.stdout, outcome
    assert_one_clean_line(rollbackkit("show", "cancer@v1.0.0", cwd=repo), damaged)
    assert registry.load("cancer@v1.1.0").version == "v1.1.0"  # the other version's record is whole


# ---------------------------------------------------------------------------------- restore --to
def _user_dir_with_bundle_yaml(repo: Path) -> Path:
    target = repo.parent / "mine"
    target.mkdir()
    (target / "bundle.yaml").write_text("my own notes about a bundle\n")
    (target / "notes.txt").write_text("precious\n")
    return target


def _earlier_restore_plus(repo: Path, change: str) -> Path:
    target = repo.parent / "restored"
    assert rollbackkit("restore", "cancer@v1.0.0", "--to", str(target), cwd=repo).code == 0
    if change == "added":
        (target / "notes.txt").write_text("precious\n")
    elif change == "edited":
        (target / "schema.json").write_text("{}  # edited by hand\n")
    elif change == "forged-marker":
        (target / ".rollbackkit-restore.json").write_text("not json")
    elif change == "subdir":
        (target / "mine").mkdir()
    return target


def _symlink_to_user_dir(repo: Path) -> Path:
    user = repo.parent / "user-files"
    user.mkdir()
    (user / "notes.txt").write_text("precious\n")
    link = repo.parent / "link"
    link.symlink_to(user)
    return link


def _a_file(repo: Path) -> Path:
    path = repo.parent / "a-file"
    path.write_text("precious\n")
    return path


REFUSED_TARGETS = {
    "bundle-yaml-beside-user-files": (_user_dir_with_bundle_yaml, "not write"),
    "the-workspace-bundle": (lambda r: r / "bundles" / "cancer", "bundles"),
    "a-new-dir-in-bundles": (lambda r: r / "bundles" / "elsewhere", "bundles"),
    "inside-git": (lambda r: r / ".git" / "restored", ".git"),
    "the-git-dir": (lambda r: r / ".git", ".git"),
    "inside-dvc": (lambda r: r / ".dvc" / "restored", ".dvc"),
    "the-dvc-cache": (lambda r: r / ".dvc" / "cache", ".dvc"),
    "inside-rollbackkit-state": (lambda r: r / ".rollbackkit" / "local" / "out", ".rollbackkit"),
    "the-project-root": (lambda r: r, "not write"),
    "an-existing-file": (_a_file, "not a directory"),
    "earlier-restore-plus-a-file": (lambda r: _earlier_restore_plus(r, "added"), "notes.txt"),
    "earlier-restore-edited": (lambda r: _earlier_restore_plus(r, "edited"), "schema.json"),
    "earlier-restore-forged-marker": (lambda r: _earlier_restore_plus(r, "forged-marker"), "not write"),
    "earlier-restore-plus-a-folder": (lambda r: _earlier_restore_plus(r, "subdir"), "mine"),
    "symlink-to-user-files": (_symlink_to_user_dir, "not write"),
    "unwritable-place": (lambda r: Path("/proc/rollbackkit-nowhere/out"), "/proc"),
    "below-a-file": (lambda r: _a_file(r) / "out", "a-file"),
}


def _tree(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(REFUSED_TARGETS), ids=list(REFUSED_TARGETS))
def test_a_restore_target_holding_anything_else_is_refused_and_kept(repo: Path, case: str) -> None:
    make, mention = REFUSED_TARGETS[case]
    target = make(repo)
    before, files = state(repo), _tree(target) if target != repo else {}
    assert_one_clean_line(rollbackkit("restore", "cancer@v1.1.0", "--to", str(target), cwd=repo), mention)
    assert state(repo) == before
    if target != repo:
        assert _tree(target) == files
    assert not list(target.parent.glob(f".{target.name}.rbk-*")) if target.parent.exists() else True


@pytest.mark.parametrize("case", ["new", "empty", "nested-new", "earlier-restore", "relative"])
def test_a_restore_target_that_is_new_empty_or_an_earlier_restore_is_accepted(repo: Path, case: str) -> None:
    from rollbackkit import Registry

    target = {"new": repo.parent / "out", "nested-new": repo.parent / "a" / "b" / "out"}.get(case, repo.parent / "out")
    if case == "empty":
        target.mkdir()
    if case == "earlier-restore":
        assert rollbackkit("restore", "cancer@v1.0.0", "--to", str(target), cwd=repo).code == 0
    before = state(repo)
    arg = os.path.relpath(target, repo) if case == "relative" else str(target)
    outcome = rollbackkit("restore", "cancer@v1.1.0", "--to", arg, cwd=repo)
    assert outcome.code == 0, outcome.stderr
    assert state(repo) == before  # --to never touches the project
    manifest = Registry(repo).manifest("cancer@v1.1.0")
    marker = json.loads((target / ".rollbackkit-restore.json").read_text())
    assert marker["tag"] == "cancer@v1.1.0"
    assert set(marker["files"]) == {"bundle.yaml", *(c.path for c in manifest.components.values())}
    assert set(_tree(target)) == {*marker["files"], ".rollbackkit-restore.json"}


def test_restoring_the_workspace_never_deletes_a_file_rollbackkit_did_not_write(repo: Path) -> None:
    (repo / "bundles" / "cancer" / "notes.txt").write_text("precious\n")
    before = state(repo)
    assert_one_clean_line(rollbackkit("restore", "cancer@v1.0.0", cwd=repo), "notes.txt")
    assert_one_clean_line(register_cli(repo), "notes.txt")
    assert state(repo) == before
    assert (repo / "bundles" / "cancer" / "notes.txt").read_text() == "precious\n"


def _append(path: Path, text: bytes = b"# an edit not committed yet\n") -> None:
    with open(path, "ab") as fh:
        fh.write(text)


def _model_file(repo: Path) -> Path:
    return next(p for p in (repo / "bundles" / "cancer").iterdir() if p.with_name(p.name + ".dvc").is_file())


UNCOMMITTED_EDITS: dict[str, Callable[[Path], str]] = {
    "gates-appended": lambda repo: (_append(repo / "bundles/cancer/gates.yaml"), "bundles/cancer/gates.yaml")[1],
    "serving-appended": lambda repo: (
        _append(repo / "bundles/cancer/serving.yaml"),
        "bundles/cancer/serving.yaml",
    )[1],
    "manifest-appended": lambda repo: (_append(repo / "bundles/cancer/bundle.yaml"), "bundles/cancer/bundle.yaml")[1],
    "gates-staged": lambda repo: (
        _append(repo / "bundles/cancer/gates.yaml"),
        git(repo, "add", "bundles/cancer/gates.yaml"),
        "bundles/cancer/gates.yaml",
    )[2],
    "new-file-staged": lambda repo: (
        (repo / "bundles/cancer/notes.txt").write_text("precious\n"),
        git(repo, "add", "bundles/cancer/notes.txt"),
        "bundles/cancer/notes.txt",
    )[2],
    "dvc-output-edited": lambda repo: (_append(_model_file(repo), b"\0"), _model_file(repo).name)[1],
    "dvc-output-replaced": lambda repo: (_model_file(repo).write_bytes(b"a hand-copied model"), _model_file(repo).name)[
        1
    ],
    "edited-after-a-restore": lambda repo: (
        rollbackkit("restore", "cancer@v1.0.0", cwd=repo),
        _append(repo / "bundles/cancer/gates.yaml"),
        "bundles/cancer/gates.yaml",
    )[2],
}


@pytest.mark.parametrize("edit", UNCOMMITTED_EDITS, ids=str)
@pytest.mark.parametrize("command", ["restore", "register"])
def test_uncommitted_edits_in_the_workspace_bundle_are_refused_not_discarded(
    repo: Path, edit: str, command: str
) -> None:
    """Before: any git-tracked file (or one beside a .dvc file) was replaced unread, the edit gone."""
    named = UNCOMMITTED_EDITS[edit](repo)
    edited = _tree(repo / "bundles" / "cancer")
    before = state(repo)
    outcome = rollbackkit("restore", "cancer@v1.0.0", cwd=repo) if command == "restore" else register_cli(repo)
    assert_one_clean_line(outcome, named, "Commit or stash")
    assert state(repo) == before
    assert _tree(repo / "bundles" / "cancer") == edited


@pytest.mark.parametrize("how", ["commit", "stash", "delete-tracked", "restore-twice"])
def test_a_clean_workspace_bundle_is_replaced_by_restore(repo: Path, how: str) -> None:
    gates = repo / "bundles" / "cancer" / "gates.yaml"
    if how in ("commit", "stash"):
        _append(gates)
        git(repo, "commit", "-q", "-am", "gates edited") if how == "commit" else git(repo, "stash", "-q")
    elif how == "delete-tracked":
        gates.unlink()
    else:
        assert rollbackkit("restore", "cancer@v1.0.0", cwd=repo).code == 0
        assert rollbackkit("restore", "cancer@v1.1.0", cwd=repo).code == 0
    outcome = rollbackkit("restore", "cancer@v1.0.0", cwd=repo)
    assert outcome.code == 0, outcome.stderr
    assert gates.is_file() and b"# an edit not committed yet" not in gates.read_bytes()
    assert rollbackkit("restore", "cancer@v1.1.0", cwd=repo).code == 0


# ---------------------------------------------------------------------------------- paths
@pytest.mark.parametrize("where", [".git/audit", ".dvc/audit", ".git"])
def test_an_audit_dir_in_git_or_dvc_metadata_is_refused_before_anything_runs(repo: Path, where: str) -> None:
    before = state(repo)
    outcome = rollbackkit(
        "runbook", "run", "incident_review", "-p", "name=cancer", "--audit-dir", str(repo / where), cwd=repo
    )
    assert_one_clean_line(outcome, where.split("/")[0])
    assert state(repo) == before
    assert not (repo / where).exists() or where == ".git"


# ---------------------------------------------------------------------------------- DVC remote
def _remote_object(repo: Path, md5: str) -> Path:
    return repo / ".rollbackkit" / "dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]


def _drop_cached(repo: Path, md5: str) -> None:
    from rollbackkit import Registry

    cached = Registry(repo).dvc.cache_path(md5)
    cached.chmod(0o644)
    cached.unlink()


@pytest.mark.parametrize("reader", ["restore-to", "restore", "load"])
def test_a_corrupted_remote_object_is_refused_by_reads_and_left_as_evidence(repo: Path, reader: str) -> None:
    from rollbackkit import Registry
    from rollbackkit.errors import IntegrityError

    md5 = Registry(repo).manifest("cancer@v1.0.0").components["model"].md5
    _drop_cached(repo, md5)
    remote = _remote_object(repo, md5)
    remote.chmod(0o644)
    corrupted = bytearray(remote.read_bytes())
    corrupted[40] ^= 0xFF
    remote.write_bytes(bytes(corrupted))
    before = state(repo)
    if reader == "load":
        with pytest.raises(IntegrityError, match=r"remote's copy .* is corrupted"):
            Registry(repo).load("cancer@v1.0.0")
    else:
        args = ("--to", str(repo.parent / "out")) if reader == "restore-to" else ()
        assert_one_clean_line(rollbackkit("restore", "cancer@v1.0.0", *args, cwd=repo), "corrupted", md5)
    assert state(repo) == before
    assert remote.read_bytes() == bytes(corrupted)  # a read never deletes from the remote
    assert not Registry(repo).dvc.cache_path(md5).exists()  # and never caches bad bytes
    verified = rollbackkit("verify", "--all", cwd=repo)
    assert verified.code == 1 and "DVC remote copy is corrupted" in verified.stdout and "missing" not in verified.stdout


def test_an_object_missing_from_cache_and_remote_is_one_line(repo: Path) -> None:
    from rollbackkit import Registry

    md5 = Registry(repo).manifest("cancer@v1.0.0").components["model"].md5
    _drop_cached(repo, md5)
    _remote_object(repo, md5).unlink()
    before = state(repo)
    assert_one_clean_line(
        rollbackkit("restore", "cancer@v1.0.0", "--to", str(repo.parent / "out"), cwd=repo), "missing"
    )
    assert state(repo) == before


def test_init_stores_the_default_remote_relative_so_a_copied_project_writes_into_its_own(
    template: Path, tmp_path: Path
) -> None:
    from rollbackkit import Registry

    config = (template / ".dvc" / "config").read_text()
    assert "url = ../.rollbackkit/dvc-remote" in config and str(template) not in config
    copy = tmp_path / "copy"
    shutil.copytree(template, copy, symlinks=True)  # what a user's cp -r does: no rewriting
    original = sorted(p.name for p in (template / ".rollbackkit" / "dvc-remote").rglob("*"))
    outcome = register_cli(copy)
    assert outcome.code == 0, outcome.stderr
    assert sorted(p.name for p in (template / ".rollbackkit" / "dvc-remote").rglob("*")) == original
    md5 = Registry(copy).manifest("cancer@v2.0.0").components["model"].md5
    assert _remote_object(copy, md5).is_file()
    assert Registry(copy).dvc.remote_url() == str(copy / ".rollbackkit" / "dvc-remote")


# ---------------------------------------------------------------------------------- concurrency
APPENDER = """
import sys
from pathlib import Path
from rollbackkit.registry.journal import Journal
journal = Journal(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    journal.append("probe", writer=sys.argv[2], i=i)
"""


def test_eight_processes_appending_in_parallel_keep_one_chain(tmp_path: Path) -> None:
    from rollbackkit.registry.journal import Journal

    path = tmp_path / "journal.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(w), "25"], stderr=subprocess.PIPE)
        for w in range(8)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    journal = Journal(path)
    assert journal.verify() == []
    entries = journal.entries()
    assert len(entries) == 200 and [e["seq"] for e in entries] == list(range(1, 201))


def test_threads_appending_and_rewriting_one_file_never_collide(tmp_path: Path) -> None:
    from rollbackkit.bundle.manifest import atomic_write
    from rollbackkit.registry.journal import Journal

    journal = Journal(tmp_path / "journal.jsonl")
    start = threading.Barrier(8)

    def work(w: int) -> None:
        start.wait()
        for i in range(25):
            journal.append("probe", writer=w, i=i)
            atomic_write(tmp_path / "state.json", json.dumps({"w": w, "i": i}))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert journal.verify() == [] and len(journal.entries()) == 200
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "journal.jsonl",
        "journal.jsonl.head",
        "journal.jsonl.lock",
        "state.json",
    ]


def test_forty_parallel_admin_calls_beside_cli_writers_keep_the_chain(served: Path) -> None:
    """A real server's deploys and rollbacks while other processes append (CLI restores, appenders)."""
    from rollbackkit.registry.journal import Journal

    from ..servers import running_server

    journal = served / JOURNAL
    with running_server(served, "churn", "prod", watchdog=60.0) as server:

        def call(i: int) -> int:
            if i % 2 == 0:
                return server.admin("deploy", {"version": "v1.1.0", "reason": f"call {i}"}).status_code
            return server.admin("rollback", {"reason": f"call {i}"}).status_code

        def restore(i: int) -> int:  # a workspace restore appends to the journal from another process
            return run_cli("restore", f"churn@v1.{i % 2}.0", cwd=served).returncode

        appenders = [
            subprocess.Popen([sys.executable, "-c", APPENDER, str(journal), f"cli-{w}", "150"], stderr=subprocess.PIPE)
            for w in range(2)
        ]
        with ThreadPoolExecutor(12) as pool:
            calls = pool.map(call, range(40))
            restores = pool.map(restore, range(4))
            codes, restored = list(calls), list(restores)
        for proc in appenders:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
    assert all(code < 500 for code in codes), codes
    assert codes.count(200) >= 10, codes  # most calls move traffic; one may be refused (409), none fails
    assert restored == [0, 0, 0, 0]
    assert_journal_whole(served)
    assert sum(e["event"] == "probe" for e in Journal(journal).entries()) == 300


def test_files_an_earlier_workspace_restore_wrote_are_rollbackkits_own(repo: Path, data: Data) -> None:
    from sklearn.linear_model import LogisticRegression

    from rollbackkit import Registry

    registry = Registry(repo)
    model = LogisticRegression(solver="liblinear").fit(data.X, data.y)
    code = repo.parent / "identity.py"
    code.write_text("def preprocess(frame):\n    return frame\n")
    registry.register("cancer", model, data.frame, target="target", version="v2.0.0", preprocess=code)
    registry.register("cancer", model, data.frame, target="target", version="v3.0.0")  # no preprocess.py
    assert rollbackkit("restore", "cancer@v2.0.0", cwd=repo).code == 0  # preprocess.py: untracked at HEAD
    assert (repo / "bundles" / "cancer" / "preprocess.py").is_file()
    outcome = rollbackkit("restore", "cancer@v3.0.0", cwd=repo)
    assert outcome.code == 0, outcome.stderr
    assert not (repo / "bundles" / "cancer" / "preprocess.py").exists()
    assert rollbackkit("restore", "cancer@v2.0.0", cwd=repo).code == 0
    (repo / "bundles" / "cancer" / "preprocess.py").write_text("# edited by hand since\n")
    assert_one_clean_line(rollbackkit("restore", "cancer@v3.0.0", cwd=repo), "preprocess.py")


def test_a_refused_register_on_a_fresh_project_creates_no_journal_file(project: Path) -> None:
    before = state(project)
    outcome = rollbackkit(
        "register", "cancer", "--model", str(MODEL_FILES["model"]), "--train-data", str(project / "nope.csv"),
        cwd=project,
    )  # fmt: skip
    assert_one_clean_line(outcome, "nope.csv")
    assert state(project) == before
    assert not list((project / LOCAL).glob("journal.jsonl*"))
