"""MLflow as a source: read a model MLflow logged, through its native flavor file.

``register --model`` accepts ``models:/NAME/3``, ``models:/NAME@alias``, ``runs:/RUN/PATH``
or a local MLflow model directory (one holding an ``MLmodel`` file). The artifacts are
downloaded (:func:`mlflow.artifacts.download_artifacts`, tracking URI from
``--tracking-uri`` or ``MLFLOW_TRACKING_URI``), ``MLmodel`` is read, and the model's
native file goes to rollbackkit's flavor of the same library: scikit-learn saved with
skops, XGBoost ``.ubj``/``.json``, LightGBM (text, or its skops wrapper file), CatBoost
``.cbm``, ONNX. The signature's input names are the model's columns and its types the
columns' dtypes; the input example stands in for training data when none is given and
it has at least :data:`MIN_EXAMPLE_ROWS` rows (a smaller one is refused: pass ``--train-data``).
A tracking URI's credentials (``http://user:password@host``) and query are never printed
or recorded (:func:`shown`); keep them in ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN``.
Nothing MLflow pickled is read without ``--unsafe``, and a ``python_function`` model
(cloudpickle) never is. The source is recorded in the version's tag
(:data:`TRAILER_SOURCE`), so ``mlflow sync`` and ``import`` find the MLflow version a
rollbackkit version came from. MLflow is the optional extra ``rollbackkit[mlflow]``,
imported only here and only when used.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rollbackkit.errors import InvalidInput, MlflowError
from rollbackkit.registry.mlflow_flavors import NATIVE, contained, native
from rollbackkit.registry.mlflow_server import client, library, name_filter, scrub, shown

SCHEMES = ("models:/", "runs:/")
TRAILER_SOURCE = "Rollbackkit-Source"
# The fewest input-example rows that stand in for training data: the example sets the columns'
# ranges (rows outside them are refused as out_of_range) and the golden sample; MLflow's
# autolog logs 5 rows, too few for either.
MIN_EXAMPLE_ROWS = 100


@dataclass(frozen=True)
class MlflowOrigin:
    """Where a registered version came from in MLflow (recorded in its tag, typed).

    Attributes:
        uri: What was registered: ``models:/NAME/3``, ``runs:/RUN/PATH`` or a directory.
        model: The MLflow registered model's name (``""`` for a run or a directory).
        version: The MLflow model version (None for a run or a directory).
        run_id: The MLflow run that logged the model (``""`` when unknown).
        mlflow_version: The MLflow version that saved the model (``MLmodel``).
        flavor: The MLflow flavor it was read through (``sklearn``, ``xgboost``, ...).
        tracking_uri: The tracking server it was read from (``""``: a local directory).
    """

    uri: str
    model: str = ""
    version: int | None = None
    run_id: str = ""
    mlflow_version: str = ""
    flavor: str = ""
    tracking_uri: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def trailer(self) -> str:
        """The tag trailer line that records it."""
        return f"{TRAILER_SOURCE}: {json.dumps({'kind': 'mlflow', **self.to_dict()}, sort_keys=True)}"

    @classmethod
    def from_message(cls, message: str) -> MlflowOrigin | None:
        """The origin a tag message records (None: not from MLflow, or unreadable)."""
        for line in message.splitlines():
            if not line.startswith(f"{TRAILER_SOURCE}: "):
                continue
            try:
                data = json.loads(line.partition(": ")[2])
            except json.JSONDecodeError:
                return None
            if not isinstance(data, dict) or data.pop("kind", None) != "mlflow":
                return None
            try:
                return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
            except TypeError:
                return None
        return None


@dataclass(frozen=True)
class Fetched:
    """An MLflow model made ready for the bundle builder.

    Attributes:
        model: The native model file (or, for a LightGBM skops file, the model object).
        flavor: The rollbackkit flavor that stores it.
        features: The signature's input names, in order (None: no named signature).
        example: The input example, in the signature's dtypes (None: none was logged).
        origin: Where it came from.
    """

    model: Path | Any
    flavor: str
    features: list[str] | None
    example: pd.DataFrame | None
    origin: MlflowOrigin


def is_source(model: Any) -> bool:
    """Whether ``model`` names an MLflow model: a ``models:/``/``runs:/`` URI or a directory with ``MLmodel``."""
    if isinstance(model, str) and model.startswith(SCHEMES):
        return True
    return isinstance(model, str | Path) and (Path(model) / "MLmodel").is_file()


def training_example(fetched: Fetched) -> pd.DataFrame:
    """The input example as training data; refused when missing or under :data:`MIN_EXAMPLE_ROWS` rows.

    Raises:
        InvalidInput: No example, or one too small to set the columns' ranges and golden sample.
    """
    rows = 0 if fetched.example is None else len(fetched.example)
    if fetched.example is None:
        raise InvalidInput(
            f"{fetched.origin.uri} logged no input example, and no --train-data was given.",
            "Pass --train-data with the model's input columns, or log the model with input_example=.",
        )
    if rows < MIN_EXAMPLE_ROWS:
        raise InvalidInput(
            f"{fetched.origin.uri}'s input example has {rows} row(s): too few to stand in for training data "
            f"(at least {MIN_EXAMPLE_ROWS}; it sets the columns' ranges, and rows outside them are refused).",
            "Pass --train-data with the data the model was trained on (.csv or .parquet).",
        )
    return fetched.example


def model_version(mlflow_client: Any, name: str, version: int | str) -> Any:
    """MLflow's ``ModelVersion`` ``name``/``version``, or one line saying which versions exist."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise _missing(mlflow_client, name, f"models:/{name}/{version}", exc) from exc


