"""The HTTP API with data people have: missing values, nullable dtypes, string labels.

A membership model trained on features with NaN (float), NA (``Int64``) and missing
categories, predicting the string labels ``stay``/``leave``, served by a real server.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollbackkit.bundle.conform import conform
from rollbackkit.serving.wire import decode_frame, encode_frame

from .conftest import copy_project, new_repo, run_cli, shared_template
from .servers import TOKEN, running_server

ADMIN = {"ROLLBACKKIT_ADMIN_TOKEN": TOKEN}


def members_frame(n: int, seed: int) -> pd.DataFrame:
    """Members with a fifth of each feature missing, labelled ``stay`` or ``leave``."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 10, n)
    income[rng.random(n) < 0.2] = np.nan
    visits = pd.array(rng.integers(0, 20, n), dtype="Int64")
    visits[rng.random(n) < 0.2] = pd.NA
    plan = pd.Categorical(rng.choice(np.array(["basic", "pro", None], dtype=object), n))
    leave = (np.nan_to_num(income, nan=50) > 50) ^ (rng.random(n) < 0.1)
    return pd.DataFrame({"income": income, "visits": visits, "plan": plan, "label": np.where(leave, "leave", "stay")})


@pytest.fixture(scope="session")
def members_template(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> Path:
    """``members@v1.0.0`` serving prod, ``members@v1.1.0`` registered (built once per session)."""

    def build(root: Path) -> Path:
        from sklearn.ensemble import HistGradientBoostingClassifier

        from rollbackkit import Registry
        from rollbackkit.ops.traffic import deploy

        repo = new_repo(root / "project", "members")
        registry = Registry.init(repo)
        frame = members_frame(600, seed=0)
        X, y = frame.drop(columns="label"), frame["label"]
        for version, trees in (("v1.0.0", 20), ("v1.1.0", 40)):
            model = HistGradientBoostingClassifier(max_iter=trees, categorical_features="from_dtype", random_state=0)
            registry.register("members", model.fit(X, y), frame, target="label", version=version)
        deploy(repo, "members@v1.0.0", "prod", reason="first release")
        return repo

    return shared_template(tmp_path_factory, "members-template", build)


@pytest.fixture
def members(members_template: Path, tmp_path: Path) -> Path:
    """A private copy of ``members_template``."""
    return copy_project(members_template, tmp_path)


# --------------------------------------------------------------------------- the wire form
_UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_SECONDS = (-2_000_000_000, 4_000_000_000)  # 1906 .. 2096


@st.composite
def columns(draw: st.DrawFn, rows: int) -> pd.Series:
    """A column of ``rows`` values of a random dtype, with missing values where it has them."""
    kind = draw(
        st.sampled_from(
            [
                "float64", "float32", "Float64", "Int64", "UInt8", "int64", "bool", "boolean",
                "str", "string", "category", "datetime", "datetime-tz", "timedelta",
            ]
        )
    )  # fmt: skip
    maybe = st.none() | st.just(1)
    present = [draw(maybe) is not None for _ in range(rows)]

    def values(strategy: st.SearchStrategy) -> list:
        return [draw(strategy) if keep else None for keep in present]

    if kind == "float64":
        return pd.Series([np.nan if v is None else v for v in values(st.floats())], dtype="float64")
    if kind == "float32":
        return pd.Series([np.nan if v is None else v for v in values(st.floats(width=32))], dtype="float32")
    if kind == "Float64":
        return pd.Series(pd.array(values(st.floats(allow_nan=False)), dtype="Float64"))
    if kind == "Int64":
        return pd.Series(pd.array(values(st.integers(-(2**63), 2**63 - 1)), dtype="Int64"))
    if kind == "UInt8":
        return pd.Series(pd.array(values(st.integers(0, 255)), dtype="UInt8"))
    if kind == "int64":
        return pd.Series([draw(st.integers(-(2**63), 2**63 - 1)) for _ in range(rows)], dtype="int64")
    if kind == "bool":
        return pd.Series([draw(st.booleans()) for _ in range(rows)], dtype="bool")
    if kind == "boolean":
        return pd.Series(pd.array(values(st.booleans()), dtype="boolean"))
    if kind in ("str", "string"):
        return pd.Series(values(st.text(max_size=8)), dtype=kind)
    if kind == "category":
        labels = draw(st.lists(st.text(max_size=5), min_size=1, max_size=4, unique=True))
        ordered = draw(st.booleans())
        return pd.Series(pd.Categorical(values(st.sampled_from(labels)), categories=labels, ordered=ordered))
    unit = draw(st.sampled_from(list(_UNITS)))
    ticks = st.integers(_SECONDS[0] * _UNITS[unit], _SECONDS[1] * _UNITS[unit])
    raw = np.array([np.iinfo("int64").min if v is None else v for v in values(ticks)], dtype="int64")
    if kind == "timedelta":
        return pd.Series(raw.view(f"m8[{unit}]"))
    stamps = pd.Series(raw.view(f"M8[{unit}]"))
    if kind == "datetime-tz":
        zone = draw(st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]))
        return stamps.dt.tz_localize("UTC").dt.tz_convert(zone)
    return stamps


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(0, 6))
    names = draw(st.lists(st.text(max_size=6), min_size=1, max_size=6, unique=True))
    return pd.DataFrame({name: draw(columns(rows)) for name in names})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames())
