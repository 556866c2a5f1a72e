"""Hostile and broken model files, preprocessing code that exits, and tags moved by hand.

The trust model under test (README "Security"): a ``.skops`` file loads only skops' own
default types, the reviewed classes in ``REVIEWED_TYPES`` and the types named with
``--trust``; a ``.joblib``/``.pkl`` file is never unpickled without ``--unsafe``; every load
happens after the hash check and, where the journal recorded the registration, after the
tag is checked against it. Every crafted file is built here, from a legitimate one.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from rollbackkit import Registry
from rollbackkit.errors import IntegrityError, InvalidInput, UntrustedModel, VersionNotFound

from ..conftest import Data, copy_project, git, new_repo
from .conftest import assert_journal_whole, assert_one_clean_line, rollbackkit, state


class Odd(LogisticRegression):
    """A type outside the reviewed list, as a third-party estimator would be."""


class Payload:
    """Unpickling this runs ``touch MARKER`` (the ``MARKER`` environment variable)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {os.environ['MARKER']}",))


class Exits:
    """Unpickling this calls ``sys.exit(0)``."""

    def __reduce__(self) -> tuple[Any, ...]:
        import sys

        return (sys.exit, (0,))


# --------------------------------------------------------------------------- crafting
def _strip_ids(node: Any) -> Any:
    if isinstance(node, dict):
        for key in ("__id__", "protocol", "_skops_version"):
            node.pop(key, None)
        for value in node.values():
            _strip_ids(value)
    elif isinstance(node, list):
        for value in node:
            _strip_ids(value)
    return node


def _state_of(obj: Any) -> dict[str, Any]:
    """skops' own state tree for ``obj`` (so crafted nodes are in the real file format)."""
    return _strip_ids(json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps(obj))).read("schema.json")))


