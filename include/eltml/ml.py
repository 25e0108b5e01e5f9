"""ML step: fit a repeat-purchase (churn) classifier on the ``customer_features`` dbt mart.

Deliberately small but honest: features were computed by dbt from data up to a cutoff and the label
from the window after it (no leakage), the model is scored on a held-out split it never saw, and the
metrics include a no-skill baseline so a reader can tell whether the model learned anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FEATURES_TABLE = "main.customer_features"
LABEL = "label_purchased_in_window"
NUMERIC_FEATURES = [
    "tenure_days",
    "orders_before_cutoff",
    "returned_orders",
    "value_before_cutoff",
    "avg_order_value",
    "voucher_share",
    "days_since_last_order",
]
CATEGORICAL_FEATURES = ["country_code"]
RANDOM_STATE = 7


class TrainingDataError(RuntimeError):
    """The mart the model trains on is missing or unusable."""


@dataclass(frozen=True)
class TrainingResult:
    metrics: dict[str, float]
    model_path: Path
    metrics_path: Path


def read_training_table(warehouse_path: str | Path):
    """Read the features mart into a DataFrame-free (columns, rows) pair via DuckDB."""
    import duckdb

    columns = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, LABEL]
    try:
        with duckdb.connect(str(warehouse_path), read_only=True) as con:
            rows = con.execute(f"SELECT {', '.join(columns)} FROM {FEATURES_TABLE}").fetchall()  # noqa: S608
    except (duckdb.CatalogException, duckdb.IOException) as exc:
        raise TrainingDataError(
            f"Cannot read {FEATURES_TABLE} from {warehouse_path}: {exc}. "
            "The dbt job builds it; check that trigger_dbt_cloud_job_run succeeded."
        ) from exc
    if not rows:
        raise TrainingDataError(f"{FEATURES_TABLE} in {warehouse_path} is empty: nothing to train on.")
    return columns, rows


def train_and_save(warehouse_path: str | Path, output_dir: str | Path) -> TrainingResult:
    """Train on the mart, evaluate on a held-out 25 %, write ``model.joblib`` and ``metrics.json``."""
    import joblib
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    columns, rows = read_training_table(warehouse_path)
    table = np.array(rows, dtype=object)
    features = table[:, :-1]
    labels = table[:, -1].astype(int)
    if len(set(labels)) < 2:
        raise TrainingDataError(f"{LABEL} has a single class in {FEATURES_TABLE}: cannot train a classifier.")
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.25, stratify=labels, random_state=RANDOM_STATE
    )
    n_numeric = len(NUMERIC_FEATURES)
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        ("numeric", "passthrough", list(range(n_numeric))),
                        ("category", OneHotEncoder(handle_unknown="ignore"), [n_numeric]),
                    ],
                    sparse_threshold=0,
                ),
            ),
            ("classify", HistGradientBoostingClassifier(max_iter=200, random_state=RANDOM_STATE)),
        ]
    )
    model.fit(x_train, y_train)
    probabilities = model.predict_proba(x_test)[:, 1]
    majority = int(np.bincount(y_train).argmax())
    metrics = {
        "roc_auc": float(roc_auc_score(y_test, probabilities)),
        "accuracy": float(accuracy_score(y_test, (probabilities >= 0.5).astype(int))),
        "baseline_accuracy": float(accuracy_score(y_test, np.full_like(y_test, majority))),
        "positive_rate": float(labels.mean()),
        "train_rows": float(len(y_train)),
        "test_rows": float(len(y_test)),
    }
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    model_path, metrics_path = output / "model.joblib", output / "metrics.json"
    joblib.dump({"model": model, "features": columns[:-1], "label": LABEL}, model_path)
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return TrainingResult(metrics=metrics, model_path=model_path, metrics_path=metrics_path)
