"""A manifest written by a newer rollbackkit: read where it can be, refused in one line where it cannot.

A fleet mid-upgrade has readers older than its writers. From this release on, a reader keeps
reading a bundle whose ``registration`` carries fields it does not know (metadata, outside the
bundle id) and says which it ignored; it refuses a newer ``format`` and an unknown field in a
component (what the bundle id covers) in one line that says to upgrade. Existing bundle ids
never change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rollbackkit import Registry
from rollbackkit.bundle.manifest import MANIFEST_FORMAT, ROLES, Component, Manifest, RawInputs, Registration
from rollbackkit.bundle.runtime import Runtime
from rollbackkit.errors import IntegrityError

from .cli import run_cli
from .conftest import new_repo

# A wine bundle as this release's register writes it (raw_inputs, runtime, a skops model with
# trusted types), and the ids the release before computed for it: pinned, they must never change.
WINE = """\
format: rollbackkit/bundle@1
name: wine
components:
  model: {path: model.skops, md5: 6f1ed002ab5595859014ebf0951522d9, size: 48213, storage: dvc, format: skops,
    trusted_types: [sklearn.ensemble._forest.RandomForestClassifier], classes: null}
  schema: {path: schema.json, md5: 0cc175b9c0f1b6a831c399e269772661, size: 2201, storage: git, format: null,
    trusted_types: [], classes: null}
  serving: {path: serving.yaml, md5: 92eb5ffee6ae2fec3ad71c777531578f, size: 310, storage: git, format: null,
    trusted_types: [], classes: null}
  gates: {path: gates.yaml, md5: 4a8a08f09d37b73795649038408b5f33, size: 905, storage: git, format: null,
    trusted_types: [], classes: null}
  reference: {path: reference.parquet, md5: 8277e0910d750195b448797616e091ad, size: 10122, storage: dvc,
    format: null, trusted_types: [], classes: null}
  golden: {path: golden.parquet, md5: e1671797c52e15f763380b45e841ec32, size: 3391, storage: dvc, format: null,
    trusted_types: [], classes: null}
registration:
  version: v1.0.0
  created: '2026-11-30T09:12:44+00:00'
  author: Ana <ana@example.com>
  message: first wine model
  preprocess_origin: ''
  trust: []
  unsafe: false
  runtime: {python: 3.11.9, libraries: {numpy: 1.26.4, pandas: 2.2.2, sklearn: 1.5.1, skops: 0.10.0}}
  raw_inputs: {kept: [alcohol, malic_acid], dropped: [], rule: model, reason: ''}
