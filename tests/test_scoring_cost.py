"""Scoring does each model's work once: the cost the server adds to a one-row request.

bench/flavors.py found scikit-learn forests traversed twice per request (``predict`` and
then ``predict_proba``) and every classifier's output frame built one column at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from rollbackkit.bundle.flavors.base import output_from_proba
from rollbackkit.bundle.flavors.scikit_learn import SklearnScorer


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, 4)), columns=["a", "b", "c", "d"])
    y = np.array(["bronze", "silver", "gold"])[(x["a"] + x["b"] > 0).astype(int) + (x["c"] > 1).astype(int)]
    return x, y


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomForestClassifier(n_estimators=10, n_jobs=1, random_state=0),
        lambda: ExtraTreesClassifier(n_estimators=10, n_jobs=1, random_state=0),
        lambda: DecisionTreeClassifier(random_state=0),
        lambda: CalibratedClassifierCV(LogisticRegression(), cv=3),
    ],
)
@pytest.mark.parametrize("pipeline", [False, True])
def test_a_forest_is_traversed_once_and_answers_as_predict(make, pipeline, monkeypatch) -> None:
    x, y = _data()
    final = make()
    model = make_pipeline(StandardScaler(), final) if pipeline else final
    model.fit(x, y)
    expected, proba = model.predict(x), model.predict_proba(x)

    def refused(*args, **kwargs):
        raise AssertionError("predict() runs the model a second time")

    monkeypatch.setattr(type(final), "predict", refused)
    out = SklearnScorer(model).score(x)
    assert out["prediction"].tolist() == expected.tolist()
    assert all(type(v) is str for v in out["prediction"])
    np.testing.assert_array_equal(out[[f"proba_{c}" for c in model.classes_]].to_numpy(), proba)


def test_other_classifiers_still_answer_with_predict() -> None:
    x, y = _data()
    model = LogisticRegression().fit(x, y)
    out = SklearnScorer(model).score(x)
    assert out["prediction"].tolist() == model.predict(x).tolist()


@pytest.mark.parametrize("classes", [["no", "yes"], [0, 1, 2], [True, False], [1.5, 2.5]])
def test_output_frame_is_built_in_one_go_with_labels_of_their_type(classes, monkeypatch) -> None:
    proba = np.random.default_rng(1).dirichlet(np.ones(len(classes)), size=5)

    def refused(self, key, value):
        raise AssertionError(f"column {key!r} set one at a time")

    monkeypatch.setattr(pd.DataFrame, "__setitem__", refused)
    out = output_from_proba(proba, classes, pd.RangeIndex(5))
    assert list(out.columns) == ["prediction", *[f"proba_{c}" for c in classes]]
    assert [type(v) for v in out["prediction"].tolist()] == [type(classes[0])] * 5
    assert out["prediction"].tolist() == [classes[i] for i in proba.argmax(axis=1)]
    # True == 1: labels of another type are never served from the same cache entry
    ints = output_from_proba(np.array([[0.2, 0.8]]), [1, 0], pd.RangeIndex(1))
    bools = output_from_proba(np.array([[0.2, 0.8]]), [True, False], pd.RangeIndex(1))
    assert type(ints["prediction"].iloc[0]) is not type(bools["prediction"].iloc[0])


def test_a_model_s_own_labels_go_in_the_same_frame(monkeypatch) -> None:
    monkeypatch.setattr(pd.DataFrame, "__setitem__", lambda *a: pytest.fail("a column set one at a time"))
    proba = np.array([[0.6, 0.4], [0.3, 0.7]])
    out = output_from_proba(proba, ["no", "yes"], pd.RangeIndex(2), prediction=np.array(["yes", "yes"], dtype=object))
    assert out["prediction"].tolist() == ["yes", "yes"]  # e.g. a graph that thresholds at 0.3
    assert list(out.columns) == ["prediction", "proba_no", "proba_yes"]
