"""Model-flavor benchmarks (results to bench/results/flavors.json).

For the same trained model in each flavor, one-row and 1,000-row scoring latency (p50/p99,
warm) through four paths, measured side by side in one run:

(a) floor: the library's own predict call in this process (``predict_proba`` /
    ``Booster.predict`` / ``InferenceSession.run``) on the same rows;
(b) bundle: ``Registry(repo).load(ref).predict(frame)`` (schema check + the flavor's scorer);
(c) server: a real ``rollbackkit serve`` process on 127.0.0.1 (``POST /predict`` with
    ``{"columns", "data"}``, the default prediction log on);
(d) mlflow: ``mlflow models serve --env-manager local`` (one worker) on the same model saved
    with ``mlflow.<flavor>.save_model`` and its signature (``POST /invocations`` with
    ``{"dataframe_split": ...}``).

Pairs share one trained model: scikit-learn (skops) vs its skl2onnx conversion run by
onnxruntime; an XGBoost ``Booster`` vs the ``XGBClassifier`` wrapping it. LightGBM, CatBoost
and the Python-model bundle (a numpy softmax regression in ``model.py`` + ``.npy`` files;
MLflow's side is the same code as a models-from-code pyfunc) run alone. A flavor whose
module has not landed in ``rollbackkit.bundle.flavors`` is skipped with a note in the JSON;
one that fails is recorded with its error. MLflow's ONNX pyfunc flattens every output of a
DataFrame request (a ``[N, 3]`` probability output fails), so its ONNX requests use the
tensor ``{"inputs": [[...]]}`` format, which skips pandas altogether.

Fairness: every process runs with ``OMP_NUM_THREADS=1`` (and the BLAS equivalents), models
are trained with ``n_jobs``/``nthread``/``num_threads``/``thread_count`` = 1, the floor's
predict calls pass one thread where the library takes it, and ``rollbackkit serve`` keeps its
default ``--scoring-threads 1`` (the one exception: MLflow's CatBoost pyfunc calls
``predict`` with CatBoost's default, every core, which ``mlflow models serve`` does not let
one set; on a one-row request it hardly matters). HTTP requests are sent as pre-encoded JSON bytes over one
kept-alive connection per server, the two servers' requests interleaved so a busy
neighbour slows both alike. Data: ``make_classification`` (30 features, 3 string classes
``bronze``/``silver``/``gold``; XGBoost is trained on their sorted codes, which register
names back from the training labels).
Reported ratios: bundle/floor and server/mlflow, one-row and 1,000-row, at p50 and p99.

``python -m bench.flavors --quick [CASE ...]`` runs a few iterations of some cases (development;
written to the temp directory). The whole run takes about four minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from bench._common import BIN, new_project, write_results

THREADS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
os.environ.update(THREADS)
TOKEN = "bench-admin-token-0123456789"  # the server refuses tokens under 16 characters
FEATURES = [f"sensor_{i:02d}" for i in range(30)]
TARGET = "grade"
CLASSES = np.array(["bronze", "silver", "gold"])
BATCH = 1000
PATHS = ("floor", "bundle", "server", "mlflow")


@dataclass(frozen=True)
class Runs:
    """How many timed calls per measurement (after warm-up calls)."""

    one_local: int = 1000
    batch_local: int = 50
    one_http: int = 500
    batch_http: int = 50
    warmup: int = 20


FULL, QUICK = (
    Runs(),
    Runs(one_local=40, batch_local=5, one_http=30, batch_http=5, warmup=3),
)


@dataclass
class Case:
    """One flavor's model: how to call it natively, register it and save it for MLflow."""

    name: str
    flavor: str
    floor: Callable[[pd.DataFrame], Any]
    model: Any
    mlflow_save: Callable[[Path], None]
    note: str = ""
    mlflow_input: str = "dataframe_split"  # or "inputs": a float32 tensor (ONNX)