bundle_id: ''
"""
WINE_ID = "sha256:ae6d374d942284dbaa2978c146a0ecd244d005de39b792a5cb6da7620c6a53e6"
WINE_CLASSES_ID = "sha256:996fac3d691a64ffe3340269aa3b82b8bdaa3a6d0a4761107084a5aa2e07b71b"  # classes: [low, 2, true]


def _wine(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(WINE)
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        part = data
        for parent in parents:
            part = part[parent]
        part[key] = value
    return data


def _read(data: dict[str, Any]) -> Manifest:
    return Manifest.from_yaml(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("changes", "pinned"),
    [({}, WINE_ID), ({"components__model__classes": ["low", 2, True]}, WINE_CLASSES_ID)],
    ids=["registered", "with-classes"],
)
def test_existing_bundle_ids_do_not_change_and_newer_registration_fields_keep_them(
    changes: dict[str, Any], pinned: str
) -> None:
    assert _read(_wine(**changes)).content_id() == pinned
    newer = _wine(**changes, registration__signed_by="ci@example.com", registration__runtime__os="linux")
    read = _read(newer)
    assert read.content_id() == pinned and Manifest.from_yaml(read.to_yaml()).content_id() == pinned


def test_a_manifest_with_newer_registration_fields_loads_and_says_what_it_ignored() -> None:
    newer = _wine(
        registration__approved_by=["ana", "ben"],
        registration__runtime__platform="linux-x86_64",
        registration__raw_inputs__sources={"alcohol": "lab"},
    )
    manifest = _read(newer)
    assert manifest.ignored == (
        "registration.approved_by",
        "registration.runtime.platform",
        "registration.raw_inputs.sources",
    )
    assert manifest.registration.raw_inputs == RawInputs(("alcohol", "malic_acid"), rule="model")
    assert manifest.registration.runtime is not None and manifest.registration.runtime.python == "3.11.9"
    assert _read(_wine()).ignored == ()


@pytest.mark.parametrize(
    ("fmt", "said"),
    [
        ("rollbackkit/bundle@2", "written by a newer rollbackkit (format rollbackkit/bundle@2); upgrade rollbackkit"),
        ("rollbackkit/bundle@17", "written by a newer rollbackkit (format rollbackkit/bundle@17)"),
        ("mlflow/MLmodel@1", "has format 'mlflow/MLmodel@1', which is not one rollbackkit writes"),
        (2, "has format '2', which is not one rollbackkit writes"),
    ],
)
def test_a_format_this_release_does_not_know_refuses_in_one_line(fmt: object, said: str) -> None:
    with pytest.raises(IntegrityError) as caught:
        _read(_wine(format=fmt, registration__signed_by="ci"))
    assert said in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"components__model__compression": "zstd"}, "components.model has fields this rollbackkit does not know"),
        ({"signature": "abc"}, "the top level has fields this rollbackkit does not know (signature)"),
    ],
    ids=["component", "top-level"],
)
def test_an_unknown_field_in_what_the_bundle_id_covers_refuses(changes: dict[str, Any], said: str) -> None:
    with pytest.raises(IntegrityError, match=r"(?i)upgrade rollbackkit") as caught:
        _read(_wine(**changes))
    assert said in str(caught.value) and "\n" not in str(caught.value)


_labels = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.booleans())
_names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


@st.composite
def _manifests(draw: st.DrawFn) -> Manifest:
    roles = draw(st.lists(st.sampled_from(ROLES), min_size=1, unique=True))
    components = {
        role: Component(
            path=f"{role}.bin",
            md5=draw(st.from_regex(r"[0-9a-f]{32}", fullmatch=True)),
            size=draw(st.integers(0, 2**40)),
            storage=draw(st.sampled_from(["git", "dvc"])),
            format=draw(st.none() | st.sampled_from(["skops", "onnx", "xgboost-ubj"])),
            trusted_types=tuple(draw(st.lists(_names, max_size=2))),
            classes=draw(st.none() | st.lists(_labels, max_size=4).map(tuple)),
        )
        for role in roles
    }
    kept = draw(st.lists(st.text(min_size=1, max_size=10), max_size=4, unique=True))
    registration = Registration(
        version=f"v{draw(st.integers(0, 9))}.0.0",
        created="2026-12-01T06:00:00+00:00",
        author=draw(st.text(max_size=20)),
        message=draw(st.text(max_size=40)),
        unsafe=draw(st.booleans()),
        runtime=draw(st.none() | st.just(Runtime(python="3.12.3", libraries={"numpy": "2.1.0"}))),
        raw_inputs=draw(st.none() | st.just(RawInputs(tuple(kept), rule="given"))),
    )
    return Manifest(name="churn", components=components, registration=registration).with_id()


@settings(max_examples=60, deadline=None)
@given(manifest=_manifests(), extra=st.dictionaries(_names, st.text(max_size=10) | st.integers(), max_size=3))
def test_a_manifest_round_trips_and_a_newer_writers_registration_fields_only_add_ignored(
    manifest: Manifest, extra: dict[str, object]
) -> None:
    text = manifest.to_yaml()
    read = Manifest.from_yaml(text)
    assert read == manifest and read.content_id() == read.bundle_id == manifest.bundle_id
    assert "classes: null" not in text  # a content field added later is written only when set
    data = yaml.safe_load(text)
    unknown = {k: v for k, v in extra.items() if k not in Registration.model_fields}
    data["registration"].update(unknown)
    newer = Manifest.from_yaml(yaml.safe_dump(data))
    assert newer == manifest  # equality is on fields only: what a reading ignored is not compared
    assert newer.ignored == tuple(f"registration.{k}" for k in sorted(unknown))


def test_show_names_the_fields_a_newer_rollbackkit_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A version registered by a newer rollbackkit (extra registration fields, one named to hijack a
    terminal): it verifies and shows, and ``show`` says what it ignored, escaped and capped. A version
    whose model component carries a newer field is refused on load with the advice to upgrade."""
    from sklearn.linear_model import LogisticRegression

    project = new_repo(tmp_path / "project")
    registry = Registry.init(project)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(120, 2)), columns=["a", "b"]).astype({"b": "Float64"})
    frame["target"] = pd.array(np.where(frame["a"] > 0, "yes", "no"), dtype="string")
    model = LogisticRegression().fit(frame[["a", "b"]].astype(float), frame["target"].astype(str))
    real = Manifest.to_yaml

    def newer(manifest: Manifest) -> str:
        data = yaml.safe_load(real(manifest))
        data["registration"] |= {"approved_by": "ana@example.com", "\x1b]0;pwned\x07\x1b[2J": 1}
        data["registration"] |= {f"zone_{i:02}": i for i in range(11)}
        if data["registration"]["version"] == "v1.1.0":  # a content field this release does not know
            data["components"]["model"]["compression"] = "zstd"
        return yaml.safe_dump(data, sort_keys=False)

    with monkeypatch.context() as patch:
        patch.setattr(Manifest, "to_yaml", newer)
        info = registry.register("churn", model, frame, target="target", version="v1.0.0")
        compressed = registry.register("churn", model, frame, target="target", version="v1.1.0")
    assert registry.verify(info.tag).ok
    assert registry.show(info.tag)["ignored"][1:] == ["registration.approved_by"] + [
        f"registration.zone_{i:02}" for i in range(11)
    ]
    shown = run_cli("show", info.tag, cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout  # nothing reaches the terminal raw
    assert (
        "ignored (written by a newer rollbackkit; upgrade to read them): 'registration.\\x1b]0;pwned\\x07\\x1b[2J', "
        "registration.approved_by, registration.zone_00" in shown.stdout
    )
    assert "registration.zone_07 and 3 more" in shown.stdout  # 13 names: 10 shown

    with pytest.raises(IntegrityError) as caught:  # the real load path (verified_manifest) keeps the advice
        registry.load(compressed.tag)
    said = str(caught.value)
    assert "components.model has fields this rollbackkit does not know (compression)" in said
    assert "upgrade rollbackkit to read it" in said and "do not use this version" not in said


def test_a_schema_json_with_fields_this_release_does_not_know_refuses_in_one_line() -> None:
    """schema.json is content (its md5 is in the bundle id): closed, like a component."""
    from rollbackkit.bundle.schema import EstimatorView, OutputContract, Schema, infer_features

    frame = pd.DataFrame(
        {
            "age": pd.array([31, None, 45], dtype="Int64"),
            "member": pd.array([True, None, False], dtype="boolean"),
            "plan": pd.Series(["basic", "pro", None], dtype="category"),
            "spend": [1.5, np.nan, 3.0],
        }
    )
    schema = Schema(
        features=infer_features(frame),
        estimator=EstimatorView(type="sklearn.linear_model.LogisticRegression"),
        output=OutputContract(kind="classification", columns=["prediction"], dtypes={}, primary="prediction"),
        n_rows=3,
    )
    assert Schema.from_json(schema.to_json()) == schema
    data = json.loads(schema.to_json())
    data["features"][2]["unit"] = "EUR"
    data["output"]["calibration"] = "isotonic"
    with pytest.raises(IntegrityError) as caught:
        Schema.from_json(json.dumps(data), "churn@v2.0.0 schema.json")
    said = str(caught.value)
    assert (
        "churn@v2.0.0 schema.json has fields this rollbackkit does not know (features.2.unit, output.calibration)"
        in said
    )
    assert "upgrade rollbackkit" in said and "\n" not in said


def test_a_manifest_written_without_a_format_gets_the_pinned_format_and_id() -> None:
    """The default format is pinned (not the newest this release reads): the same content keeps its id."""
    data = _wine()
    del data["format"]
    built = Manifest(name="wine", components=data["components"], registration=data["registration"])
    assert MANIFEST_FORMAT == "rollbackkit/bundle@1" == built.format
    assert built.content_id() == _read(data).content_id() == WINE_ID


def test_unknown_field_names_in_a_refusal_are_escaped_and_capped() -> None:
    fields = {f"components__model__k{i:02}": 1 for i in range(14)} | {"components__model__\x1b[2J": 1}
    with pytest.raises(IntegrityError) as caught:
        _read(_wine(**fields))
    said = str(caught.value)
    assert "\x1b" not in said and "('\\x1b[2J', k00, k01, k02, k03, k04, k05, k06, k07, k08 and 5 more)" in said
