"""A deterministic synthetic churn dataset, shaped like a real subscription business.

47 base features (account, billing, support and 35 weekly-usage columns, numeric and
categorical) and 5 newer engagement features, 52 in all: version 1 of the demo model is
trained on the 47, version 2 on the 52. The label depends on a few features, with a tail
segment (month-to-month contracts with many support calls) that churns far more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "churned"
CATEGORICAL = ["contract", "region", "payment_method", "plan"]
WEEKS = [f"usage_week_{i:02d}" for i in range(1, 36)]
BASE_FEATURES = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "num_products",
    "age",
    "late_payments",
    "paperless_billing",
    *CATEGORICAL,
    *WEEKS,
]
NEW_FEATURES = ["app_sessions_30d", "days_since_last_login", "nps_score", "discount_pct", "referrals"]
ALL_FEATURES = BASE_FEATURES + NEW_FEATURES


def churn_frame(n_rows: int = 5000, seed: int = 0) -> pd.DataFrame:
    """The 52 features plus the ``churned`` label, deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 73, n_rows)
    monthly = np.round(rng.normal(65, 20, n_rows).clip(15, 150), 2)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n_rows, p=[0.55, 0.25, 0.2])
    support = rng.poisson(1.5, n_rows)
    frame = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": np.round(monthly * tenure * rng.uniform(0.9, 1.1, n_rows), 2),
            "support_calls": support,
            "num_products": rng.integers(1, 6, n_rows),
            "age": rng.integers(18, 90, n_rows),
            "late_payments": rng.poisson(0.4, n_rows),
            "paperless_billing": rng.integers(0, 2, n_rows),
            "contract": contract,
            "region": rng.choice(["north", "south", "east", "west"], n_rows),
            "payment_method": rng.choice(["card", "bank", "check", "wallet"], n_rows),
            "plan": rng.choice(["basic", "plus", "premium"], n_rows, p=[0.5, 0.35, 0.15]),
        }
    )
    usage = rng.gamma(2.0, 5.0, (n_rows, len(WEEKS))) * (1 + tenure[:, None] / 72)
    frame = pd.concat([frame, pd.DataFrame(np.round(usage, 3), columns=WEEKS)], axis=1)
    frame["app_sessions_30d"] = rng.poisson(12, n_rows)
    frame["days_since_last_login"] = rng.integers(0, 60, n_rows)
    frame["nps_score"] = rng.integers(0, 11, n_rows)
    frame["discount_pct"] = np.round(rng.uniform(0, 30, n_rows), 1)
    frame["referrals"] = rng.poisson(0.3, n_rows)
    tail = (contract == "month-to-month") & (support >= 3)
    logit = (
        -1.5
        + 1.2 * (contract == "month-to-month")
        - 0.03 * tenure
        + 0.015 * (monthly - 65)
        + 0.35 * support
        + 1.5 * tail
        - 0.05 * frame["nps_score"].to_numpy()
        + 0.02 * frame["days_since_last_login"].to_numpy()
    )
    frame[TARGET] = (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    return frame


def churn_pipeline(features: list[str], seed: int = 0) -> object:
    """An unfitted scikit-learn pipeline for ``features``: one-hot categoricals + boosted trees."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    categorical = [c for c in features if c in CATEGORICAL]
    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    return Pipeline([("encode", encode), ("model", HistGradientBoostingClassifier(max_iter=60, random_state=seed))])
