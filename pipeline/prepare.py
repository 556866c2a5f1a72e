"""Stage 1: a deterministic synthetic churn dataset, split into training and validation."""

from pathlib import Path

from rollbackkit.demo.data import churn_frame
from rollbackkit.yamlsafe import load_file

params = load_file("params.yaml")["prepare"]
Path("data").mkdir(exist_ok=True)
churn_frame(params["rows"], seed=params["seed"]).to_parquet("data/train.parquet")
churn_frame(params["validation_rows"], seed=params["seed"] + 1).to_parquet("data/validation.parquet")
