"""Stage 3: register each model as an immutable bundle version through the rollbackkit API.

A version that is already registered is left alone (versions are immutable), so running
the pipeline again changes nothing.
"""

import json
from pathlib import Path

import pandas as pd

from rollbackkit import Registry
from rollbackkit.demo.data import ALL_FEATURES, BASE_FEATURES, TARGET
from rollbackkit.yamlsafe import load_file

params = load_file("params.yaml")
name = params["register"]["name"]
registry = Registry(".")
known = {v.version: v for v in registry.versions(name)} if name in registry.names() else {}
train, validation = pd.read_parquet("data/train.parquet"), pd.read_parquet("data/validation.parquet")
registered = {}
for version, n_features in params["train"]["versions"].items():
    if version in known:
        registered[version] = known[version].bundle_id
        continue
    features = {47: BASE_FEATURES, 52: ALL_FEATURES}[n_features]
    info = registry.register(  # the file itself: rollbackkit loads it trusting only reviewed types
        name,
        f"models/churn-{version}.skops",
        train[[*features, TARGET]],
        target=TARGET,
        validation_data=validation[[*features, TARGET]],
        gates="pipeline/gates.yaml",
        version=version,
        message=params["register"]["messages"][version],
    )
    registered[version] = info.bundle_id
Path("registered.json").write_text(json.dumps(registered, indent=2) + "\n")
