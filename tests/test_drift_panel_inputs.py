"""A notebook user opens the drift panel on files, as the drift CLI takes them.

Iris measurements (string species names as the slice) written to CSV and Parquet: the
panel reads both like ``rollbackkit drift`` does, and a column it cannot show is one
readable line, never another column drawn in its place.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rollbackkit.errors import InvalidInput, InvalidPath
from rollbackkit.widgets import DriftPanel


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return frame.assign(species=frame["target"].map(dict(enumerate(bunch.target_names)))).drop(columns="target")


@pytest.fixture
def files(iris: pd.DataFrame, tmp_path: Path) -> tuple[Path, Path]:
    reference, current = tmp_path / "reference.csv", tmp_path / "current.parquet"
    iris.iloc[::2].to_csv(reference, index=False)
    iris.iloc[1::2].assign(petal_length=lambda f: f["petal_length"] * 1.3).to_parquet(current)
    return reference, current


def test_the_panel_reads_csv_and_parquet_paths_like_the_drift_api(files: tuple[Path, Path]) -> None:
    reference, current = files
    panel = DriftPanel(reference, str(current), column="petal_length", by="species")
    assert panel.error is None
    assert "rollbackkit-error" not in panel.message.value
    assert panel.column.value == "petal_length"
    assert list(panel.slice.options) == ["(all rows)", "setosa", "versicolor", "virginica"]
    assert panel.metric_values["n_ref"] == 75 and panel.metric_values["psi"] > 0.1
    panel.slice.value = "virginica"
    assert "species=virginica" in panel.figure.layout.title.text


@pytest.mark.parametrize(
    ("column", "by", "says"),
    [
        ("petal_area", None, "Column 'petal_area' is not in both the reference and the current data."),
        ("species", "species", "column='species' is also the slice column (by)."),
        ("petal_length", "genus", "The slice column by='genus' is not in the current data."),
    ],
)
def test_a_column_it_cannot_show_is_one_readable_line(
    files: tuple[Path, Path], column: str, by: str | None, says: str
) -> None:
    reference, current = files
    panel = DriftPanel(reference, current, column=column, by=by)
    assert isinstance(panel.error, InvalidInput)
    assert panel.error.message == says
    assert says.replace("'", "&#x27;") in panel.message.value and "Traceback" not in panel.message.value
    assert panel.column.value is None  # nothing drawn in its place
    assert all(len(trace.x or ()) == 0 for trace in panel.figure.data)
    assert panel.metric_values == {}

    panel.column.value = "sepal_width"  # picking a real column recovers
    assert panel.error is None and panel.metric_values["n_cur"] == 75


def test_a_missing_file_is_a_readable_line(tmp_path: Path, files: tuple[Path, Path]) -> None:
    panel = DriftPanel(tmp_path / "nowhere.parquet", files[1], column="petal_length")
    assert isinstance(panel.error, InvalidPath)
    assert "nowhere.parquet does not exist" in panel.message.value
