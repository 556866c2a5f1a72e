"""MLflow as a source, against a real ``mlflow server`` (SQLite backend) on 127.0.0.1.

Three versions of a scikit-learn model (string labels, signature, input example) are
logged and registered, alias ``champion`` on version 2. ``rollbackkit import mlflow``
brings them across (``list``, ``history``), a second import skips them, deploys and
rollbacks with ``--sync-alias prod=champion`` move the alias (read back through MLflow's
client), a failed move warns and ``mlflow sync`` retries it; ``register --model
models:/NAME/N`` works directly; bad inputs are one line, exit 1, nothing registered.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from .adversarial.conftest import assert_one_clean_line, rollbackkit, state
from .conftest import BIN, git, run_cli
from .servers import TOKEN, running_server
from .terminal import screen

pytestmark = pytest.mark.filterwarnings("ignore")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Iterator[str]:
    """A real tracking server on a free loopback port, one per test worker for the session (a module-scoped one
    started again whenever a worker ran this module's tests between others), stopped at the end."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = (root / "server.log").open("w")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "MLFLOW_TRACKING_URI": ""}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no huey job consumers: five processes nothing here uses
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
         "--default-artifact-root", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        import mlflow  # noqa: F401  (seconds of imports, while the server starts)

        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited: {(root / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not ready: {(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield uri
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(autouse=True)
def no_ambient_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI gets the server from --tracking-uri (or the project's link), never from the test's MLflow."""
    import mlflow

    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # also unsets MLFLOW_TRACKING_URI
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@contextlib.contextmanager
def logging_to(uri: str) -> Iterator[None]:
    """Log to ``uri`` with MLflow's own API, then leave no tracking URI behind (set_tracking_uri sets the env)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def iris_frame() -> pd.DataFrame:
    """Iris with string labels."""
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["target"] = data.target_names[data.target]
    return frame


@pytest.fixture
def logged(logged_once: dict[str, Any]) -> dict[str, Any]:
    """The logged models with their aliases where they were logged (a test before may have moved them)."""
    logged_once["client"].set_registered_model_alias("iris", "champion", "2")
    logged_once["client"].set_registered_model_alias("iris", "Best_Model", "3")
    return logged_once


@pytest.fixture(scope="session")
def logged_once(mlflow_uri: str, iris_frame: pd.DataFrame) -> dict[str, Any]:
    """Three versions of ``iris`` (alias champion on 2) and a cloudpickle-only ``pyfunc-only``, once per worker."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X, y = iris_frame.drop(columns=["target"]), iris_frame["target"]
    runs, ids = {}, {}

    class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc, name-defined]
        def predict(self, context: Any, model_input: Any) -> Any:
            return model_input

    with logging_to(mlflow_uri):
        for version, c in ((1, 0.01), (2, 1.0), (3, 100.0)):
            model = LogisticRegression(C=c, max_iter=500).fit(X, y)
            with mlflow.start_run() as run:
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    signature=infer_signature(X, model.predict(X)),
                    input_example=X.sample(120, random_state=version),
                )
            mlflow.register_model(info.model_uri, "iris", await_registration_for=0)
            runs[version], ids[version] = run.info.run_id, info.model_id
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=Echo())
        mlflow.register_model(info.model_uri, "pyfunc-only", await_registration_for=0)
    client = mlflow.MlflowClient(mlflow_uri)
    client.set_registered_model_alias("iris", "champion", "2")
    client.set_registered_model_alias("iris", "Best_Model", "3")  # not a valid environment name
    return {"runs": runs, "ids": ids, "client": client}


@pytest.fixture
def repo(project: Path) -> Path:
    """A rollbackkit project, ``.rollbackkit`` committed."""
    return project


def _champion(logged: dict[str, Any]) -> str:
    return str(logged["client"].get_model_version_by_alias("iris", "champion").version)


def test_import_then_sync_alias_on_deploy_and_rollback(repo: Path, mlflow_uri: str, logged: dict[str, Any]) -> None:
    out = rollbackkit("import", "mlflow", "iris", "--tracking-uri", mlflow_uri, "--sync-alias", "prod=champion",
                      cwd=repo)  # fmt: skip
    assert out.code == 0, out.stderr
    assert "iris@v3.0.0  <- models:/iris/3  imported" in out.stdout
    assert "alias champion -> iris@v2.0.0  prod: assigned" in out.stdout
    assert "'Best_Model' is not a valid environment name" in out.stdout

    listed = json.loads(rollbackkit("list", "iris", "--json", cwd=repo).stdout)["bundles"]
    assert [b["version"] for b in listed] == ["v1.0.0", "v2.0.0", "v3.0.0"]
    history = json.loads(rollbackkit("history", "iris", "--env", "prod", "--json", cwd=repo).stdout)["assignments"]
    assert [(a["version"], a["action"]) for a in history] == [("v2.0.0", "deploy")]
    assert "alias champion" in history[0]["reason"]
    table = rollbackkit("history", "iris", "--env", "prod", cwd=repo).stdout
    assert "v2.0.0" in table
    assert "sync:\n      prod: champion" in (repo / ".rollbackkit" / "mlflow.yaml").read_text()
    assert git(repo, "status", "--porcelain", "--", ".rollbackkit/mlflow.yaml") == ""  # committed: a clone keeps it
    assert not (repo / "mlflow.db").exists() and not (repo / "mlruns").exists()  # MLflow's default store: untouched
    tag = git(repo, "tag", "-l", "--format=%(contents)", "iris@v3.0.0")
    assert '"run_id": "' + logged["runs"][3] in tag and '"version": 3' in tag and '"mlflow_version": "3.' in tag
    shown = rollbackkit("show", "iris@v3.0.0", cwd=repo).stdout
    assert f"from MLflow models:/iris/3 (run {logged['runs'][3]}, MLflow 3." in shown

    again = rollbackkit("import", "mlflow", "iris", "--json", cwd=repo)  # the server the first import recorded
    assert again.code == 0, again.stderr
    done = json.loads(again.stdout)
    assert [v["status"] for v in done["versions"]] == ["skipped"] * 3
    assert {a["alias"]: a["status"] for a in done["aliases"]}["champion"] == "unchanged"

    deployed = rollbackkit("deploy", "iris@v3.0.0", "--env", "prod", "--reason", "try 3", cwd=repo)
    assert deployed.code == 0, deployed.stderr
    assert "MLflow alias champion -> iris version 3" in deployed.stdout
    assert _champion(logged) == "3"
    rolled = rollbackkit("rollback", "iris", "--env", "prod", "--reason", "worse", "--json", cwd=repo)
    assert rolled.code == 0, rolled.stderr
    assert json.loads(rolled.stdout)["mlflow_alias"]["mlflow_version"] == 2
    assert _champion(logged) == "2"

    # A move that fails never undoes the rollback: one warning line, a journal record, and the retry command.
    config = repo / ".rollbackkit" / "mlflow.yaml"
    good = config.read_text()
    config.write_text(good.replace(mlflow_uri, f"http://127.0.0.1:{_free_port()}"))
    rollbackkit("deploy", "iris@v3.0.0", "--env", "prod", cwd=repo)
    failed = rollbackkit("rollback", "iris", "--env", "prod", "--reason", "again", cwd=repo)
    assert failed.code == 0, failed.stderr
    warning = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(warning) == 1 and "rollbackkit mlflow sync iris --env prod" in warning[0], failed.stderr
    assert "Rolled back" in failed.stdout
    journal = [json.loads(x) for x in (repo / ".rollbackkit/local/journal.jsonl").read_text().splitlines()]
    assert [e["ok"] for e in journal if e["event"] == "mlflow-alias"][-1] is False
    # A malformed mlflow.yaml after the change is committed: a warning, never an error exit (the deploy stands).
    config.write_text("bundles: [oops\n")
    broken = rollbackkit("deploy", "iris@v3.0.0", "--env", "prod", "--json", cwd=repo)
    assert broken.code == 0, broken.stderr
    assert json.loads(broken.stdout)["mlflow_alias"]["ok"] is False
    lines = [line for line in broken.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "mlflow sync iris --env prod" in lines[0], broken.stderr
    rollbackkit("rollback", "iris", "--env", "prod", "--reason", "back", cwd=repo)
    config.write_text(good)
    retried = rollbackkit("mlflow", "sync", "iris", "--env", "prod", cwd=repo)
    assert retried.code == 0, retried.stderr
    assert _champion(logged) == "2"

    # Through a running server: the CLI asks it to shift; the server moves the alias (once).
    moves = len(_alias_moves(repo))
    with running_server(repo, "iris", "prod") as server:
        admin = {"ROLLBACKKIT_ADMIN_TOKEN": TOKEN}
        deployed = run_cli("deploy", "iris@v3.0.0", "--env", "prod", "--json", cwd=repo, env=admin)
        assert deployed.returncode == 0, deployed.stderr
        assert json.loads(deployed.stdout)["via"] == server.url and _champion(logged) == "3"
        rolled = run_cli("rollback", "iris", "--env", "prod", "--reason", "worse", cwd=repo, env=admin)
        assert rolled.returncode == 0, rolled.stderr
        assert "MLflow alias champion -> iris version 2" in rolled.stdout and _champion(logged) == "2"
        assert server.status()["background"] == {
            "failures": 0,
            "last_failure": None,
            "pending": [],
            "gate_history_dropped": {"repeat": 0, "change": 0, "write_failed": 0, "not_built": 0},
        }
        assert len(_alias_moves(repo)) == moves + 2  # the server moved it; the CLI did not move it again

        # Straight to the admin API (curl): the server moves the alias where it records the assignment.
        import httpx

        auth = {"Authorization": f"Bearer {TOKEN}"}
        answer = httpx.post(f"{server.url}/admin/deploy", json={"version": "v3.0.0"}, headers=auth, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["mlflow_alias"]["ok"] is True and _champion(logged) == "3"
        answer = httpx.post(f"{server.url}/admin/rollback", json={"reason": "curl"}, headers=auth, timeout=60)
        assert answer.json()["mlflow_alias"]["mlflow_version"] == 2 and _champion(logged) == "2"
        httpx.post(f"{server.url}/admin/deploy", json={"version": "v3.0.0", "canary": 20}, headers=auth, timeout=60)
        assert _champion(logged) == "2"  # a canary moves no alias
        answer = httpx.post(f"{server.url}/admin/promote", json={}, headers=auth, timeout=60)
        assert answer.json()["mlflow_alias"]["mlflow_version"] == 3 and _champion(logged) == "3"
        config.write_text(good.replace(mlflow_uri, f"http://127.0.0.1:{_free_port()}"))
        answer = httpx.post(f"{server.url}/admin/rollback", json={"reason": "down"}, headers=auth, timeout=60)
        assert answer.status_code == 200 and answer.json()["mlflow_alias"]["ok"] is False
        assert server.status()["background"]["failures"] == 1
        shown = screen("status", "iris", "--env", "prod", cwd=repo)  # the alias stayed behind: one row says so
        words = " ".join(shown.stdout.split())
        assert shown.returncode == 0 and shown.fits(24), shown
        assert "behind MLflow alias champion not moved (1 failure): Cannot reach" in words, shown
        assert "retry: rollbackkit mlflow sync iris --env prod" in words, shown
        config.write_text(good)
        assert rollbackkit("mlflow", "sync", "iris", "--env", "prod", cwd=repo).code == 0
        from rollbackkit.ops.overview import overview

        assert overview(repo, "iris", "prod").behind is None  # caught up: the server's count alone says nothing

    # The server's hook after an automatic rollback moves the alias too; a failure is counted, not raised.
    from rollbackkit.ops.serve import after_auto_rollback
    from rollbackkit.serving.environment import ServingEnvironment

    logged["client"].set_registered_model_alias("iris", "champion", "3")
    result = {"assignment": {"version": "v2.0.0", "action": "auto-rollback"}}
    after_auto_rollback(repo, "iris", "prod", result, runbook=False)
    assert _champion(logged) == "2"
    config.write_text(good.replace(mlflow_uri, f"http://127.0.0.1:{_free_port()}"))
    environment = ServingEnvironment(repo, "iris", "prod", on_auto_rollback=lambda r: after_auto_rollback(
        repo, "iris", "prod", r, runbook=False))  # fmt: skip
    environment.watchdog._after_rollback(result)
    assert environment.status()["background"]["failures"] == 1
    assert "mlflow sync iris --env prod" in environment.status()["background"]["last_failure"]


def _alias_moves(repo: Path) -> list[dict[str, Any]]:
    journal = [json.loads(x) for x in (repo / ".rollbackkit/local/journal.jsonl").read_text().splitlines()]
    return [e for e in journal if e["event"] == "mlflow-alias"]


def test_register_models_uri_directly(repo: Path, mlflow_uri: str, logged: dict[str, Any]) -> None:
    from rollbackkit import Registry

    out = run_cli("register", "iris", "--model", "models:/iris@champion", cwd=repo,
                  env={"MLFLOW_TRACKING_URI": mlflow_uri})  # fmt: skip
    assert out.returncode == 0, out.stderr
    done = run_cli("register", "iris", "--model", "models:/iris/3", "--tracking-uri", mlflow_uri, cwd=repo)
    assert done.returncode == 0 and done.stderr == "", done.stderr  # no MLflow INFO lines
    assert not (repo / "mlflow.db").exists()  # --tracking-uri alone: MLflow's default store never opened
    for uri in (f"runs:/{logged['runs'][1]}/model", f"models:/{logged['ids'][1]}"):
        out = rollbackkit("register", "iris", "--model", uri, "--tracking-uri", mlflow_uri, cwd=repo)
        assert out.code == 0, out.stderr
    tags = git(repo, "tag", "-l", "--format=%(refname:short) %(contents)", "iris@*")
    assert '"uri": "models:/iris/2"' in tags and '"uri": "models:/iris/3"' in tags
    assert f'"run_id": "{logged["runs"][1]}", "tracking_uri": "{mlflow_uri}", "uri": "runs:/' in tags
    assert f'"uri": "models:/{logged["ids"][1]}"' in tags
    bundle = Registry(repo).load("iris@v0.0.2")
    sample = pd.DataFrame({"sepal_length": [5.1, 6.7], "sepal_width": [3.5, 3.0],
                           "petal_length": [1.4, 5.2], "petal_width": [0.2, 2.3]})  # fmt: skip
    answers = bundle.predict(sample)["prediction"].tolist()
    assert answers == ["setosa", "virginica"] and all(type(a) is str for a in answers)
    assert bundle.schema.feature_names == list(sample.columns)


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["register", "x", "--model", "models:/iris/1", "--tracking-uri", "CLOSED"], ["Cannot reach", "CLOSED"]),
        (["import", "mlflow", "iris", "--tracking-uri", "CLOSED"], ["Cannot reach", "CLOSED", "curl"]),
        (["register", "x", "--model", "models:/pyfunc-only/1", "--tracking-uri", "URI"], ["python_function"]),
        (["register", "x", "--model", "models:/iris/9", "--tracking-uri", "URI"], ["models:/iris/9", "1, 2, 3"]),
        (["register", "x", "--model", "models:/iris@nobody", "--tracking-uri", "URI"], ["models:/iris@nobody"]),
        (["import", "mlflow", "Iris_Model", "--tracking-uri", "URI"], ["--as iris-model"]),
        (["import", "mlflow", "nothing", "--tracking-uri", "URI"], ["No registered model 'nothing'"]),
    ],
)
def test_bad_mlflow_sources_are_one_line(
    repo: Path, mlflow_uri: str, logged: dict[str, Any], args: list[str], mentions: list[str]
) -> None:
    closed = f"http://127.0.0.1:{_free_port()}"
    args = [closed if a == "CLOSED" else mlflow_uri if a == "URI" else a for a in args]
    before = state(repo)
    started = time.monotonic()
    out = rollbackkit(*args, cwd=repo)
    assert_one_clean_line(out, *[closed if m == "CLOSED" else m for m in mentions])
    assert time.monotonic() - started < 20  # no minutes of MLflow's retries
    assert state(repo) == before


def test_train_data_needed_without_mlflow_and_missing_mlflow_names_the_extra(
    repo: Path, tmp_path: Path, mlflow_uri: str
) -> None:
    before = state(repo)
    (tmp_path / "m.skops").write_bytes(b"")
    assert_one_clean_line(rollbackkit("register", "x", "--model", str(tmp_path / "m.skops"), cwd=repo), "--train-data")
    fake = tmp_path / "fake"
    (fake / "mlflow").mkdir(parents=True)
    (fake / "mlflow" / "__init__.py").write_text("raise ImportError('mlflow is not installed')\n")
    out = run_cli("register", "x", "--model", "models:/iris/1", "--tracking-uri", mlflow_uri, cwd=repo,
                  env={"PYTHONPATH": str(fake)})  # fmt: skip
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1 and len(lines) == 1 and "rollbackkit[mlflow]" in lines[0], out.stderr
    assert state(repo) == before


def _save(flavor: str, path: Path, frame: pd.DataFrame) -> type:
    """Save a small model of ``flavor`` as MLflow does (string labels where the library keeps them)."""
    import mlflow
    from mlflow.models import infer_signature

    X, y = frame.drop(columns=["target"]), frame["target"]
    signature, example = infer_signature(X), X.sample(120, random_state=0)
    if flavor == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=5, max_depth=2, nthread=1).fit(X, (y == "setosa").astype(int))
        mlflow.xgboost.save_model(model, str(path), signature=signature, input_example=example)
        return int
    if flavor in ("lightgbm", "lightgbm-booster"):
        import lightgbm

        if flavor == "lightgbm":
            model = lightgbm.LGBMClassifier(n_estimators=5, n_jobs=1, verbose=-1).fit(X, y)
            mlflow.lightgbm.save_model(model, str(path), signature=signature, input_example=example)
            return str
        data = lightgbm.Dataset(X, (y == "setosa").astype(int))
        booster = lightgbm.train({"objective": "binary", "verbose": -1, "num_threads": 1}, data, 5)
        mlflow.lightgbm.save_model(booster, str(path), signature=signature, input_example=example)
        return int
    if flavor == "catboost":
        import catboost

        model = catboost.CatBoostClassifier(iterations=5, depth=2, thread_count=1, verbose=0).fit(X, y)
        mlflow.catboost.save_model(model, str(path), signature=signature, input_example=example)
        return str
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(X, y)
    onx = to_onnx(model, X.head(1).to_numpy().astype("float32"), options={"zipmap": False})
    mlflow.onnx.save_model(onx, str(path), signature=signature, input_example=example)
    return str


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm", "lightgbm-booster", "catboost", "onnx"])
def test_each_native_flavor_from_an_mlflow_directory(
    repo: Path, tmp_path: Path, iris_frame: pd.DataFrame, kind: str
) -> None:
    from rollbackkit import Registry

    answer_type = _save(kind, tmp_path / "mlmodel", iris_frame)
    out = rollbackkit("register", "m", "--model", str(tmp_path / "mlmodel"), cwd=repo)
    assert out.code == 0, out.stderr
    bundle = Registry(repo).load("m@v0.0.1")
    assert bundle.schema.feature_names == [c for c in iris_frame.columns if c != "target"]
    answers = bundle.predict(iris_frame.drop(columns=["target"]).iloc[[0, 100]])["prediction"].tolist()
    assert all(isinstance(a, answer_type) for a in answers), answers
    tag = git(repo, "tag", "-l", "--format=%(contents)", "m@v0.0.1")
    assert f'"flavor": "{kind.split("-")[0]}"' in tag


def _sklearn_dir(path: Path, frame: pd.DataFrame, rows: int) -> Path:
    """An MLflow scikit-learn model directory (skops) whose input example has ``rows`` rows."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X, y = frame.drop(columns=["target"]), frame["target"]
    model = LogisticRegression(max_iter=500).fit(X, y)
    mlflow.sklearn.save_model(model, str(path), serialization_format="skops", signature=infer_signature(X),
                              input_example=X.head(rows))  # fmt: skip
    return path


@pytest.mark.parametrize("rows", [1, 5])
def test_a_small_input_example_is_not_training_data(
    repo: Path, tmp_path: Path, iris_frame: pd.DataFrame, rows: int
) -> None:
    from rollbackkit.registry.mlflow_source import MIN_EXAMPLE_ROWS

    model = _sklearn_dir(tmp_path / "mlmodel", iris_frame, rows)
    before = state(repo)
    out = rollbackkit("register", "m", "--model", str(model), cwd=repo)
    assert_one_clean_line(out, f"{rows} row(s)", str(MIN_EXAMPLE_ROWS), "--train-data")
    assert state(repo) == before
    iris_frame.drop(columns=["target"]).to_csv(tmp_path / "train.csv", index=False)
    out = rollbackkit("register", "m", "--model", str(model), "--train-data", str(tmp_path / "train.csv"), cwd=repo)
    assert out.code == 0, out.stderr


@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink", "example"])
def test_mlmodel_files_outside_the_model_directory_are_refused(
    repo: Path, tmp_path: Path, iris_frame: pd.DataFrame, where: str
) -> None:
    import yaml

    model = _sklearn_dir(tmp_path / "mlmodel", iris_frame, 120)
    outside = tmp_path / "outside.skops"
    (model / "model.skops").rename(outside)
    meta = yaml.safe_load((model / "MLmodel").read_text())
    if where == "symlink":
        (model / "model.skops").symlink_to(outside)
    elif where == "example":
        (model / "model.skops").write_bytes(outside.read_bytes())
        (model / "input_example.json").rename(tmp_path / "example.json")
        meta["saved_input_example_info"]["artifact_path"] = "../example.json"
    else:
        meta["flavors"]["sklearn"]["pickled_model"] = "../outside.skops" if where == "dotdot" else str(outside)
    (model / "MLmodel").write_text(yaml.safe_dump(meta))
    before = state(repo)
    out = rollbackkit("register", "m", "--model", str(model), "--unsafe", cwd=repo)
    assert_one_clean_line(out, "outside the model directory")
    assert state(repo) == before


def test_credentials_in_the_tracking_uri_are_never_shown_nor_stored(
    repo: Path, mlflow_uri: str, logged: dict[str, Any]
) -> None:
    secret = mlflow_uri.replace("http://", "http://alice:s3cr3t@")
    out = rollbackkit("register", "iris", "--model", "models:/iris/1", "--tracking-uri", secret, cwd=repo)
    assert out.code == 0, out.stderr
    out = rollbackkit("import", "mlflow", "iris", "--as", "flowers", "--tracking-uri", secret, "--sync-alias",
                      "prod=champion", cwd=repo)  # fmt: skip
    assert out.code == 0, out.stderr
    assert "s3cr3t" not in out.stdout + out.stderr
    deployed = rollbackkit("deploy", "flowers@v3.0.0", "--env", "prod", cwd=repo)  # the stored link still works
    assert deployed.code == 0 and "MLflow alias champion -> iris version 3" in deployed.stdout, deployed.stderr
    rollbackkit("rollback", "flowers", "--env", "prod", cwd=repo)
    recorded = git(repo, "tag", "-l", "--format=%(contents)") + git(repo, "log", "-p", "--format=%B")
    recorded += (repo / ".rollbackkit/local/journal.jsonl").read_text()
    assert "s3cr3t" not in recorded and "alice" not in recorded and f'"tracking_uri": "{mlflow_uri}"' in recorded
    closed = f"http://bob:hunter2@127.0.0.1:{_free_port()}/prefix/?token=abc"
    out = rollbackkit("import", "mlflow", "iris", "--tracking-uri", closed, cwd=repo)
    assert_one_clean_line(out, "Cannot reach", f"{closed.split('@')[1].split('?')[0]}health")
    assert "hunter2" not in out.stderr and "token=abc" not in out.stderr and "bob" not in out.stderr


def test_import_reads_every_version_before_registering_any(
    repo: Path, mlflow_uri: str, logged: dict[str, Any], iris_frame: pd.DataFrame, tmp_path: Path
) -> None:
    import mlflow

    client = logged["client"]
    with logging_to(mlflow_uri):
        for source in (f"runs:/{logged['runs'][1]}/model", "pyfunc-only"):  # v2: a cloudpickle only
            uri = client.get_model_version("pyfunc-only", "1").source if source == "pyfunc-only" else source
            mlflow.register_model(uri, "mixed", await_registration_for=0)
    before = state(repo)
    out = rollbackkit("import", "mlflow", "mixed", "--tracking-uri", mlflow_uri, cwd=repo)
    assert_one_clean_line(out, "models:/mixed/2", "python_function", "Nothing was imported")
    assert state(repo) == before

    # A name with a quote is escaped in MLflow's filter; a version that fails while registering names
    # what was imported and that a rerun resumes.
    other = iris_frame.rename(columns={"petal_width": "petal_w"})
    with logging_to(mlflow_uri):
        mlflow.register_model(f"runs:/{logged['runs'][1]}/model", "o'brien", await_registration_for=0)
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(_fit(other), name="model", serialization_format="skops",
                                     input_example=other.drop(columns=["target"]).head(120))  # fmt: skip
        mlflow.register_model(f"runs:/{run.info.run_id}/model", "o'brien", await_registration_for=0)
    iris_frame.drop(columns=["target"]).to_csv(tmp_path / "train.csv", index=False)
    out = rollbackkit("import", "mlflow", "o'brien", "--as", "obrien", "--tracking-uri", mlflow_uri,
                      "--train-data", str(tmp_path / "train.csv"), cwd=repo)  # fmt: skip
    assert_one_clean_line(out, "obrien@v2.0.0", "imported before it: obrien@v1.0.0", "rerun")
    rolled = [json.loads(x) for x in (repo / ".rollbackkit/local/journal.jsonl").read_text().splitlines()]
    assert [e for e in rolled if e["event"] == "mlflow-import"][-1]["imported"] == ["v1.0.0"]
    out = rollbackkit("import", "mlflow", "o'brien", "--as", "obrien", "--tracking-uri", mlflow_uri, cwd=repo)
    assert out.code == 0, out.stderr
    assert "obrien@v1.0.0  <- models:/o'brien/1  skipped" in out.stdout


def _fit(frame: pd.DataFrame) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500).fit(frame.drop(columns=["target"]), frame["target"])


def test_an_onnx_model_with_a_tensor_signature_and_a_numpy_example(
    repo: Path, mlflow_uri: str, iris_frame: pd.DataFrame
) -> None:
    """``mlflow.onnx.log_model`` of a skl2onnx model, numpy input example (columns 0..3): register through models:/."""
    import mlflow
    from mlflow.models import infer_signature
    from skl2onnx import to_onnx

    X = iris_frame.drop(columns=["target"]).to_numpy().astype("float32")
    onx = to_onnx(_fit(iris_frame), X[:1], options={"zipmap": False})
    with logging_to(mlflow_uri), mlflow.start_run():
        mlflow.onnx.log_model(onx, name="model", signature=infer_signature(X), input_example=X[:150],
                              registered_model_name="iris_onnx")  # fmt: skip
    out = rollbackkit("register", "iris-onnx", "--model", "models:/iris_onnx/1", "--tracking-uri", mlflow_uri, cwd=repo)
    assert out.code == 0, out.stderr
    from rollbackkit import Registry

    bundle = Registry(repo).load("iris-onnx@v0.0.1")
    answers = bundle.predict(pd.DataFrame(X[[0, 100]], columns=bundle.schema.feature_names))["prediction"].tolist()
    assert answers == ["setosa", "virginica"], answers