def _rewrite(legit: bytes, edit: Callable[[dict[str, Any]], None], drop: str = "") -> bytes:
    """``legit`` with its schema.json edited in place (and member ``drop`` left out)."""
    source = zipfile.ZipFile(io.BytesIO(legit))
    schema = json.loads(source.read("schema.json"))
    edit(schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for item in source.namelist():
            if item != drop:
                zf.writestr(item, json.dumps(schema) if item == "schema.json" else source.read(item))
    return out.getvalue()


def _call_node(module: str, name: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """A reduce node: loading it calls ``module.name(*args)``."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": _state_of(args),
    }


def _payload(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('pwned')"


def _hostile_nodes(marker: Path) -> dict[str, dict[str, Any]]:
    code = _payload(marker)
    return {
        "numpy-runstring": _call_node("numpy.testing._private.utils", "runstring", (code, {})),
        "sklearn-run-script": _call_node(
            "sklearn.utils._testing", "assert_run_python_script_without_output", (code, ".*")
        ),
        "builtins-exec": _call_node("builtins", "exec", (code,)),
        "builtins-eval": _call_node("builtins", "eval", (f"exec({code!r})",)),
        "os-system": _call_node("os", "system", (f"touch {marker}",)),
        "subprocess-call": _call_node("subprocess", "call", (["touch", str(marker)],)),
        "partial-of-runstring": {
            "__class__": "partial",
            "__module__": "functools",
            "__loader__": "PartialNode",
            "content": {
                "func": {
                    "__class__": "runstring",
                    "__module__": "numpy.testing._private.utils",
                    "__loader__": "FunctionNode",
                },
                "args": _state_of((code, {})),
                "kwds": _state_of({}),
                "namespace": _state_of(None),
            },
        },
        "function-object": {"__class__": "system", "__module__": "os", "__loader__": "FunctionNode"},
        "foreign-class": {"__class__": "Popen", "__module__": "subprocess", "__loader__": "ObjectNode"},
    }


HOSTILE = [
    ("numpy-runstring", "numpy.testing._private.utils.runstring"),
    ("sklearn-run-script", "sklearn.utils._testing.assert_run_python_script_without_output"),
    ("builtins-exec", "builtins.exec"),
    ("builtins-eval", "builtins.eval"),
    ("os-system", "os.system"),
    ("subprocess-call", "subprocess.call"),
    ("partial-of-runstring", "numpy.testing._private.utils.runstring"),
    ("function-object", "os.system"),
    ("foreign-class", "subprocess.Popen"),
]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Path:
    """One project for the whole module: a refused register writes nothing, so cases share it."""
    path = new_repo(tmp_path_factory.mktemp("model-files") / "project", "model files")
    Registry.init(path)
    # A first refused register creates the lock files every later command leaves behind
    # (ignored by git), so a case's before/after states compare what matters.
    rollbackkit("register", "cancer", "--model", "absent.skops", "--train-data", "absent.csv", cwd=path)
    return path


@pytest.fixture(scope="module")
def small(data: Data) -> Data:
    """A fifth of the dataset: register costs little and the story is the same."""
    return Data(data.frame.iloc[::5].reset_index(drop=True))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, small: Data) -> dict[str, Path]:
    """The training CSV and legitimate model files to craft from."""
    where = tmp_path_factory.mktemp("files")
    out = {"train": where / "train.csv"}
    small.frame.to_csv(out["train"], index=False)
    out["tree"] = where / "tree.skops"
    sio.dump(DecisionTreeClassifier(max_depth=3, random_state=0).fit(small.X, small.y), out["tree"])
    return out


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file a payload would create; it must never exist."""
    path = tmp_path / "PWNED"
    monkeypatch.setenv("MARKER", str(path))
    return path


def _register(repo: Path, files: dict[str, Path], model: Path, *extra: str) -> Any:
    return rollbackkit(
        "register",
        "cancer",
        "--model",
        str(model),
        "--train-data",
        str(files["train"]),
        "--target",
        "target",
        *extra,
        cwd=repo,
    )


# --------------------------------------------------------------------------- 1. crafted skops
@pytest.mark.parametrize(("kind", "named"), HOSTILE)
def test_a_crafted_skops_file_is_refused_at_register_and_its_payload_never_runs(
    repo: Path, files: dict[str, Path], tmp_path: Path, marker: Path, kind: str, named: str
) -> None:
    node = _hostile_nodes(marker)[kind]

    def edit(schema: dict[str, Any]) -> None:
        schema["content"]["content"]["max_depth"] = node

    evil = tmp_path / "model.skops"
    evil.write_bytes(_rewrite(files["tree"].read_bytes(), edit))
    before = state(repo)
    assert_one_clean_line(_register(repo, files, evil), named, "--trust")
    assert not marker.exists()
    assert state(repo) == before
    assert_journal_whole(repo)


def test_a_payload_deep_inside_a_pipeline_is_refused_too(
    repo: Path, small: Data, files: dict[str, Path], tmp_path: Path, marker: Path
) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    legit = sio.dumps(make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=2)).fit(small.X, small.y))

    def edit(schema: dict[str, Any]) -> None:  # steps -> [(name, scaler), ...]: poison the scaler's with_mean
        scaler = schema["content"]["content"]["steps"]["content"][0]["content"][1]
        scaler["content"]["content"]["with_mean"] = _hostile_nodes(marker)["numpy-runstring"]

    evil = tmp_path / "pipeline.skops"
    evil.write_bytes(_rewrite(legit, edit))
    before = state(repo)
    assert_one_clean_line(_register(repo, files, evil), "runstring")
    assert not marker.exists() and state(repo) == before


@pytest.mark.parametrize(
    "trust", ["numpy.", "numpy.*", "numpy", "sklearn.utils._testing.", " os.system", "os.system\n"]
)
def test_trust_takes_one_fully_qualified_name_never_a_prefix(
    repo: Path, files: dict[str, Path], tmp_path: Path, marker: Path, trust: str
) -> None:
    def edit(schema: dict[str, Any]) -> None:
        schema["content"]["content"]["max_depth"] = _hostile_nodes(marker)["os-system"]

    evil = tmp_path / "model.skops"
    evil.write_bytes(_rewrite(files["tree"].read_bytes(), edit))
    before = state(repo)
    assert_one_clean_line(_register(repo, files, evil, "--trust", trust), "--trust")
    assert not marker.exists() and state(repo) == before


def test_trusting_another_type_does_not_let_the_payload_through(
    repo: Path, files: dict[str, Path], tmp_path: Path, marker: Path
) -> None:
    def edit(schema: dict[str, Any]) -> None:
        schema["content"]["content"]["max_depth"] = _hostile_nodes(marker)["numpy-runstring"]

    evil = tmp_path / "model.skops"
    evil.write_bytes(_rewrite(files["tree"].read_bytes(), edit))
    before = state(repo)
    outcome = _register(repo, files, evil, "--trust", "tests.adversarial.test_model_files.Odd")
    assert_one_clean_line(outcome, "numpy.testing._private.utils.runstring")
    assert not marker.exists() and state(repo) == before


