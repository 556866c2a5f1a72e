"""Names, versions and files that are not what they claim: one line each, nothing written.

Names, environments and versions with a trailing newline, other scripts' digits, spaces,
control characters or thousands of characters; YAML bombs, 20,000-deep documents, files
that are not UTF-8, a garbage ``dvc.yaml``, gates that could never be decided, and DVC
objects gone from both the cache and the remote. Every case goes through the CLI (in
process) and asserts the exit code, one clean ``error:`` line naming what was wrong, and
that tags, HEAD, the work tree, the journal and the log are as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import Data, copy_project, git, new_repo
from .conftest import assert_journal_whole, assert_one_clean_line, rollbackkit, state

BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
)
DEEP_FLOW = "a: " + "[" * 20_000 + "]" * 20_000 + "\n"
DEEP_BLOCK = "".join("  " * i + f"k{i}:\n" for i in range(150)) + "  " * 150 + "x\n"
MANY_ALIASES = "a: &a 1\nb: [" + ", ".join(["*a"] * 1_001) + "]\n"
NOT_UTF8 = b"predict: \xff\xfe auto\n"
UTF16 = "predict: auto\n".encode("utf-16")


@pytest.fixture(scope="module")
def template(
    tmp_path_factory: pytest.TempPathFactory, data: Data, models: dict[str, object], isolated_home: Path
) -> Path:
    """``cancer@v1.0.0`` and ``v1.1.0`` registered once per module, plus a model file and its data."""
    import skops.io

    from rollbackkit import Registry

    base = tmp_path_factory.mktemp("names-and-files")
    repo = new_repo(base / "project", "cancer")
    registry = Registry.init(repo)
    registry.register("cancer", models["v1"], data.frame, target="target", version="v1.0.0", message="first")
    registry.register("cancer", models["v2"], data.frame, target="target", version="v1.1.0", message="second")
    skops.io.dump(models["v1"], base / "model.skops")
    data.frame.to_csv(base / "train.csv", index=False)
    return repo


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template project."""
    return copy_project(template, tmp_path)


def register_args(template: Path, *extra: str, name: str = "cancer") -> tuple[str, ...]:
    files = template.parent
    return (
        "register",
        name,
        "--model",
        str(files / "model.skops"),
        "--train-data",
        str(files / "train.csv"),
        "--target",
        "target",
        *extra,
    )


def refused(repo: Path, *args: str, mentions: tuple[str, ...] = ()) -> None:
    """``args`` end in one clean error line naming ``mentions``, and change nothing."""
    before = state(repo)
    assert_one_clean_line(rollbackkit(*args, cwd=repo), *mentions)
    assert state(repo) == before


