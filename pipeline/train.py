"""Stage 2: one model per version, saved with skops (a safe format, not pickle)."""

from pathlib import Path

import pandas as pd
import skops.io

from rollbackkit.demo.data import ALL_FEATURES, BASE_FEATURES, TARGET, churn_pipeline
from rollbackkit.yamlsafe import load_file

params = load_file("params.yaml")["train"]
train = pd.read_parquet("data/train.parquet")
Path("models").mkdir(exist_ok=True)
for version, n_features in params["versions"].items():
    features = {47: BASE_FEATURES, 52: ALL_FEATURES}[n_features]
    model = churn_pipeline(features, seed=params["seed"])
    model.set_params(model__max_iter=params["max_iter"])
    model.fit(train[features], train[TARGET])
    skops.io.dump(model, f"models/churn-{version}.skops")