def dataset(rows: int, seed: int) -> pd.DataFrame:
    """Features ``sensor_00..29`` (float64) and the string label ``grade``."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=30, n_informative=12, n_redundant=6, n_classes=3, random_state=seed
    )
    frame = pd.DataFrame(x, columns=FEATURES)
    frame[TARGET] = CLASSES[y]
    return frame


# --------------------------------------------------------------------------- cases
def _signature(train: pd.DataFrame, output: Any) -> Any:
    from mlflow.models import infer_signature

    return infer_signature(train[FEATURES].head(50), output)


def sklearn_cases(train: pd.DataFrame, work: Path) -> list[Case]:
    """A random forest (skops) and its skl2onnx conversion (run by onnxruntime)."""
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=60, max_depth=10, n_jobs=1, random_state=0)
    model.fit(train[FEATURES], train[TARGET])

    def save_sklearn(path: Path) -> None:
        import mlflow.sklearn

        signature = _signature(train, model.predict(train[FEATURES].head(50)))
        mlflow.sklearn.save_model(
            model,
            path,
            serialization_format="skops",
            signature=signature,
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )

    cases = [Case("sklearn", "sklearn", model.predict_proba, model, save_sklearn)]
    from skl2onnx import to_onnx

    onx = to_onnx(model, train[FEATURES].to_numpy("float32")[:1], options={id(model): {"zipmap": False}})
    onnx_file = work / "forest.onnx"
    onnx_file.write_bytes(onx.SerializeToString())
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def onnx_floor(frame: pd.DataFrame) -> Any:
        return session.run(None, {input_name: frame.to_numpy("float32")})

    def save_onnx(path: Path) -> None:
        import mlflow.onnx
        from mlflow.models import infer_signature

        signature = infer_signature(
            train[FEATURES].head(50).to_numpy("float32"), onnx_floor(train[FEATURES].head(50))[1]
        )
        mlflow.onnx.save_model(onx, path, signature=signature)

    note = (
        "skl2onnx conversion of the forest (zipmap off); MLflow's ONNX pyfunc flattens each output of a "
        "DataFrame request (a [N, 3] probability output fails), so its requests use the tensor 'inputs' format"
    )
    cases.append(Case("onnx", "onnx", onnx_floor, onnx_file, save_onnx, note=note, mlflow_input="inputs"))
    return cases


def xgboost_cases(train: pd.DataFrame) -> list[Case]:
    """One XGBoost model as its native Booster and as the XGBClassifier wrapper."""
    import xgboost as xgb

    # the wrapper needs 0..C-1: the sorted labels' codes, so register names them from the training labels
    codes = pd.Series(pd.Categorical(train[TARGET], categories=sorted(CLASSES)).codes, index=train.index)
    wrapper = xgb.XGBClassifier(n_estimators=80, max_depth=6, learning_rate=0.2, nthread=1, random_state=0)
    wrapper.fit(train[FEATURES], codes)
    booster = wrapper.get_booster()

    def booster_floor(frame: pd.DataFrame) -> Any:
        return booster.predict(xgb.DMatrix(frame, nthread=1))

    def save(model: Any) -> Callable[[Path], None]:
        def saver(path: Path) -> None:
            import mlflow.xgboost

            out = model.predict(xgb.DMatrix(train[FEATURES].head(50))) if model is booster else None
            out = out if out is not None else model.predict(train[FEATURES].head(50))
            mlflow.xgboost.save_model(model, path, signature=_signature(train, out), model_format="json")

        return saver

    return [
        Case("xgboost-booster", "xgboost", booster_floor, booster, save(booster)),
        Case("xgboost-wrapper", "xgboost", wrapper.predict_proba, wrapper, save(wrapper)),
    ]


def lightgbm_cases(train: pd.DataFrame) -> list[Case]:
    """An LGBMClassifier on the string labels."""
    import lightgbm as lgb

    model = lgb.LGBMClassifier(n_estimators=80, num_leaves=31, num_threads=1, verbose=-1, random_state=0)
    model.fit(train[FEATURES], train[TARGET])

    def save(path: Path) -> None:
        import mlflow.lightgbm

        mlflow.lightgbm.save_model(model, path, signature=_signature(train, model.predict(train[FEATURES].head(50))))

    return [Case("lightgbm", "lightgbm", model.predict_proba, model, save)]


def catboost_cases(train: pd.DataFrame) -> list[Case]:
    """A CatBoostClassifier on the string labels."""
    import catboost

    model = catboost.CatBoostClassifier(
        iterations=80, depth=6, thread_count=1, verbose=False, random_seed=0, allow_writing_files=False
    )
    model.fit(train[FEATURES], train[TARGET])

    def floor(frame: pd.DataFrame) -> Any:
        return model.predict_proba(frame, thread_count=1)

    def save(path: Path) -> None:
        import mlflow.catboost

        mlflow.catboost.save_model(model, path, signature=_signature(train, model.predict(train[FEATURES].head(50))))

    return [Case("catboost", "catboost", floor, model, save)]


PYTHON_MODEL = """\
import io

import numpy as np

CLASSES = {classes!r}