# ----------------------------------------------------------------------------- names
BAD_NAMES = [
    "cancer\n",
    "cancer\r\n",
    "cancer\t",
    " cancer",
    "can cer",
    "Cancer",
    "cancer-",
    "cancer--",
    "..",
    "../cancer",
    "a/b",
    "caf\u00e9",
    "c\u0430ncer",  # a Cyrillic 'a'
    "cancer\u0663",  # an Arabic-Indic digit
    "\uff11",  # a full-width digit
    "cancer\x1b[31m",
    "c" * 101,
    "c" * 10_000,
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_bad_bundle_name_is_refused_before_anything_is_written(repo: Path, template: Path, name: str) -> None:
    refused(repo, *register_args(template, name=name), mentions=("Invalid bundle name",))


BAD_VERSIONS = [
    "v2.0.0\n",
    "v2.0.\u0663",
    "v\uff12.0.0",
    "v2.0.0-rc.\u0661",
    "v2.1\u0663.0",  # before: accepted, and tagged v2.13.0 (int() reads the Arabic-Indic 3)
    "v2.0.0-1\u0661",
    "2.0.0",
    "v2.0",
    "v02.0.0",
    "v2.0.0-",
    "v2.0.0+",
    "v2.0.0 ",
    "v" + "9" * 5_000 + ".0.0",  # int() refuses numbers this long: it must never get there
]


@pytest.mark.parametrize("version", BAD_VERSIONS, ids=lambda v: repr(v)[:40])
def test_a_bad_version_is_refused_before_anything_is_written(repo: Path, template: Path, version: str) -> None:
    refused(repo, *register_args(template, "--version", version), mentions=("Invalid version",))


@pytest.mark.parametrize(
    ("ref", "mention"),
    [
        ("cancer@v1.0.0\n", "Invalid version"),
        ("cancer@v1.0.\u0663", "Invalid version"),
        ("cancer\n@v1.0.0", "Invalid bundle name"),
        ("cancer#prod\n", "Invalid environment name"),
        ("cancer#pr od", "Invalid environment name"),
        ("cancer#\u0661", "Invalid environment name"),
        ("cancer#", "Invalid environment name"),
        ("@v1.0.0", "Invalid bundle name"),
    ],
    ids=repr,
)
def test_a_bad_reference_is_one_line(repo: Path, ref: str, mention: str) -> None:
    refused(repo, "show", ref, mentions=(mention,))


@pytest.mark.parametrize("env", ["prod\n", "Prod", "../prod", "pr od", "prod\u0663", "p" * 101], ids=repr)
def test_a_bad_environment_is_refused_at_deploy(repo: Path, env: str) -> None:
    refused(repo, "deploy", "cancer@v1.0.0", "--env", env, mentions=("Invalid environment name",))


def test_a_name_with_a_trailing_newline_leaves_no_commit_without_a_tag(repo: Path, template: Path) -> None:
    """Before: ``NAME$`` matched ``"cancer\\n"``; the commit was made, then ``git tag`` refused the name."""
    head = git(repo, "rev-parse", "HEAD")
    assert_one_clean_line(rollbackkit(*register_args(template, name="cancer\n"), cwd=repo), "Invalid bundle name")
    assert git(repo, "rev-parse", "HEAD") == head


# ----------------------------------------------------------------------------- files given to register
def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


GATE = "gates:\n  - name: g\n"
BAD_CONFIGS: list[tuple[str, str, str | bytes, tuple[str, ...]]] = [
    # option, id, content, mentions
    ("--serving", "billion-laughs", BOMB, ("expands to more than",)),
    ("--serving", "deep-flow", DEEP_FLOW, ("line 1", "nesting depth")),
    ("--serving", "deep-block", DEEP_BLOCK, ("line 101", "nested deeper than 100")),
    ("--serving", "many-aliases", MANY_ALIASES, ("more than 1000 aliases",)),
    ("--serving", "not-utf8", NOT_UTF8, ("is not UTF-8", "byte 9")),
    ("--serving", "utf16", UTF16, ("is not UTF-8",)),
    ("--serving", "syntax", "predict: [unclosed\n", ("not valid YAML",)),
    ("--serving", "undefined-alias", "predict: *nope\n", ("not valid YAML",)),
    ("--serving", "two-documents", "predict: auto\n---\npredict: auto\n", ("not valid YAML",)),
    ("--serving", "a-list", "- predict\n", ("must hold a YAML mapping",)),
    ("--serving", "empty", "", ("must hold a YAML mapping",)),
    ("--serving", "unknown-key", "predict: auto\nbatchsize: 10\n", ("line 2", "unknown key 'batchsize'")),
    ("--serving", "absurd-batch", "batch_size: 1.0e+26\n", ("line 1", "batch_size must be a whole number")),
    ("--serving", "zero-batch", "batch_size: 0\n", ("line 1", "batch_size")),
    ("--serving", "negative-timeout", "timeout_ms: -1\n", ("line 1", "timeout_ms")),
    ("--serving", "bad-predict", "predict: everything\n", ("line 1", "predict 'everything'")),
    ("--serving", "bad-date", "predict: 2001-13-45\n", ("month must be in 1..12",)),
    ("--serving", "recursive-alias", "predict: &x [*x]\n", ("line 1", "recursive alias")),
    ("--gates", "billion-laughs", BOMB, ("expands to more than",)),
    ("--gates", "recursive-alias", "gates: &g\n  - name: g\n    kind: *g\n", ("line 3", "recursive alias")),
    ("--gates", "deep-flow", DEEP_FLOW, ("nesting depth",)),
    ("--gates", "deep-block", DEEP_BLOCK, ("nested deeper than 100",)),
    ("--gates", "not-utf8", b"min_samples: \xff\n", ("is not UTF-8",)),
    ("--gates", "a-list", "- kind: latency\n", ("must hold a mapping",)),
    ("--gates", "min-samples-1e26-string", "min_samples: 1e26\n", ("line 1", "min_samples must be a whole number")),
    ("--gates", "min-samples-1e26-float", "min_samples: 1.0e+26\n", ("line 1", "whole number")),
    ("--gates", "min-samples-beyond-window", "min_samples: 20001\n", ("line 1", "less than or equal to 20000")),
    ("--gates", "min-samples-bool", "min_samples: true\n", ("line 1", "whole number")),
    (
        "--gates",
        "gate-min-samples-1e26",
        GATE + "    kind: error_rate\n    max: 0.1\n    min_samples: 1.0e+26\n",
        ("line 5", "whole number"),
    ),
    (
        "--gates",
        "slice-by-absent-column",
        GATE + "    kind: slice\n    by: nope\n    metric: error_rate\n    max: 0.1\n",
        ("line 4", "by 'nope' is not an input feature or output"),
    ),
    (
        "--gates",
        "slice-by-one-absent-column",
        GATE + "    kind: slice\n    by: [mean radius, nope]\n    metric: psi\n    max: 0.5\n",
        ("line 4", "'nope'"),
    ),
    (
        "--gates",
        "slice-over-absent-column",
        GATE + "    kind: slice\n    by: mean radius\n    column: nope\n    metric: psi\n    max: 0.5\n",
        ("line 5", "column 'nope'"),
    ),
    (
        "--gates",
        "slice-by-the-label",
        GATE + "    kind: slice\n    by: target\n    metric: error_rate\n    max: 0.1\n",
        ("line 4", "by 'target'"),
    ),
    (
        "--gates",
        "prediction-drift-of-an-input",
        GATE + "    kind: prediction_drift\n    column: mean radius\n    max: 0.2\n",
        ("line 4", "is not an output"),
    ),
    (
        "--gates",
        "feature-drift-of-absent-features",
        GATE + "    kind: feature_drift\n    features: [mean radius, nope]\n    max: 0.2\n",
        ("line 4", "'nope' is not an input feature"),
    ),
    (
        "--gates",
        "tail-of-absent-column",
        GATE + "    kind: tail\n    column: nope\n    share_above_p99_max: 0.1\n",
        ("line 4", "column 'nope'"),
    ),
    (
        "--gates",
        "compare-without-threshold",
        GATE + "    kind: latency\n    compare: live\n",
        ("line 4", "gate 'g'", "compare: live needs one of max_ratio, max_increase, max_decrease"),
    ),
    (
        "--gates",
        "threshold-without-compare",
        GATE + "    kind: latency\n    max_ms: 50\n    max_ratio: 1.2\n",
        ("line 5", "max_ratio without compare: live"),
    ),
    ("--gates", "compare-prod", GATE + "    kind: error_rate\n    compare: prod\n", ("line 4", "compare 'prod'")),
    (
        "--gates",
        "compare-negative-ratio",
        GATE + "    kind: latency\n    compare: live\n    max_ratio: -1\n",
        ("line 5", "max_ratio must be greater than 0"),
    ),
    (
        "--gates",
        "compare-on-drift",
        GATE + "    kind: prediction_drift\n    max: 0.2\n    compare: live\n",
        ("line 5", "compare on a prediction_drift gate"),
    ),
]


@pytest.mark.parametrize(
    ("option", "content", "mentions"),
    [pytest.param(o, c, m, id=f"{o[2:]}-{i}") for o, i, c, m in BAD_CONFIGS],
)
def test_a_bad_config_file_is_one_line_naming_it(
    repo: Path, template: Path, tmp_path: Path, option: str, content: str | bytes, mentions: tuple[str, ...]
) -> None:
    path = _write(tmp_path / "config.yaml", content)
    refused(repo, *register_args(template, option, str(path)), mentions=(str(path), *mentions))


@pytest.mark.parametrize("option", ["--serving", "--gates"])
def test_a_directory_a_device_or_a_missing_file_is_one_line(
    repo: Path, template: Path, tmp_path: Path, option: str
) -> None:
    refused(repo, *register_args(template, option, str(tmp_path)), mentions=(str(tmp_path), "is not a file"))
    refused(repo, *register_args(template, option, "/dev/zero"), mentions=("/dev/zero", "is not a file"))
    refused(repo, *register_args(template, option, str(tmp_path / "nope.yaml")), mentions=("does not exist",))


def test_a_config_file_over_the_size_bound_is_refused_unread(repo: Path, template: Path, tmp_path: Path) -> None:
    from rollbackkit.yamlsafe import MAX_BYTES

    big = _write(tmp_path / "serving.yaml", "predict: auto\n" + "#" * MAX_BYTES + "\n")
    refused(repo, *register_args(template, "--serving", str(big)), mentions=(str(big), "larger than 4 MB"))


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("runbook", "run", "rollback\n"), ("neither a template name nor a notebook",)),
        (("runbook", "run", "rollback\u0663"), ("neither a template name nor a notebook",)),
    ],
    ids=["template-newline", "template-digit"],
)
def test_other_names_are_matched_whole(repo: Path, args: tuple[str, ...], mentions: tuple[str, ...]) -> None:
    refused(repo, *args, mentions=mentions)