@pytest.mark.parametrize(
    ("kind", "mention"),
    [
        ("empty", "skops"),
        ("random-bytes", "skops"),
        ("truncated", "skops"),
        ("no-schema", "skops"),
        ("schema-not-json", "skops"),
        ("missing-array", "not a readable skops file"),
        ("unknown-loader", "skops"),
        ("pickle-bytes", "skops"),
        ("not-a-model", "no predict()"),
        ("cached-node-loop", "skops"),
    ],
)
def test_a_broken_skops_file_is_one_line(
    repo: Path, files: dict[str, Path], tmp_path: Path, kind: str, mention: str
) -> None:
    legit = files["tree"].read_bytes()
    arrays = [n for n in zipfile.ZipFile(io.BytesIO(legit)).namelist() if n.endswith(".npy")]

    def unknown_loader(schema: dict[str, Any]) -> None:
        schema["content"]["content"]["max_depth"] = {"__class__": "x", "__module__": "os", "__loader__": "EvilNode"}

    def cached_loop(schema: dict[str, Any]) -> None:
        schema["content"]["content"]["max_depth"] = {
            "__class__": "x",
            "__module__": "os",
            "__loader__": "CachedNode",
            "__id__": 1,
        }

    content = {
        "empty": lambda: b"",
        "random-bytes": lambda: os.urandom(4096),
        "truncated": lambda: legit[: len(legit) // 2],
        "no-schema": lambda: _rewrite(legit, lambda s: None, drop="schema.json"),
        "schema-not-json": lambda: _zip({"schema.json": b"{not json"}),
        "missing-array": lambda: _rewrite(legit, lambda s: None, drop=arrays[0]),
        "unknown-loader": lambda: _rewrite(legit, unknown_loader),
        "pickle-bytes": lambda: pickle.dumps({"a": 1}),
        "not-a-model": lambda: sio.dumps({"weights": [1, 2, 3]}),
        "cached-node-loop": lambda: _rewrite(legit, cached_loop),
    }[kind]()
    path = tmp_path / "model.skops"
    path.write_bytes(content)
    before = state(repo)
    assert_one_clean_line(_register(repo, files, path), mention)
    assert state(repo) == before


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "mention"),
    [
        ("model.onnx", "not a readable ONNX model"),
        ("model.h5", "not a model file"),
        ("model.txt", "not a readable LightGBM model"),
        ("model", "not a model file"),
        ("missing.skops", "does not exist"),
    ],
)
def test_a_model_path_that_is_not_a_model_file_is_one_line(
    repo: Path, files: dict[str, Path], tmp_path: Path, name: str, mention: str
) -> None:
    path = tmp_path / name
    if name != "missing.skops":
        path.write_bytes(files["tree"].read_bytes())
    before = state(repo)
    assert_one_clean_line(_register(repo, files, path), mention)
    assert state(repo) == before


def test_a_directory_as_model_is_one_line(repo: Path, files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "dir.skops").mkdir()
    before = state(repo)
    assert_one_clean_line(_register(repo, files, tmp_path / "dir.skops"), "is not a file")
    assert state(repo) == before


# --------------------------------------------------------------------------- 2. pickle / joblib
@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".joblib", ".PKL"])
def test_a_pickle_is_never_unpickled_without_unsafe(
    repo: Path, files: dict[str, Path], tmp_path: Path, marker: Path, suffix: str
) -> None:
    evil = tmp_path / f"model{suffix}"
    evil.write_bytes(pickle.dumps(Payload()))
    before = state(repo)
    assert_one_clean_line(_register(repo, files, evil), "--unsafe")
    assert not marker.exists()
    assert state(repo) == before