def load(artifacts):
    return np.load(io.BytesIO(artifacts["coef.npy"])), np.load(io.BytesIO(artifacts["intercept.npy"]))


def predict_proba(state, frame):
    coef, intercept = state
    z = frame.to_numpy(dtype="float64") @ coef.T + intercept
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict(state, frame):
    return np.asarray(CLASSES, dtype=object)[predict_proba(state, frame).argmax(axis=1)]
"""

MLFLOW_PYFUNC = """\
import io

import mlflow.pyfunc
import numpy as np


class Softmax(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.coef = np.load(context.artifacts["coef"])
        self.intercept = np.load(context.artifacts["intercept"])
        self.classes = np.asarray({classes!r}, dtype=object)

    def predict(self, context, model_input, params=None):
        z = model_input.to_numpy(dtype="float64") @ self.coef.T + self.intercept
        return self.classes[z.argmax(axis=1)]


mlflow.models.set_model(Softmax())
"""


def python_cases(train: pd.DataFrame, work: Path) -> list[Case]:
    """A softmax regression in numpy, as a ``model.py`` bundle and an MLflow models-from-code pyfunc."""
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(max_iter=2000).fit(train[FEATURES], train[TARGET])
    classes = [str(c) for c in fitted.classes_]
    folder = work / "softmax"
    folder.mkdir()
    (folder / "model.py").write_text(PYTHON_MODEL.format(classes=classes))
    np.save(folder / "coef.npy", fitted.coef_)
    np.save(folder / "intercept.npy", fitted.intercept_)

    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_softmax", folder / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = module.load({f.name: f.read_bytes() for f in folder.glob("*.npy")})

    def floor(frame: pd.DataFrame) -> Any:
        return module.predict_proba(state, frame)

    def save(path: Path) -> None:
        import mlflow.pyfunc

        code = work / "softmax_pyfunc.py"
        code.write_text(MLFLOW_PYFUNC.format(classes=classes))
        artifacts = {"coef": str(folder / "coef.npy"), "intercept": str(folder / "intercept.npy")}
        signature = _signature(train, fitted.predict(train[FEATURES].head(50)))
        mlflow.pyfunc.save_model(path, python_model=str(code), artifacts=artifacts, signature=signature)

    note = "softmax regression in numpy (model.py + .npy); floor: its model.py predict_proba called directly"
    return [Case("python-model", "python", floor, folder, save, note=note)]


def all_cases(train: pd.DataFrame, work: Path) -> tuple[list[Case], dict[str, str]]:
    """The cases whose flavor has landed, and a note for each skipped one."""
    from rollbackkit.bundle import flavors

    landed = set(flavors.names())
    builders: list[tuple[list[str], Callable[[], list[Case]]]] = [
        (["sklearn", "onnx"], lambda: sklearn_cases(train, work)),
        (["xgboost-booster", "xgboost-wrapper"], lambda: xgboost_cases(train)),
        (["lightgbm"], lambda: lightgbm_cases(train)),
        (["catboost"], lambda: catboost_cases(train)),
        (["python-model"], lambda: python_cases(train, work)),
    ]
    cases, skipped = [], {}
    for _, build in builders:
        for case in build():
            if case.flavor in landed:
                cases.append(case)
            else:
                skipped[case.name] = f"the {case.flavor} flavor has not landed in rollbackkit.bundle.flavors"
    return cases, skipped


# --------------------------------------------------------------------------- project and servers
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the group this benchmark started (mlflow forks uvicorn)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait(process: subprocess.Popen[bytes], log: Path, ready: Callable[[], str | None], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        url = ready()
        if url is not None:
            return url
        time.sleep(0.1)
    raise RuntimeError(f"server did not start in {timeout} s:\n{log.read_text()[-3000:]}")


@dataclass
class Launched:
    """A server process that is starting: its log and how to tell it is ready (its URL)."""

    process: subprocess.Popen[bytes]
    log: Path
    ready: Callable[[], str | None]


def launch_rollbackkit(repo: Path, name: str, *args: str) -> Launched:
    """Start ``rollbackkit serve NAME --env prod ARGS`` on a free loopback port."""
    record = repo / ".rollbackkit/local/servers" / f"{name}-prod.json"
    log = repo.parent / f"serve-{name}.log"
    command = ["serve", name, "--env", "prod", "--port", "0", "--watchdog-interval", "3600", "--no-runbook", *args]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "rollbackkit"), *command],
            cwd=repo,
            env={**os.environ, "ROLLBACKKIT_ADMIN_TOKEN": TOKEN},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready() -> str | None:
        try:
            url = str(json.loads(record.read_text())["url"])
            return url if httpx.get(f"{url}/healthz", timeout=2).status_code == 200 else None
        except (OSError, ValueError, KeyError, httpx.HTTPError):  # not written yet, or being written
            return None

    return Launched(process, log, ready)


def launch_mlflow(model_dir: Path) -> Launched:
    """Start ``mlflow models serve -m DIR --env-manager local`` (one worker) on a free loopback port."""
    port = _free_port()
    log = model_dir.parent / f"mlflow-{model_dir.name}.log"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # it shells out to uvicorn
    command = [
        "models",
        "serve",
        "-m",
        str(model_dir),
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), *command], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> str | None:
        try:
            return url if httpx.get(f"{url}/ping", timeout=2).status_code == 200 else None
        except httpx.HTTPError:
            return None

    return Launched(process, log, ready)


@contextmanager
def serving(*launched: Launched) -> Iterator[list[str]]:
    """Wait until every launched server answers (they start side by side); stop them all after."""
    try:
        yield [_wait(one.process, one.log, one.ready) for one in launched]
    finally:
        for one in launched:
            _stop(one.process)


# --------------------------------------------------------------------------- timing
def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p99 (ms) and the number of samples."""
    values = np.asarray(samples)
    return {
        "p50": round(float(np.quantile(values, 0.5)), 4),
        "p99": round(float(np.quantile(values, 0.99)), 4),
        "n": len(samples),
    }


def time_calls(call: Callable[[Any], Any], inputs: list[Any], runs: int, warmup: int) -> list[float]:
    """Milliseconds of ``call(inputs[i % len])`` for ``runs`` calls after ``warmup`` calls."""
    for i in range(warmup):
        call(inputs[i % len(inputs)])
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        call(inputs[i % len(inputs)])
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def time_pair(
    calls: dict[str, Callable[[Any], Any]], inputs: dict[str, list[Any]], runs: int, warmup: int
) -> dict[str, list[float]]:
    """Like :func:`time_calls` for several callers, their calls interleaved one by one."""
    for name, call in calls.items():
        for i in range(warmup):
            call(inputs[name][i % len(inputs[name])])
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(runs):
        for name, call in calls.items():
            body = inputs[name][i % len(inputs[name])]
            started = time.perf_counter()
            call(body)
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def _poster(http: httpx.Client, url: str) -> Callable[[bytes], Any]:
    headers = {"content-type": "application/json"}

    def post(body: bytes) -> Any:
        answer = http.post(url, content=body, headers=headers)
        if answer.status_code != 200:
            raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[-1500:]}")
        return answer

    return post