@pytest.mark.parametrize("table", ["predictions\n", "predictions;drop", "pr\u0663", "t" * 64], ids=repr)
def test_a_sink_table_name_is_matched_whole(table: str) -> None:
    from rollbackkit.errors import InvalidInput
    from rollbackkit.serving.predlog.sinks import validate_table

    with pytest.raises(InvalidInput, match="Invalid sink table name"):
        validate_table(table)


@pytest.mark.parametrize(
    "args",
    [("register",), ("deploy", "cancer@v1.0.0", "--env", "prod"), ("restore", "cancer@v1.0.0")],
    ids=["register", "deploy", "restore"],
)
def test_a_journal_line_that_is_not_utf8_is_one_line(repo: Path, template: Path, args: tuple[str, ...]) -> None:
    journal = repo / ".rollbackkit" / "local" / "journal.jsonl"
    journal.write_bytes(journal.read_bytes() + b"\xff\xfe not a journal entry\n")
    if args == ("register",):
        args = register_args(template, "--version", "v2.0.0")
    refused(repo, *args, mentions=("journal.jsonl", "rollbackkit recover"))


@pytest.mark.parametrize(
    ("serving", "gates"),
    [
        ("predict: auto\nbatch_size: 64\ntimeout_ms: 250.5\nwarmup: none\n", None),
        ("\ufeffpredict: auto\n", None),  # a byte-order mark is fine
        ("batch_size: 64\n", "min_samples: 20000\n"),
        (
            None,
            GATE + "    kind: slice\n    by: [mean radius, prediction]\n    metric: error_rate\n    max: 0.1\n"
            "  - {name: t, kind: tail, column: proba_1, share_above_p99_max: 0.2}\n"
            "  - {name: f, kind: feature_drift, features: [mean radius], max: 0.3}\n",
        ),
    ],
    ids=["every-serving-key", "byte-order-mark", "largest-min-samples", "columns-that-exist"],
)
def test_a_valid_config_is_accepted(
    repo: Path, template: Path, tmp_path: Path, serving: str | None, gates: str | None
) -> None:
    extra: list[str] = []
    if serving is not None:
        extra += ["--serving", str(_write(tmp_path / "serving.yaml", serving))]
    if gates is not None:
        extra += ["--gates", str(_write(tmp_path / "gates.yaml", gates))]
    outcome = rollbackkit(*register_args(template, "--version", "v2.0.0", *extra), cwd=repo)
    assert outcome.code == 0, outcome.stderr
    assert "cancer@v2.0.0" in git(repo, "tag")
    assert_journal_whole(repo)


