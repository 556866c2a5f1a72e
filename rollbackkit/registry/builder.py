"""Build a bundle directory from user inputs: model, data, code and configs -> manifest.

Everything is written into a scratch directory first; the registry moves it into place only
once every component exists and is hashed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rollbackkit.bundle import flavors, runtime
from rollbackkit.bundle.artifacts import (
    USER_CODE_ERRORS,
    Preprocess,
    describe_error,
    identity,
    load_preprocess,
    validate_trust,
)
from rollbackkit.bundle.flavors.base import Scorer, Stored, target_labels
from rollbackkit.bundle.frames import prefixed, read_frame, with_prefix
from rollbackkit.bundle.manifest import MANIFEST_FILE, Component, Manifest, RawInputs, Registration, md5_file
from rollbackkit.bundle.model_inputs import model_features
from rollbackkit.bundle.schema import Schema, infer_schema
from rollbackkit.errors import InvalidInput, InvalidPath, RollbackkitError
from rollbackkit.registry.answers import (
    NULL_PROBE_ROWS,
    check_label_order,
    check_probabilities,
    integer_classes,
    null_acceptance,
    with_scored_nulls,
)
from rollbackkit.registry.default_gates import BASE_GATES, MIN_SAMPLES, default_gates
from rollbackkit.registry.raw_inputs import (
    apply_preprocess,
    check_chosen,
    declared_inputs,
    input_columns,
    inputs_of,
    needed_columns,
)

REFERENCE_ROWS = 50_000
GOLDEN_ROWS = 64
DEFAULT_SERVING: dict[str, Any] = {"predict": "auto", "batch_size": 1024, "timeout_ms": 1000, "warmup": "golden"}
DEFAULT_GATES: dict[str, Any] = {"min_samples": MIN_SAMPLES, "gates": BASE_GATES}
"""The gates every version registered without ``--gates`` gets; it also gets gates per segment
and on the tail, which depend on its data (:func:`rollbackkit.registry.default_gates.default_gates`)."""


def build_bundle(
    out: Path,
    *,
    name: str,
    version: str,
    model: Any,
    train_data: Any,
    target: str | None,
    validation_data: Any,
    preprocess: str | Path | None,
    serving: Any,
    gates: Any,
    author: str,
    message: str,
    trust: tuple[str, ...],
    origin: str = "",
    features: list[str] | None = None,
    unsafe: bool = False,
    flavor: str | None = None,
    notes: list[str] | None = None,
) -> Manifest:
    """Write every component of a bundle into ``out`` and return its manifest (with id).

    The raw input columns follow :mod:`rollbackkit.registry.raw_inputs` (recorded in
    ``registration.raw_inputs``); the model gets what :mod:`rollbackkit.bundle.model_inputs` says. The model is
    stored by its flavor (``flavor``, else the object's library or the file's suffix) and
    loaded back from the stored bytes, so what is scored here is what will serve. A model
    file is loaded only as ``trust`` and ``unsafe`` allow; what they allowed is recorded.
    """
    # The configs are read and validated before any model is loaded (fail fast, no side effects).
    serving_yaml = _config_text(serving, DEFAULT_SERVING, "--serving")
    gates_yaml = _config_text(gates, DEFAULT_GATES, "--gates") if gates is not None else None
    out.mkdir(parents=True)
    components: dict[str, Component] = {}
    scorer, model_comp, trusted_by_operator, packages = _write_model(out, model, validate_trust(trust), unsafe, flavor)
    components["model"] = model_comp

    prep: Preprocess = identity
    code = "preprocess()"
    declared = None
    if preprocess is not None:
        src = _existing_file(preprocess, "--preprocess")
        shutil.copyfile(src, out / "preprocess.py")
        prep = load_preprocess(out / "preprocess.py", where=str(src))
        code = f"preprocess() in {src}"
        declared = declared_inputs(prep, str(src))
        components["preprocess"] = _component(out / "preprocess.py", "git")
    to_model = _to_model(prep, code, scorer) if preprocess is not None else None

    train = read_frame(train_data, "training data")
    chosen = input_columns(train, target, features, None if preprocess is not None else scorer, declared)
    inputs = inputs_of(train, target, list(chosen.kept) if chosen else None)
    train_features = to_model(inputs, "training data") if to_model else inputs
    if to_model is not None:  # the raw columns a caller sends: those prep needs (the stored reason names no path)
        every, named = inputs_of(train, target, None), f"preprocess() in {origin or 'preprocess.py'}"
        if chosen is not None:
            check_chosen(prep, every, chosen, train_features, scorer, code)
        else:
            chosen = needed_columns(prep, inputs, train_features, scorer, named)
            inputs = inputs[list(chosen.kept)]
    columns = list(chosen.kept) if chosen else None  # None: every column but the target
    raw_inputs = chosen or RawInputs(tuple(map(str, inputs.columns)), reason="the model recorded no feature names")
    _check_model_inputs(scorer, train_features, model, "the data" if to_model is None else code)
    labels = target_labels(scorer.classes, train[target]) if target is not None and target in train.columns else None
    if labels is not None:  # the model numbers its classes (XGBoost's 0/1 for bools, an ONNX graph's 0..C-1)
        check_label_order(scorer, train_features, train[target], labels)
    elif target is not None and target in train.columns:
        labels = integer_classes(scorer.classes, train[target])
    if labels is not None:
        scorer.classes = labels
        components["model"] = model_comp = model_comp.model_copy(update={"classes": tuple(labels)})
    valid = (
        read_frame(validation_data, "validation data")
        if validation_data is not None
        else (train.sample(n=min(REFERENCE_ROWS, len(train)), random_state=0).sort_index())
    ).reset_index(drop=True)  # inputs, answers and labels line up by position, whatever the index
    ref_inputs = inputs_of(valid, target, columns, "validation data")
    ref_features = to_model(ref_inputs, "validation data") if to_model else ref_inputs
    ref_outputs = _score(scorer, ref_features)
    check_probabilities(ref_outputs)

    def scored(frame: pd.DataFrame) -> pd.DataFrame:
        return scorer.score(model_features(scorer, prep(frame), code) if to_model else frame)

    accepts = null_acceptance(scored, ref_inputs.iloc[:NULL_PROBE_ROWS])
    accepts = with_scored_nulls(accepts, ref_inputs, ref_outputs)
    schema = infer_schema(inputs, scorer, ref_outputs, target=target, accepts_null=accepts)
    (out / "schema.json").write_text(schema.to_json())
    components["schema"] = _component(out / "schema.json", "git")
    components["serving"] = _write_config(out / "serving.yaml", serving_yaml)
    if gates_yaml is None:  # the defaults, fitted to this version's inputs and output
        gates_yaml = _config_text(default_gates(schema, inputs, ref_inputs, notes), DEFAULT_GATES, "--gates")
    components["gates"] = _write_config(out / "gates.yaml", gates_yaml, schema)

    parts = [with_prefix(ref_inputs, "input"), with_prefix(ref_outputs, "output")]
    if target is not None and target in valid.columns:
        parts.append(valid[[target]].rename(columns={target: prefixed("label", target)}))
    pd.concat(parts, axis=1).to_parquet(out / "reference.parquet", index=False)
    components["reference"] = _component(out / "reference.parquet", "dvc")

    n = min(GOLDEN_ROWS, len(ref_inputs))
    golden = pd.concat(
        [
            with_prefix(ref_inputs.iloc[:n], "input"),
            with_prefix(ref_features.iloc[:n], "feature"),
            with_prefix(ref_outputs.iloc[:n], "output"),
        ],
        axis=1,
    )
    golden.to_parquet(out / "golden.parquet", index=False)
    components["golden"] = _component(out / "golden.parquet", "dvc")

    manifest = Manifest(
        name=name,
        components=components,
        registration=Registration(
            version=version,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            author=author,
            message=message,
            preprocess_origin=origin if preprocess is not None else "",
            trust=trusted_by_operator,
            unsafe=unsafe and flavors.unsafe_format(model_comp.format),
            runtime=runtime.record(packages),
            raw_inputs=raw_inputs,
        ),
    ).with_id()
    (out / MANIFEST_FILE).write_text(manifest.to_yaml())
    return manifest


def _component(path: Path, storage: str, **extra: Any) -> Component:
    return Component(path=path.name, md5=md5_file(path), size=path.stat().st_size, storage=storage, **extra)  # type: ignore[arg-type]


def _existing_file(path: str | Path, option: str) -> Path:
    p = Path(path)
    if p.exists() and not p.is_file():
        raise InvalidPath(f"{option} {p} is not a file.", f"Check the {option} path.")
    if not p.is_file():
        raise InvalidPath(f"{option} file {p} does not exist.", f"Check the {option} path.")
    return p


def _write_model(
    out: Path, model: Any, trust: tuple[str, ...], unsafe: bool, flavor_name: str | None
) -> tuple[Scorer, Component, tuple[str, ...], tuple[str, ...]]:
    """Store the model by its flavor; return it loaded back from the stored bytes, its
    component, the types trusted by the operator and the libraries whose versions it needs."""
    if isinstance(model, str | Path):
        path = Path(model)
        if not path.exists():
            raise InvalidPath(f"Model file {path} does not exist.", "Check the --model path.")
        flavor, fmt = flavors.for_file(path, flavor_name)
        origin = str(path)
        # load the copy that is hashed: what is loaded is what is stored
        stored = flavor.accept_file(flavor.copy_in(path, out, fmt), fmt, origin, trust, unsafe)
    else:
        flavor = flavors.get(flavor_name) if flavor_name is not None else flavors.for_object(model)
        origin = f"the {flavor.label} model"
        stored = flavor.save(model, out)
    component = _model_component(stored)
    scorer = flavor.load(stored.file.read_bytes(), component, origin)
    return scorer, component, stored.operator_trust, (*flavor.packages, *scorer.libraries())


def _model_component(stored: Stored) -> Component:
    return _component(
        stored.file, "dvc", format=stored.format, trusted_types=stored.trusted_types, classes=stored.classes
    )


class ServingSpec(BaseModel):
    """The content of ``serving.yaml``: how a version is to be served (validated at register)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    predict: Literal["auto", "predict", "predict_proba"] = "auto"
    batch_size: int = Field(default=1024, ge=1, le=1_000_000, strict=True)
    timeout_ms: float = Field(default=1000, gt=0, le=3_600_000, allow_inf_nan=False)
    warmup: Literal["golden", "none"] = "golden"