def test_any_frame_crosses_the_admin_api_as_it_went_in(frame: pd.DataFrame) -> None:
    """NaN, NA, NaT, infinities, int64 past 2**53 and every dtype survive encode -> JSON -> decode."""
    text = json.dumps(encode_frame(frame), allow_nan=False)  # what httpx and starlette insist on
    pd.testing.assert_frame_equal(decode_frame(json.loads(text)), frame, check_exact=True)


def test_the_wire_form_keeps_what_records_lose() -> None:
    frame = pd.DataFrame(
        {
            "big": pd.array([2**62 + 1, None], dtype="Int64"),  # a float would round it
            "score": [np.inf, np.nan],
            "seen": pd.to_datetime(["2026-01-05 09:30:00.000000001", None], format="ISO8601").tz_localize("Asia/Tokyo"),
        }
    )
    with pytest.raises(ValueError, match="not JSON compliant"):  # the crash of issue 14, defect 2
        json.dumps(frame.to_dict(orient="records"), allow_nan=False)
    back = decode_frame(json.loads(json.dumps(encode_frame(frame), allow_nan=False)))
    assert back["big"][0] == 2**62 + 1 and back["big"].isna().tolist() == [False, True]
    pd.testing.assert_frame_equal(back, frame)


def test_json_rows_are_read_with_the_trained_dtypes_only_where_nothing_is_lost(members: Path) -> None:
    from rollbackkit import Registry

    schema = Registry(members).load("members@v1.0.0").schema
    rows = pd.DataFrame.from_records([{"income": None, "visits": None, "plan": None}])
    read = conform(rows, schema)
    assert [str(t) for t in read.dtypes] == ["float64", "Int64", "category"]
    assert read.isna().all().all()
    whole = conform(pd.DataFrame.from_records([{"income": 1, "visits": 3.0, "plan": "pro"}]), schema)
    assert whole["visits"].dtype == "Int64" and whole["visits"][0] == 3
    fractional = pd.DataFrame.from_records([{"income": "a lot", "visits": 2.5, "plan": "pro"}])
    kept = conform(fractional, schema)  # text in a number, 2.5 visits: left for check() to refuse
    assert kept["income"][0] == "a lot" and kept["visits"][0] == 2.5


def test_a_csv_of_plain_floats_is_checked_against_a_nullable_float_feature() -> None:
    """A CSV read for ``--features`` has float64 where training had ``Float64``: a cast, not a crash."""
    from rollbackkit.bundle.compat import check
    from rollbackkit.bundle.schema import EstimatorView, OutputContract, Schema, infer_features

    trained = pd.DataFrame({"spend": pd.array([1.5, None, 3.5], dtype="Float64")})
    output = OutputContract(kind="regression", columns=["prediction"], dtypes={}, primary="prediction")
    schema = Schema(features=infer_features(trained), estimator=EstimatorView(type="x"), output=output, n_rows=3)
    report = check(schema, pd.DataFrame({"spend": [2.5, np.nan]}))
    assert report.verdict == "adaptable" and report.adaptation.casts == {"spend": "Float64"}


# --------------------------------------------------------------------------- against a real server
def test_a_null_in_a_nullable_feature_is_scored_and_refused_rows_never_reach_preflight(members: Path) -> None:
    import httpx

    with running_server(members, "members", "prod") as server:
        answer = server.predict([{"income": None, "visits": None, "plan": None}], key="m-1")
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["prediction"] in ("stay", "leave")
        mixed = server.predict([{"income": None, "visits": 3, "plan": "pro"}, {"income": 61.5, "visits": None}])
        assert mixed.status_code == 200, mixed.text
        assert [p["prediction"] in ("stay", "leave") for p in mixed.json()["predictions"]] == [True, True]

        typed = members_frame(3, seed=9).drop(columns="label")
        typed.loc[0, ["income", "visits", "plan"]] = [np.nan, pd.NA, np.nan]
        framed = httpx.post(f"{server.url}/predict", json={"frame": encode_frame(typed)}, timeout=60)
        assert framed.status_code == 200, framed.text
        assert len(framed.json()["predictions"]) == 3

        refused = server.predict([{"income": "a lot", "visits": 1, "plan": "pro"}])
        assert refused.status_code == 422 and refused.json()["columns"] == ["income"]
        assert "trained as float" in refused.json()["error"] and "got" in refused.json()["error"], refused.text

        # The next deploy's preflight reads the inputs lately scored, not the refused ones.
        deployed = server.admin("deploy", {"version": "v1.1.0", "reason": "after a bad client"})
        assert deployed.status_code == 200, deployed.text
        assert deployed.json()["preflight"]["verdict"] != "incompatible"
        assert server.status()["live"]["version"] == "v1.1.0"