# ----------------------------------------------------------------------------- dvc.yaml
@pytest.mark.parametrize(
    ("content", "mentions"),
    [
        ("artifacts: [garbage\n", ("dvc.yaml line 2", "not valid YAML")),
        (b"\xff\xfe\x00garbage", ("dvc.yaml is not UTF-8",)),
        ("- a\n- b\n", ("dvc.yaml must hold a YAML mapping",)),
        ("artifacts: 5\n", ("dvc.yaml is not a valid DVC project file", "artifacts")),
        ("artifacts:\n  cancer: 7\n", ("dvc.yaml is not a valid DVC project file",)),
        ("stages: {train: {cmd: [1, 2], nonsense: true}}\n", ("dvc.yaml is not a valid DVC project file",)),
        (DEEP_FLOW, ("dvc.yaml line 1", "nesting depth")),
        (BOMB, ("dvc.yaml", "expands to more than")),
    ],
    ids=[
        "syntax",
        "not-utf8",
        "a-list",
        "artifacts-not-a-mapping",
        "artifact-not-a-mapping",
        "bad-stage",
        "deep",
        "bomb",
    ],
)
def test_a_garbage_dvc_yaml_is_refused_before_register_changes_anything(
    repo: Path, template: Path, content: str | bytes, mentions: tuple[str, ...]
) -> None:
    _write(repo / "dvc.yaml", content)
    git(repo, "commit", "-q", "-am", "a hand-edited dvc.yaml")
    refused(repo, *register_args(template, "--version", "v2.0.0"), mentions=mentions)
    assert_journal_whole(repo)