def test_a_skops_file_renamed_to_pkl_needs_unsafe_too(repo: Path, files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(files["tree"].read_bytes())
    before = state(repo)
    assert_one_clean_line(_register(repo, files, path), "--unsafe")
    assert state(repo) == before


def test_with_unsafe_a_pickle_runs_as_the_operator_allowed_and_a_non_model_is_still_refused(
    repo: Path, files: dict[str, Path], tmp_path: Path, marker: Path
) -> None:
    """--unsafe is exactly what it says: the payload runs; the register still fails cleanly."""
    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(Payload()))
    before = state(repo)
    assert_one_clean_line(_register(repo, files, evil, "--unsafe"), "no predict()")
    assert marker.exists()
    assert state(repo) == before


@pytest.mark.parametrize(
    ("content", "mention"), [(pickle.dumps(Exits()), "SystemExit"), (b"\x80\x05\x95garbage", "cannot be loaded")]
)
def test_an_unsafe_pickle_that_exits_or_is_truncated_is_one_line(
    repo: Path, files: dict[str, Path], tmp_path: Path, content: bytes, mention: str
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    before = state(repo)
    assert_one_clean_line(_register(repo, files, path, "--unsafe"), mention)
    assert state(repo) == before


# --------------------------------------------------------------------------- 17. preprocessing code
PREPROCESS_CASES = {
    "exit-0-at-import": ("import sys\nsys.exit(0)\n", "SystemExit"),
    "exit-3-at-import": ("import sys\nsys.exit(3)\n", "SystemExit"),
    "exit-in-preprocess": ("import sys\ndef preprocess(frame):\n    sys.exit(0)\n", "SystemExit"),
    "keyboard-interrupt": ("def preprocess(frame):\n    raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    "raises-at-import": ("raise ValueError('no config')\n", "no config"),
    "syntax-error": ("def preprocess(frame)\n    return frame\n", "SyntaxError"),
    "no-function": ("x = 1\n", "defines no preprocess"),
    "not-callable": ("preprocess = 3\n", "defines no preprocess"),
    "returns-a-list": ("def preprocess(frame):\n    return [1]\n", "returned list"),
    "recursion": ("def preprocess(frame):\n    return preprocess(frame)\n", "RecursionError"),
    "imports-itself": (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('again', __file__)\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n",
        "RecursionError",
    ),
    "not-utf8": (b"# \xff\xfe\ndef preprocess(frame):\n    return frame\n", "UTF-8"),
}


@pytest.mark.parametrize("case", list(PREPROCESS_CASES))
def test_preprocessing_code_that_exits_or_fails_ends_register_in_one_line_naming_the_file(
    repo: Path, files: dict[str, Path], tmp_path: Path, case: str
) -> None:
    source, mention = PREPROCESS_CASES[case]
    code = tmp_path / f"prep_{case.replace('-', '_')}.py"
    code.write_bytes(source if isinstance(source, bytes) else source.encode())
    before = state(repo)
    outcome = _register(repo, files, files["tree"], "--preprocess", str(code))
    assert_one_clean_line(outcome, mention, code.name)
    assert state(repo) == before
    assert_journal_whole(repo)


# --------------------------------------------------------------------------- a template with versions
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, small: Data, isolated_home: Path) -> Path:
    """``cancer@v1.0.0`` (a tree) and ``cancer@v1.1.0`` (a logistic regression), plus a
    preprocess.py that exits when ``RBK_EXIT`` is set (``prep@v1.0.0``)."""
    path = new_repo(tmp_path_factory.mktemp("template") / "project", "template")
    registry = Registry.init(path)
    registry.register(
        "cancer",
        DecisionTreeClassifier(max_depth=3, random_state=0).fit(small.X, small.y),
        small.frame,
        target="target",
        version="v1.0.0",
    )
    registry.register(
        "cancer",
        LogisticRegression(max_iter=5000).fit(small.X, small.y),
        small.frame,
        target="target",
        version="v1.1.0",
    )
    code = path.parent / "prep.py"
    code.write_text(
        "import os, sys\nif os.environ.get('RBK_EXIT'):\n    sys.exit(0)\n\ndef preprocess(frame):\n    return frame\n"
    )
    registry.register(
        "prep",
        DecisionTreeClassifier(max_depth=2).fit(small.X, small.y),
        small.frame,
        target="target",
        preprocess=code,
        version="v1.0.0",
    )
    return path


@pytest.fixture
def copy(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path)


def test_a_preprocess_that_exits_at_load_is_one_line(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBK_EXIT", "1")
    with pytest.raises(InvalidInput, match="SystemExit"):
        Registry(copy).load("prep@v1.0.0")
    assert_one_clean_line(rollbackkit("parity", "prep@v1.0.0", cwd=copy), "SystemExit")


def _forge_v1_from_v1_1(repo: Path) -> str:
    """Point cancer@v1.0.0 at a commit holding v1.1.0's content relabelled as v1.0.0, with
    a tag message whose trailers agree: every check but the journal's passes."""
    from rollbackkit.bundle.manifest import Manifest

    manifest_path = repo / "bundles" / "cancer" / "bundle.yaml"  # HEAD holds v1.1.0's bundle
    manifest = Manifest.from_yaml(manifest_path.read_text())
    forged = manifest.model_copy(
        update={"registration": manifest.registration.model_copy(update={"version": "v1.0.0"})}
    )
    manifest_path.write_text(forged.to_yaml())
    git(repo, "commit", "-q", "-am", "relabel")
    commit = git(repo, "rev-parse", "HEAD").strip()
    message = (
        "Registering artifact cancer version v1.0.0\n\nfirst model\n\n"
        f"Rollbackkit-Bundle-Id: {forged.bundle_id}\nRollbackkit-Commit: {commit}\n"
    )
    git(repo, "tag", "-f", "-a", "cancer@v1.0.0", "-m", message, commit)
    return commit


def test_a_tag_moved_with_its_trailer_rewritten_is_refused_by_load_show_and_verify_ref(copy: Path) -> None:
    _forge_v1_from_v1_1(copy)
    with pytest.raises(IntegrityError, match="was moved from commit"):
        Registry(copy).load("cancer@v1.0.0")
    outcome = rollbackkit("verify", "cancer@v1.0.0", cwd=copy)
    assert outcome.code == 1 and "was moved from commit" in outcome.stdout, outcome
    assert_one_clean_line(rollbackkit("show", "cancer@v1.0.0", cwd=copy), "was moved from commit")
    assert_one_clean_line(rollbackkit("restore", "cancer@v1.0.0", "--to", str(copy.parent / "out"), cwd=copy), "moved")
    assert_one_clean_line(rollbackkit("deploy", "cancer@v1.0.0", "--env", "prod", "--reason", "r", cwd=copy), "moved")
    assert Registry(copy).load("cancer@v1.1.0").version == "v1.1.0"  # the honest version is untouched


def test_without_a_journal_record_an_honest_tag_still_loads(copy: Path) -> None:
    """The journal is local: a clone that did not register a version checks its tag alone."""
    journal = copy / ".rollbackkit" / "local" / "journal.jsonl"
    journal.unlink()
    journal.with_name("journal.jsonl.head").unlink(missing_ok=True)
    assert Registry(copy).load("cancer@v1.0.0").version == "v1.0.0"
    assert Registry(copy).verify("cancer@v1.0.0").ok


def test_a_tag_recreated_on_its_own_commit_with_the_same_trailers_is_accepted(copy: Path) -> None:
    message = git(copy, "tag", "-l", "--format=%(contents)", "cancer@v1.0.0")
    target = git(copy, "rev-list", "-n", "1", "cancer@v1.0.0").strip()
    git(copy, "tag", "-f", "-a", "cancer@v1.0.0", "-m", message, target)
    assert Registry(copy).verify("cancer@v1.0.0").ok
    assert Registry(copy).load("cancer@v1.0.0").version == "v1.0.0"


@pytest.mark.parametrize("how", ["lightweight", "no-trailer", "to-first-commit"])
def test_a_tag_replaced_by_hand_is_refused(copy: Path, how: str) -> None:
    target = git(copy, "rev-list", "-n", "1", "cancer@v1.1.0").strip()
    if how == "lightweight":
        git(copy, "tag", "-f", "cancer@v1.0.0", target)
    elif how == "no-trailer":
        git(copy, "tag", "-f", "-a", "cancer@v1.0.0", "-m", "hand made", target)
    else:
        git(
            copy,
            "tag",
            "-f",
            "-a",
            "cancer@v1.0.0",
            "-m",
            "hand made",
            git(copy, "rev-list", "--max-parents=0", "HEAD").strip(),
        )
    before = state(copy)
    if how == "lightweight":  # not a registration tag at all: the version is gone
        assert_one_clean_line(rollbackkit("verify", "cancer@v1.0.0", cwd=copy), "not registered")
        with pytest.raises(VersionNotFound):
            Registry(copy).load("cancer@v1.0.0")
    else:
        with pytest.raises(IntegrityError):
            Registry(copy).load("cancer@v1.0.0")
        assert not Registry(copy).verify("cancer@v1.0.0").ok
    assert state(copy) == before


# --------------------------------------------------------------------------- load-time trust
def _reader_that_records(registry: Registry, info: Any, manifest: Any, read: list[str]) -> Callable[[str], bytes]:
    def reader(role: str) -> bytes:
        read.append(role)
        return registry.read_component(info, manifest, role)

    return reader


def test_a_manifest_needing_a_type_nobody_trusted_is_refused_before_the_model_is_read(copy: Path) -> None:
    """As a bundle registered under the old prefix rule would be: its manifest records a
    type that is neither reviewed nor in the registration's trust."""
    from rollbackkit.bundle.model import LoadedBundle

    registry = Registry(copy)
    info = registry.resolve("cancer@v1.0.0")
    manifest = registry.manifest(info)
    model = manifest.components["model"]
    old_rule = manifest.model_copy(
        update={
            "components": {
                **manifest.components,
                "model": model.model_copy(update={"trusted_types": ("numpy.testing._private.utils.runstring",)}),
            }
        }
    )
    read: list[str] = []
    with pytest.raises(UntrustedModel, match="runstring"):
        LoadedBundle.from_components(info, old_rule, _reader_that_records(registry, info, old_rule, read))
    assert read == []


def test_a_pickle_bundle_without_the_recorded_opt_in_is_refused_at_load(
    copy: Path, small: Data, tmp_path: Path
) -> None:
    from rollbackkit.bundle.model import LoadedBundle

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(DecisionTreeClassifier(max_depth=2).fit(small.X, small.y)))
    registry = Registry(copy)
    info = registry.register("pickled", path, small.frame, target="target", unsafe=True)
    shown = registry.show(info.tag)
    assert (shown["unsafe_model_format"], shown["unsafe_allowed"]) == (True, True)
    assert "--unsafe" in rollbackkit("show", info.tag, cwd=copy).stdout
    assert registry.load(info.tag).version == info.version  # allowed, after the hash check
    manifest = registry.manifest(info)
    no_opt_in = manifest.model_copy(update={"registration": manifest.registration.model_copy(update={"unsafe": False})})
    read: list[str] = []
    with pytest.raises(UntrustedModel, match="--unsafe"):
        LoadedBundle.from_components(info, no_opt_in, _reader_that_records(registry, info, no_opt_in, read))
    assert read == []


def test_a_type_trusted_at_register_is_recorded_shown_and_loads(copy: Path, small: Data, tmp_path: Path) -> None:
    path = tmp_path / "odd.skops"
    sio.dump(Odd(max_iter=5000).fit(small.X, small.y), path)
    name = "tests.adversarial.test_model_files.Odd"
    before = state(copy)
    assert_one_clean_line(
        rollbackkit(
            "register",
            "odd",
            "--model",
            str(path),
            "--train-data",
            str(_csv(small, tmp_path)),
            "--target",
            "target",
            cwd=copy,
        ),
        name,
    )
    assert state(copy) == before
    registry = Registry(copy)
    info = registry.register("odd", path, small.frame, target="target", trust=[name])
    assert registry.show(info.tag)["trusted_by_operator"] == [name]
    assert name in rollbackkit("show", info.tag, cwd=copy).stdout
    assert registry.load(info.tag).version == info.version


def _csv(small: Data, where: Path) -> Path:
    path = where / "train.csv"
    small.frame.to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- the reviewed list
def test_every_reviewed_type_is_a_class_that_runs_no_code_it_is_given() -> None:
    import importlib
    import inspect

    from rollbackkit.bundle.flavors.scikit_learn import REVIEWED_TYPES

    for name in sorted(REVIEWED_TYPES):
        module, _, attr = name.rpartition(".")
        obj = getattr(importlib.import_module(module), attr)
        assert isinstance(obj, type), f"{name} is not a class"
        assert not issubclass(obj, BaseException | type), name
        for method in ("__new__", "__init__", "__setstate__", "__reduce__"):
            func = obj.__dict__.get(method)
            try:
                source = inspect.getsource(func) if func is not None else ""
            except (OSError, TypeError):  # compiled (Cython/C): reviewed by hand
                continue
            for word in (
                "exec(",
                "eval(",
                "compile(",
                "subprocess",
                "os.system",
                "__import__",
                "import_module",
                "pickle.load",
            ):
                assert word not in source, (name, method, word)


@pytest.mark.parametrize(
    "build",
    [
        "churn-pipeline",
        "random-forest",
        "hist-gradient-boosting-classifier",
        "hist-gradient-boosting-regressor",
        "logistic-regression",
        "ridge",
        "gradient-boosting",
        "column-transformer",
    ],
)
def test_the_projects_own_models_need_nothing_beyond_the_reviewed_types(small: Data, build: str) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from rollbackkit.bundle.flavors.scikit_learn import beyond_review
    from rollbackkit.demo.data import BASE_FEATURES, CATEGORICAL, TARGET, churn_frame, churn_pipeline

    churn = churn_frame(300)
    numeric = [c for c in BASE_FEATURES if c not in CATEGORICAL]
    X, y = small.X, small.y
    model = {
        "churn-pipeline": lambda: churn_pipeline(BASE_FEATURES).fit(churn[BASE_FEATURES], churn[TARGET]),
        "random-forest": lambda: RandomForestClassifier(3, random_state=0).fit(X, y),
        "hist-gradient-boosting-classifier": lambda: HistGradientBoostingClassifier(max_iter=3).fit(X, y),
        "hist-gradient-boosting-regressor": lambda: HistGradientBoostingRegressor(max_iter=3).fit(X, y),
        "logistic-regression": lambda: LogisticRegression(max_iter=5000).fit(X, y),
        "ridge": lambda: Ridge().fit(X, y),
        "gradient-boosting": lambda: GradientBoostingRegressor(n_estimators=3).fit(X, y),
        "column-transformer": lambda: make_pipeline(
            ColumnTransformer(
                [
                    ("onehot", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                    ("ordinal", OrdinalEncoder(), ["plan"]),
                    ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
                ]
            ),
            LogisticRegression(max_iter=5000),
        ).fit(churn[BASE_FEATURES], churn[TARGET]),
    }[build]()
    needed = tuple(sio.get_untrusted_types(data=sio.dumps(model)))
    assert beyond_review(needed) == (), needed


# --------------------------------------------------------------------------- reviewed types hold data: checked
def _tree_with(small: Data, change: str) -> Any:
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(small.X, small.y)
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    field, value = {
        "child-outside": ("left_child", 10**6),
        "child-before-parent": ("left_child", 0),
        "feature-outside": ("feature", 10**4),
        "one-child": ("right_child", -1),
    }[change]
    nodes[field][0] = value
    model.tree_.__setstate__({**state, "nodes": nodes})
    return model


def _predictor_with(small: Data, change: str) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=2, random_state=0).fit(small.X, small.y)
    nodes = model._predictors[0][0].nodes
    field, value = {"hgb-child-outside": ("right", 10**6), "hgb-feature-outside": ("feature_idx", 10**4)}[change]
    nodes[field][0] = value
    return model


def _nested(model: Any, depth: int) -> Any:
    """``model`` as the last step of ``depth`` pipelines, one inside the other."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    for _ in range(depth):
        model = Pipeline([("same", FunctionTransformer()), ("inner", model)])
    return model


@pytest.mark.parametrize(
    "change",
    [
        "child-outside",
        "child-before-parent",
        "feature-outside",
        "one-child",
        "hgb-child-outside",
        "hgb-feature-outside",
        "child-outside-nested-25-deep",
    ],
)
def test_a_tree_whose_indices_point_outside_it_is_refused_before_it_can_predict(
    repo: Path, small: Data, files: dict[str, Path], tmp_path: Path, change: str
) -> None:
    """scikit-learn reads tree arrays unchecked: a crafted index would read outside memory,
    however deep in a pipeline the tree sits."""
    if change.endswith("-nested-25-deep"):
        model = _nested(_tree_with(small, change.removesuffix("-nested-25-deep")), 25)
    else:
        model = _predictor_with(small, change) if change.startswith("hgb") else _tree_with(small, change)
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    before = state(repo)
    assert_one_clean_line(_register(repo, files, path), "malformed tree")
    assert state(repo) == before