def bodies(frames: list[pd.DataFrame], mlflow_input: str) -> tuple[list[bytes], list[bytes]]:
    """The same rows as rollbackkit's ``{"columns", "data"}`` and MLflow's ``dataframe_split`` (or
    tensor ``inputs``) bodies."""
    ours, theirs = [], []
    for frame in frames:
        split = {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}
        ours.append(json.dumps(split).encode())
        theirs.append(
            json.dumps(
                {"dataframe_split": split} if mlflow_input == "dataframe_split" else {"inputs": split["data"]}
            ).encode()
        )
    return ours, theirs


# --------------------------------------------------------------------------- one case
def measure(case: Case, repo: Path, work: Path, runs: Runs, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """Register, deploy and serve ``case`` both ways; time the four paths."""
    from rollbackkit import Registry
    from rollbackkit.ops.traffic import deploy

    registry = Registry(repo)
    registry.register(case.name, case.model, train[[*FEATURES, TARGET]], target=TARGET, version="v1.0.0")
    deploy(repo, f"{case.name}@v1.0.0", "prod", reason="bench")
    bundle = registry.load(f"{case.name}@v1.0.0")
    mlflow_dir = work / f"mlflow-{case.name}"
    with warnings.catch_warnings():  # MLflow's advice on input examples and type hints
        warnings.simplefilter("ignore")
        case.mlflow_save(mlflow_dir)

    ones = [test.iloc[[i]][FEATURES] for i in range(200)]
    batches = [test.iloc[i * BATCH : (i + 1) * BATCH][FEATURES] for i in range(len(test) // BATCH)]
    sizes = {
        "one_row": (ones, runs.one_local, runs.one_http),
        "rows_1000": (batches, runs.batch_local, runs.batch_http),
    }
    figures: dict[str, dict[str, Any]] = {}
    for size, (frames, n_local, _) in sizes.items():
        paths = {"floor": case.floor, "bundle": bundle.predict}
        local = time_pair(paths, {"floor": frames, "bundle": frames}, n_local, runs.warmup)
        figures[size] = {name: percentiles(samples) for name, samples in local.items()}
    launched = serving(launch_mlflow(mlflow_dir), launch_rollbackkit(repo, case.name))
    with launched as (mlflow_url, url), httpx.Client(timeout=120) as ours, httpx.Client(timeout=120) as theirs:
        posts = {"server": _poster(ours, f"{url}/predict"), "mlflow": _poster(theirs, f"{mlflow_url}/invocations")}
        for size, (frames, _, n_http) in sizes.items():
            server_bodies, mlflow_bodies = bodies(frames, case.mlflow_input)
            http = time_pair(posts, {"server": server_bodies, "mlflow": mlflow_bodies}, n_http, runs.warmup)
            figures[size].update({name: percentiles(samples) for name, samples in http.items()})
    answer = bundle.predict(ones[0])["prediction"].iloc[0]
    result: dict[str, Any] = {"answers": type(answer).__name__, **({"note": case.note} if case.note else {})}
    for size, table in figures.items():
        table["ratios"] = {
            f"{num}/{den}_{q}": round(table[num][q] / table[den][q], 3)
            for num, den in (("bundle", "floor"), ("server", "mlflow"))
            for q in ("p50", "p99")
        }
        result[size] = table
    return result


def summary(results: dict[str, Any]) -> dict[str, dict[str, str]]:
    """One line per flavor and size: p50 (p99) ms of the four paths, and server/mlflow at p50."""
    lines: dict[str, dict[str, str]] = {}
    for name, result in results.items():
        if "error" in result:
            continue
        lines[name] = {}
        for size in ("one_row", "rows_1000"):
            table = result[size]
            paths = " / ".join(f"{table[p]['p50']:.2f} ({table[p]['p99']:.1f})" for p in PATHS)
            lines[name][size] = f"{paths} ms; server/mlflow p50 {table['ratios']['server/mlflow_p50']:.2f}"
    return lines


def versions() -> dict[str, str]:
    """Versions of the libraries measured (by import name)."""
    import importlib

    names = ("sklearn", "skops", "onnxruntime", "skl2onnx", "xgboost", "lightgbm", "catboost", "mlflow", "pandas")
    return {name: str(getattr(importlib.import_module(name), "__version__", "?")) for name in names}


def main(argv: list[str] | None = None) -> Path:
    """Run the flavor benchmarks and write bench/results/flavors.json.

    ``argv``: ``--quick`` (a few runs, written to the temp directory instead) and flavor case
    names to run only those (``sklearn onnx``).
    """
    args = argv or []
    quick = "--quick" in args
    only = [a for a in args if not a.startswith("--")]
    runs = QUICK if quick else FULL
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rbk-flavors-") as tmp:
        work = Path(tmp)
        rows = dataset(4000 + 5 * BATCH, seed=18)  # one draw: make_classification's clusters depend on the seed
        train, test = rows.iloc[:4000], rows.iloc[4000:].reset_index(drop=True)
        repo = new_project(work / "project")
        cases, skipped = all_cases(train, work)
        results = {}
        for case in cases:
            if only and case.name not in only:
                continue
            try:
                results[case.name] = measure(case, repo, work, runs, train, test)
            except Exception as exc:  # a flavor that fails is a finding, not the end of the run
                results[case.name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                print(f"{case.name}: {results[case.name]['error']}", file=sys.stderr)
                continue
            for size in ("one_row", "rows_1000"):
                table = results[case.name][size]
                p50s = " ".join(f"{path} {table[path]['p50']:.2f}" for path in PATHS)
                print(f"{case.name} {size} p50 ms: {p50s}", file=sys.stderr)
    figures = {
        "quick": quick,
        "paths": "floor / bundle / server / mlflow: p50 (p99) ms, see the module docstring",
        "summary": summary(results),
        "libraries": versions(),
        "threads": "OMP_NUM_THREADS=1, models trained with one thread, rollbackkit serve --scoring-threads 1",
        "data": "make_classification, 30 float features, 3 string classes (XGBoost trained on their codes)",
        "flavors": results,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if quick:
        out = Path(tempfile.gettempdir()) / "rbk-flavors-quick.json"
        out.write_text(json.dumps(figures, indent=2) + "\n")
        return out
    return write_results("flavors", figures)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