def _missing(mlflow_client: Any, name: str, uri: str, exc: Exception) -> MlflowError:
    from mlflow.exceptions import MlflowException

    where = shown(mlflow_client.tracking_uri) if hasattr(mlflow_client, "tracking_uri") else "the tracking server"
    try:
        found = sorted(int(v.version) for v in mlflow_client.search_model_versions(name_filter(name)))
    except (MlflowException, InvalidInput):
        found = []
    hint = (
        f"{name} has version(s) {', '.join(map(str, found))}."
        if found
        else f"Check the name: no registered model {name!r} has versions there."
    )
    first = scrub(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
    return MlflowError(f"{uri} does not exist on {where} ({first[:160]}).", hint)


def fetch(
    uri: str | Path, tracking_uri: str | None, dest: Path, trust: tuple[str, ...] = (), unsafe: bool = False
) -> Fetched:
    """Download (or read) an MLflow model into ``dest`` and take it through its native flavor.

    Raises:
        MissingLibrary: MLflow is not installed.
        MlflowError: The tracking server cannot be reached, or the model version does not exist.
        InvalidInput: The model has no flavor rollbackkit reads.
        UntrustedModel: Its only flavor is a pickle (``python_function``/cloudpickle), or a
            pickled flavor without ``unsafe``.
    """
    library()
    text = str(uri)
    if not text.startswith(SCHEMES):
        return _read(Path(uri), MlflowOrigin(uri=str(Path(uri).resolve())), trust, unsafe)
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    found = client(tracking_uri)
    where = shown(found.tracking_uri)
    origin = MlflowOrigin(uri=text, tracking_uri=where)
    source = text
    name, _, rest = text.removeprefix("models:/").partition("/")
    if text.startswith("models:/") and (rest.strip("/") or "@" in name):  # else: an MLflow 3 logged model id
        name, _, alias = name.partition("@")
        try:
            mv = found.get_model_version_by_alias(name, alias) if alias else None
        except MlflowException as exc:
            raise _missing(found, name, text, exc) from exc
        mv = mv or model_version(found, name, rest.strip("/"))
        origin = MlflowOrigin(uri=f"models:/{name}/{mv.version}", model=name, version=int(mv.version),
                              run_id=mv.run_id or "", tracking_uri=where)  # fmt: skip
        text = origin.uri
        source = found.get_model_version_download_uri(name, str(mv.version))
    elif text.startswith("models:/"):
        source = _logged_model_location(found, text)
    elif text.startswith("runs:/"):
        origin = MlflowOrigin(uri=text, run_id=text.removeprefix("runs:/").partition("/")[0], tracking_uri=where)
        source = _run_location(found, text)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with _no_progress_bar():  # MLflow resolves a models:/ URI in its default registry (./mlflow.db): not here
            local = download_artifacts(
                artifact_uri=source,
                dst_path=str(dest),
                tracking_uri=found.tracking_uri,
                registry_uri=found.tracking_uri,
            )
    except MlflowException as exc:
        raise MlflowError(
            f"Cannot download {text} from {where}: {scrub(str(exc).splitlines()[0])[:200]}.",
            "Check the URI (models:/NAME/N, models:/NAME@alias, runs:/RUN/PATH, or a logged model's models:/m-ID) "
            "and that the artifact store is reachable from here.",
        ) from exc
    return _read(Path(local), origin, trust, unsafe)


def _logged_model_location(mlflow_client: Any, uri: str) -> str:
    """Where MLflow 3 logged model ``models:/m-ID`` keeps its artifacts, asked of ``mlflow_client``'s server."""
    from mlflow.exceptions import MlflowException

    model_id = uri.removeprefix("models:/").strip("/")
    try:
        return str(mlflow_client.get_logged_model(model_id).artifact_location)
    except MlflowException as exc:
        raise MlflowError(
            f"{uri} does not exist on {shown(mlflow_client.tracking_uri)} ({scrub(str(exc).splitlines()[0])[:160]}).",
            "Check the URI: models:/NAME/N, models:/NAME@alias, runs:/RUN/PATH, or a logged model's models:/m-ID.",
        ) from exc


def _run_location(mlflow_client: Any, uri: str) -> str:
    """Where ``runs:/RUN/PATH`` is stored: the model the run logged as PATH (MLflow 3), else the run's artifacts.

    Resolved here, through ``mlflow_client``'s server: MLflow's own resolution asks its default
    registry (``./mlflow.db`` when no ``MLFLOW_TRACKING_URI`` is set) for a logged model.
    """
    from mlflow.exceptions import MlflowException

    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    head, _, rest = path.strip("/").partition("/")
    try:
        run = mlflow_client.get_run(run_id)
        logged = (
            mlflow_client.search_logged_models(
                experiment_ids=[run.info.experiment_id], filter_string=f"name = '{head}'", max_results=100
            )
            if head and "'" not in head
            else []
        )
    except MlflowException as exc:
        raise MlflowError(
            f"{uri} does not exist on {shown(mlflow_client.tracking_uri)} ({scrub(str(exc).splitlines()[0])[:160]}).",
            "Check the run id (mlflow's Runs page) and the path the model was logged under (name=).",
        ) from exc
    model = next((m for m in logged if m.source_run_id == run_id), None)
    if model is not None:
        return str(model.artifact_location).rstrip("/") + (f"/{rest}" if rest else "")
    return str(run.info.artifact_uri).rstrip("/") + (f"/{path.strip('/')}" if path.strip("/") else "")


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a progress bar on the terminal while downloading: not in rollbackkit's output."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _read(directory: Path, origin: MlflowOrigin, trust: tuple[str, ...], unsafe: bool) -> Fetched:
    from mlflow.models import Model

    where = origin.uri
    if not (directory / "MLmodel").is_file():
        raise InvalidInput(f"{where} holds no MLmodel file.", "Point --model at an MLflow model (its MLmodel folder).")
    try:
        meta = Model.load(str(directory / "MLmodel"))
    except Exception as exc:  # MLflow raises several types for a malformed file
        raise InvalidInput(f"{where}: its MLmodel file cannot be read ({exc}).", "Log the model again.") from exc
    flavor_name, model = native(directory, meta.flavors or {}, where, trust, unsafe)
    origin = MlflowOrigin(
        **{
            **origin.to_dict(),
            "run_id": origin.run_id or (meta.run_id or ""),
            "mlflow_version": meta.mlflow_version or "",
            "flavor": next(f for f in NATIVE if f in (meta.flavors or {})),
        }
    )
    features, dtypes = _signature(meta)
    return Fetched(model, flavor_name, features, _example(meta, directory, features, dtypes, where), origin)


def _signature(meta: Any) -> tuple[list[str] | None, dict[str, Any]]:
    """The signature's input names and their dtypes (None/{} for a tensor or missing signature)."""
    sig = meta.signature
    if sig is None or sig.inputs is None or not sig.inputs.has_input_names():
        return None, {}
    dtypes: dict[str, Any] = {}
    for spec in sig.inputs.inputs:
        try:
            dtypes[spec.name] = spec.type.to_pandas()
        except (AttributeError, TypeError, ValueError):
            continue
    return [str(n) for n in sig.inputs.input_names()], dtypes


def _example(
    meta: Any, directory: Path, features: list[str] | None, dtypes: dict[str, Any], where: str
) -> pd.DataFrame | None:
    """The input example as a frame in the signature's columns and dtypes (None: none logged)."""
    info = getattr(meta, "saved_input_example_info", None) or {}
    if info.get("artifact_path"):
        contained(directory, str(info["artifact_path"]), where, "its input example")
    try:
        example = meta.load_input_example(str(directory))
    except Exception as exc:  # MLflow raises several types for an unreadable example
        raise InvalidInput(f"{where}: its input example cannot be read ({exc}).", "Pass --train-data.") from exc
    if example is None:
        return None
    frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
    if features is not None and set(features) <= set(map(str, frame.columns)):
        frame = frame[features]
    for column, dtype in dtypes.items():
        if column in frame.columns:
            try:
                frame[column] = frame[column].astype(dtype)
            except (TypeError, ValueError):
                continue
    return frame.reset_index(drop=True)