def parse_serving(text: str | bytes, where: str = "serving.yaml") -> ServingSpec:
    """Parse and validate ``serving.yaml`` (bounded, see :mod:`rollbackkit.yamlsafe`); errors name the line."""
    from rollbackkit.analysis.gatespec import explain, line_of
    from rollbackkit.yamlsafe import compose, load

    hint = f"Keys: {', '.join(ServingSpec.model_fields)}; see rollbackkit.registry.builder.ServingSpec."
    root = compose(text, where)
    data = load(text, where)
    if not isinstance(data, dict):
        raise InvalidInput(f"{where} line 1: must hold a YAML mapping.", hint)
    try:
        return ServingSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidInput(f"{where} line {line_of(root, tuple(error['loc']))}: {explain(error)}.", hint) from exc


def _config_text(value: Any, default: dict[str, Any], option: str) -> tuple[str, str]:
    """``--serving``/``--gates`` (a file, a dict or None: the default) as validated YAML text and its name.

    Read within :mod:`rollbackkit.yamlsafe`'s bounds; gates' column names are checked
    later, against the schema (:func:`_write_config`).
    """
    import yaml

    from rollbackkit.analysis.gatespec import parse_gates
    from rollbackkit.yamlsafe import read_text

    if value is None or isinstance(value, dict):
        where = option.removeprefix("--")
        try:
            text = yaml.safe_dump(value if value is not None else default, sort_keys=False)
        except (yaml.YAMLError, RecursionError) as exc:
            raise InvalidInput(f"{where}: cannot be written as YAML ({exc}).", "Pass plain data.") from exc
    else:
        src = _existing_file(value, option)
        where = str(value)
        text = read_text(src, where, f"Fix the {option} file.")
    if option == "--gates":
        parse_gates(text, where=where)
    else:
        parse_serving(text, where=where)
    return text, where