def test_deploy_and_rollback_take_features_with_missing_values_while_a_server_runs(
    members: Path, tmp_path: Path
) -> None:
    live = tmp_path / "live.csv"
    members_frame(200, seed=5).drop(columns="label").assign(visits=lambda f: f["visits"].fillna(0)).to_csv(
        live, index=False
    )
    assert ",," in live.read_text() or ",\n" in live.read_text()  # empty cells: NaN once read
    with running_server(members, "members", "prod") as server:
        deployed = run_cli(
            "deploy", "members@v1.1.0", "--env", "prod", "--features", str(live), "--json", cwd=members, env=ADMIN
        )
        assert deployed.returncode == 0, deployed.stderr
        body = json.loads(deployed.stdout)
        assert body["via"] == server.url and body["preflight"]["verdict"] != "incompatible"
        rolled = run_cli(
            "rollback", "members", "--env", "prod", "--reason", "check", "--features", str(live), "--json",
            cwd=members, env=ADMIN,
        )  # fmt: skip
        assert rolled.returncode == 0, rolled.stderr
        assert server.status()["live"]["version"] == "v1.0.0"


def test_the_api_is_documented_route_by_route_and_health_says_when_nothing_is_served(members: Path) -> None:
    import httpx

    from rollbackkit.serving.app import create_app
    from rollbackkit.serving.environment import ServingEnvironment

    app = create_app(ServingEnvironment(members, "members", "staging"), TOKEN)
    routes = {(r.path, m.lower()) for r in app.routes for m in (r.methods or ()) if m != "HEAD"}  # type: ignore[attr-defined]
    with running_server(members, "members", "staging") as server:  # nothing deployed to staging
        health = httpx.get(f"{server.url}/healthz", timeout=10)
        assert health.status_code == 503
        assert health.json()["ok"] is False and "nothing is served" in health.json()["reason"]

        document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
        assert document["openapi"].startswith("3.")
        documented = {(path, method) for path, item in document["paths"].items() for method in item}
        assert documented == routes
        assert all(
            op.get("summary") and op.get("responses") for item in document["paths"].values() for op in item.values()
        )

        deployed = server.admin("deploy", {"version": "v1.0.0", "reason": "open staging"})
        assert deployed.status_code == 200, deployed.text
        assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"ok": True, "version": "v1.0.0"}

    status = run_cli("status", "members", "--env", "staging", "--json", cwd=members)
    assert status.returncode == 1
    assert status.stderr.count("\n") == 1 and "Usage" not in status.stderr
    assert "rollbackkit serve members --env staging" in status.stderr


def test_a_timestamp_with_a_historical_offset_crosses_the_wire() -> None:
    """Paris kept local mean time (+00:09:21) until 1911: an offset ISO 8601 cannot write."""
    when = pd.to_datetime(["1911-03-10 23:50:38.999", None]).tz_localize("UTC").tz_convert("Europe/Paris")
    frame = pd.DataFrame({"signup": pd.Series(when).astype("datetime64[ms, Europe/Paris]")})
    assert str(frame["signup"][0]).endswith("+00:09:21")
    pd.testing.assert_frame_equal(decode_frame(json.loads(json.dumps(encode_frame(frame)))), frame, check_exact=True)


def test_cancelling_a_canary_never_preflights_the_version_that_serves_live(members: Path) -> None:
    """At 3 AM a canary goes bad on drifted inputs: the rollback that cancels it needs no ``force``."""
    from rollbackkit.registry.checks import preflight_bundle
    from rollbackkit.serving.environment import ServingEnvironment

    drifted = members_frame(60, seed=7).drop(columns="label").assign(income=lambda f: f["income"] * 50)
    environment = ServingEnvironment(members, "members", "prod")
    environment.start()
    try:
        environment.deploy("v1.1.0", canary=50, reason="try more trees", force=True)
        live = environment.router.state.slot(environment.router.state.live)
        assert (
            live is not None and preflight_bundle(environment.registry, live.bundle, drifted).verdict == "incompatible"
        )
        answer = environment.rollback(reason="canary drifts", features=drifted)
        assert answer["preflight"] == {"verdict": "skipped"}
        assert answer["assignment"]["version"] == "v1.0.0" and not answer["assignment"]["forced"]
        state = environment.router.state
        assert state.canary is None and state.slot(state.live).bundle.version == "v1.0.0"  # type: ignore[union-attr]
    finally:
        environment.stop()
