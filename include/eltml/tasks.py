"""The callables behind the eltml DAG's tasks: resolve paths, call the logic, log what happened.

They take and return only small JSON-able values (file paths, row counts, metrics), which is what
ends up in XCom: never data, never credentials.
"""

from __future__ import annotations

import logging
import re

from include import paths
from include.eltml.extract import write_landing_files
from include.eltml.load import load_files_into_warehouse
from include.eltml.raw_data import generate_raw_data

log = logging.getLogger(__name__)


def extract_raw_files(run_id: str) -> dict[str, str]:
    """Land the source rows for this DAG run as CSV files; return ``{table: path}``."""
    landing = paths.landing_dir() / _safe_folder_name(run_id)
    files = write_landing_files(generate_raw_data(), landing)
    log.info("Landed %d raw files in %s", len(files), landing)
    return files


def load_raw_files(files: dict[str, str]) -> dict[str, int]:
    """Replace the warehouse's raw tables with the landed files; return row counts."""
    warehouse = paths.warehouse_path()
    counts = load_files_into_warehouse(warehouse, files)
    for table, count in counts.items():
        log.info("Loaded raw.%s: %d rows into %s", table, count, warehouse)
    return counts


def train_churn_model(run_id: str) -> dict[str, float]:
    """Train the churn model on the dbt mart; return its evaluation metrics."""
    from include.eltml.ml import train_and_save

    result = train_and_save(paths.warehouse_path(), paths.ml_models_dir() / _safe_folder_name(run_id))
    for name, value in result.metrics.items():
        log.info("ML metric %s = %.4f", name, value)
    log.info("Saved model to %s", result.model_path)
    return result.metrics


def _safe_folder_name(run_id: str) -> str:
    """Run ids hold ':' and '+' (``manual__2025-01-01T00:00:00+00:00``); keep folder names portable."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)