def _write_config(dest: Path, config: tuple[str, str], schema: Schema | None = None) -> Component:
    """Write validated ``serving.yaml`` or ``gates.yaml`` text into the bundle (gates checked against ``schema``)."""
    from rollbackkit.analysis.gatespec import parse_gates

    text, where = config
    if dest.name == "gates.yaml" and schema is not None:
        parse_gates(text, where=where, schema=schema)
    dest.write_bytes(text.encode())
    return _component(dest, "git")


def _to_model(prep: Preprocess, code: str, scorer: Scorer) -> Callable[[pd.DataFrame, str], pd.DataFrame]:
    """What the model gets from raw inputs (``what`` names them in errors): ``prep``'s output cut to its
    feature names (:func:`rollbackkit.bundle.model_inputs.model_features`)."""

    def to_model(inputs: pd.DataFrame, what: str) -> pd.DataFrame:
        return model_features(scorer, apply_preprocess(prep, inputs, what, code), code)

    return to_model


def _check_model_inputs(scorer: Scorer, features: pd.DataFrame, model: Any = None, source: str = "the data") -> None:
    where = f"The model in {model}" if isinstance(model, str | Path) else "The model"  # name the file
    expected = scorer.input_names_as(list(map(str, features.columns)))
    n_expected = scorer.n_inputs()
    if expected is None and n_expected is not None and n_expected != len(features.columns):
        raise InvalidInput(
            f"{where} takes {n_expected} features; {source} gives it {len(features.columns)}.",
            "Pass --target for the label column, --features for the model's inputs, or the data it was trained on.",
        )
    if expected is not None and expected != list(map(str, features.columns)):
        missing = sorted(set(expected) - set(map(str, features.columns)))
        extra = sorted(set(map(str, features.columns)) - set(expected))
        raise InvalidInput(
            f"{where} was trained on other columns (missing: {missing[:5]}, extra: {extra[:5]}).",
            "Pass --target for the label column, or the data the model was trained on.",
        )


def _score(scorer: Scorer, features: pd.DataFrame) -> pd.DataFrame:
    try:
        return scorer.score(features)
    except RollbackkitError:  # a flavor's own one-line refusal (it names the file and the column)
        raise
    except USER_CODE_ERRORS as exc:
        raise InvalidInput(
            f"The model cannot score the data: {describe_error(exc)}.",
            "Check that the data has the model's training columns.",
        ) from exc