# ----------------------------------------------------------------------------- DVC objects gone
def _drop_dvc_objects(repo: Path) -> None:
    for store in (repo / ".dvc" / "cache", repo / ".rollbackkit" / "dvc-remote"):
        for path in store.rglob("*"):
            if path.is_file():
                path.unlink()


@pytest.mark.parametrize(
    "args",
    [
        ("restore", "cancer@v1.0.0"),
        ("restore", "cancer@v1.1.0"),
        ("parity", "cancer@v1.0.0"),
        ("preflight", "cancer@v1.0.0"),
    ],
    ids=lambda a: " ".join(a),
)
def test_a_dvc_object_missing_from_cache_and_remote_names_the_version(repo: Path, args: tuple[str, ...]) -> None:
    _drop_dvc_objects(repo)
    refused(repo, *args, mentions=(args[1], "missing from the local DVC cache and the DVC remote"))


def test_restore_to_a_missing_object_writes_nothing(repo: Path, tmp_path: Path) -> None:
    _drop_dvc_objects(repo)
    target = tmp_path / "out"
    refused(repo, "restore", "cancer@v1.0.0", "--to", str(target), mentions=("cancer@v1.0.0", "missing"))
    assert not target.exists()


# ----------------------------------------------------------------------------- --to where nothing can be written
@pytest.mark.parametrize(
    "where",
    [
        lambda files: files / "a-file" / "sub",  # the parent is a regular file
        lambda files: Path("/proc/rollbackkit-restore"),
        lambda files: Path("/proc/self/rollbackkit-restore"),
    ],
    ids=["parent-is-a-file", "proc", "proc-self"],
)
def test_restore_to_a_place_nothing_can_be_written_is_one_line(
    repo: Path, tmp_path: Path, where: Callable[[Path], Path]
) -> None:
    (tmp_path / "a-file").write_text("x")
    target = where(tmp_path)
    refused(repo, "restore", "cancer@v1.0.0", "--to", str(target), mentions=(target.name,))


# ----------------------------------------------------------------------------- files rollbackkit reads back
@pytest.mark.parametrize(
    "content",
    [BOMB, DEEP_FLOW, b"sinks: \xff\n", "- 1\n", "sinks: [\n"],
    ids=["bomb", "deep", "not-utf8", "a-list", "syntax"],
)
def test_a_hostile_project_config_is_one_clean_error(repo: Path, content: str | bytes) -> None:
    from rollbackkit.errors import InvalidInput
    from rollbackkit.project import ProjectPaths

    paths = ProjectPaths(repo)
    _write(paths.config_file, content)
    with pytest.raises(InvalidInput, match=r"config\.yaml"):
        paths.read_config()


@pytest.mark.parametrize("content", [BOMB, DEEP_FLOW, b"name: \xff\n"], ids=["bomb", "deep", "not-utf8"])
def test_a_hostile_manifest_is_an_integrity_error(content: str | bytes) -> None:
    from rollbackkit.bundle.manifest import Manifest
    from rollbackkit.errors import IntegrityError

    with pytest.raises(IntegrityError, match=r"bundle\.yaml"):
        Manifest.from_yaml(content)


# ----------------------------------------------------------------------------- the bounds themselves
def test_the_yaml_bounds_are_exact() -> None:
    from rollbackkit import yamlsafe
    from rollbackkit.errors import InvalidInput

    nest = lambda n: "a: " + "[" * (n - 1) + "]" * (n - 1) + "\n"  # noqa: E731 - the mapping is level 1
    assert yamlsafe.load(nest(yamlsafe.MAX_DEPTH), "f") is not None
    with pytest.raises(InvalidInput, match="deeper than 100"):
        yamlsafe.load(nest(yamlsafe.MAX_DEPTH + 1), "f")
    aliases = lambda n: "a: &a 1\nb: [" + ", ".join(["*a"] * n) + "]\n"  # noqa: E731
    assert len(yamlsafe.load(aliases(yamlsafe.MAX_ALIASES), "f")["b"]) == yamlsafe.MAX_ALIASES
    with pytest.raises(InvalidInput, match="aliases"):
        yamlsafe.load(aliases(yamlsafe.MAX_ALIASES + 1), "f")
    # anchors in ordinary use are fine: defaults shared by a few entries
    shared = yamlsafe.load("d: &d {max: 0.1}\ngates:\n  - {<<: *d, name: a}\n  - {<<: *d, name: b}\n", "f")
    assert shared["gates"][1] == {"max": 0.1, "name": "b"}
    with pytest.raises(InvalidInput, match="larger than 4 MB"):
        yamlsafe.load("#" * (yamlsafe.MAX_BYTES + 1), "f")


