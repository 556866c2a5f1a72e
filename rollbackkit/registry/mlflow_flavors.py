"""Which rollbackkit flavor reads an MLflow model, from its ``MLmodel`` flavors (never a pickle).

MLflow names each flavor it saved and the file that holds it. The native ones map by name
to rollbackkit's flavor of the same library, most specific first: XGBoost (``model.ubj`` /
``.json``), LightGBM (a Booster's text ``model.lgb``, or the wrapper MLflow saved with skops,
loaded here trusting only :data:`LIGHTGBM_SKOPS_TYPES`, the reviewed scikit-learn types and
``--trust``, then stored as native text), CatBoost (``model.cb``), ONNX (``model.onnx``),
scikit-learn (``model.skops``): :data:`NATIVE`, read from rollbackkit's flavor registry (every
safe flavor but ``python``: MLflow's ``python_function`` is a cloudpickle). A flavor MLflow
pickled needs ``--unsafe`` (rollbackkit's ``pickle`` flavor); a ``python_function``-only model
(cloudpickle) is always refused. The file ``MLmodel`` names must lie inside the model
directory (no absolute path, no ``..``, no symlink out of it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollbackkit.bundle import flavors
from rollbackkit.errors import InvalidInput, UntrustedModel

# The types MLflow's LightGBM flavor writes into a skops file (its own trusted list), reviewed:
# the wrapper classes and the Booster, which skops rebuilds from the model's text.
LIGHTGBM_SKOPS_TYPES = frozenset(
    {
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.basic.Booster",
        "collections.OrderedDict",
    }
)
# MLflow flavor names rollbackkit reads, most specific first: our safe flavors, which MLflow names alike
# (our python flavor is not MLflow's python_function, a cloudpickle).
NATIVE = tuple(name for name in flavors.names() if name != "python" and flavors.get(name).safe)


def _reads() -> str:
    """``sklearn, xgboost, ... and onnx``: the MLflow flavors read, for messages."""
    return f"{', '.join(NATIVE[:-1])} and {NATIVE[-1]}"


def contained(directory: Path, relative: str, where: str, what: str) -> Path:
    """``directory / relative``, refused unless it resolves inside ``directory`` (symlinks followed).

    Raises:
        InvalidInput: ``relative`` is absolute, climbs out with ``..``, or is a symlink out.
    """
    root = directory.resolve()
    path = directory / relative
    if Path(relative).is_absolute() or not path.resolve().is_relative_to(root):
        raise InvalidInput(
            f"{where}: its MLmodel names {what} {relative!r}, outside the model directory.",
            "Log the model again: MLmodel's files must lie inside its directory.",
        )
    return path


def native(
    directory: Path, conf: dict[str, Any], where: str, trust: tuple[str, ...], unsafe: bool
) -> tuple[str, Path | Any]:
    """Our flavor and the native model file (or object) of an MLflow model's flavors."""
    present = [f for f in NATIVE if f in conf]
    if not present:
        if set(conf) <= {"python_function"}:
            raise UntrustedModel(
                f"{where} is a python_function model only (cloudpickle): loading it runs any code it holds; "
                "rollbackkit refuses it.",
                f"Log it with a native flavor (mlflow.{'/'.join(NATIVE)}), or register a "
                "rollbackkit Python model (a directory with a model.py).",
            )
        raise InvalidInput(
            f"{where} has flavor(s) {', '.join(sorted(conf))}; rollbackkit reads {_reads()}.",
            "Convert the model to ONNX and log it with mlflow.onnx, or register it as a rollbackkit Python model.",
        )
    flavor = present[0]
    spec = conf[flavor]
    file = contained(directory, str(spec.get("pickled_model") or spec.get("data") or ""), where, "its model file")
    fmt = str(spec.get("serialization_format") or "")
    if not file.is_file():
        raise InvalidInput(f"{where}: its {flavor} model file {file.name} is missing.", "Log the model again.")
    if fmt in ("pickle", "cloudpickle"):
        if not unsafe:
            raise UntrustedModel(
                f"{where} is a {flavor} model saved with {fmt}: loading it runs any code it holds.",
                "Log it with serialization_format='skops', or pass --unsafe if you trust it.",
            )
        return "pickle", file
    if flavor == "lightgbm" and file.suffix == ".skops":  # a Booster is saved as text (model.lgb) whatever the format
        return "lightgbm", _lightgbm_skops(file, where, trust)
    return flavor, file


def _lightgbm_skops(file: Path, where: str, trust: tuple[str, ...]) -> Any:
    """Load a LightGBM wrapper MLflow saved with skops, trusting only reviewed types and ``trust``."""
    from rollbackkit.bundle.flavors import get

    sio = get("sklearn").library_module()
    from rollbackkit.bundle.flavors.scikit_learn import REVIEWED_TYPES

    data = file.read_bytes()
    try:
        needed = sorted(sio.get_untrusted_types(data=data))
    except Exception as exc:  # skops raises many types for a damaged file
        raise InvalidInput(f"{where}: its LightGBM skops file cannot be read ({exc}).", "Log it again.") from exc
    unknown = [t for t in needed if t not in LIGHTGBM_SKOPS_TYPES | REVIEWED_TYPES and t not in trust]
    if unknown:
        raise UntrustedModel(
            f"{where}: its LightGBM skops file needs types that are not trusted: {', '.join(unknown)}.",
            "Inspect them, then pass each with --trust TYPE if you trust this model.",
        )
    try:
        return sio.loads(data, trusted=needed)
    except Exception as exc:  # skops raises many types for a damaged file
        raise InvalidInput(f"{where}: its LightGBM skops file cannot be loaded ({exc}).", "Log it again.") from exc