@pytest.mark.parametrize(
    "text",
    ["a: &x [*x]", "a: &x {b: *x}", "a: &x [[1, {c: *x}]]", "&x [*x]", "a: &x\n  b: [1, *x]\n"],
)
@pytest.mark.parametrize("reader", ["load", "load_round_trip"])
def test_a_recursive_alias_is_refused(reader: str, text: str) -> None:
    """Before: ``load("a: &x [*x]")`` returned a list holding itself (every walker of it recursed forever)."""
    from rollbackkit import yamlsafe
    from rollbackkit.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"^f line \d+: alias \*x inside the node &x it names") as caught:
        getattr(yamlsafe, reader)(text, "f")
    assert "\n" not in str(caught.value)
    # an alias after its anchor closed is ordinary sharing, not recursion
    assert getattr(yamlsafe, reader)("a: &x [1]\nb: [*x, *x]\n", "f")["b"] == [[1], [1]]


def test_the_window_without_a_log_is_bounded_by_rows_not_requests() -> None:
    """Before: only every 1,024th request trimmed it, so 200 requests of 1,000 rows stayed whole."""
    import numpy as np
    import pandas as pd

    from rollbackkit.analysis.gatespec import WINDOW_ROWS
    from rollbackkit.serving.window import Window

    window = Window()
    for i in range(200):
        rows = np.arange(i * 1_000, (i + 1) * 1_000)
        window.add(pd.DataFrame({"x": rows}), pd.DataFrame({"prediction": np.zeros(len(rows))}), 1.0, None)
        held = sum(len(p) for p in [*window.chunks, *window.fresh]) + sum(len(t[0]) for t in window.tail)
        assert held == window.rows <= 2 * WINDOW_ROWS, (i, held)
    frame = window.frame()
    assert len(frame) == WINDOW_ROWS
    assert frame["x"].tolist() == list(range(200_000 - WINDOW_ROWS, 200_000))  # the newest rows, in order
    small = Window()
    for i in range(3_000):
        small.add(pd.DataFrame({"x": [i]}), pd.DataFrame({"prediction": [0.0]}), 1.0, None)
    assert small.frame()["x"].tolist() == list(range(3_000))


def test_every_yaml_read_goes_through_the_bounded_loader() -> None:
    """No module parses YAML on its own (``yaml.safe_load``/``yaml.load``/ruamel's ``YAML()``)."""
    import re

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in [*sorted((root / "rollbackkit").rglob("*.py")), *sorted((root / "pipeline").glob("*.py"))]:
        if path.name == "yamlsafe.py":
            continue
        text = path.read_text()
        if re.search(r"yaml\.(safe_load|load|compose|full_load|unsafe_load)\(|YAML\(\)\.load|\byaml\.load\(", text):
            offenders.append(path.relative_to(root).as_posix())
    assert offenders == []


def test_a_bomb_registered_by_an_older_rollbackkit_is_refused_when_read(
    repo: Path, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: nothing validated ``serving.yaml``, and ``diff`` walked the 10^9 nodes a bomb expands to."""
    from rollbackkit.registry import builder

    bomb = _write(tmp_path / "serving.yaml", BOMB)
    with monkeypatch.context() as patch:  # register as a rollbackkit without the schema did
        patch.setattr(builder, "parse_serving", lambda text, where: None)
        outcome = rollbackkit(*register_args(template, "--version", "v2.0.0", "--serving", str(bomb)), cwd=repo)
        assert outcome.code == 0, outcome.stderr
    for args in (("diff", "cancer@v1.1.0", "cancer@v2.0.0"), ("parity", "cancer@v2.0.0")):
        refused(repo, *args, mentions=("cancer@v2.0.0 serving.yaml", "expands to more than"))
