"""Where the demo pipeline keeps its files, the same on a laptop and in the Astro image.

Paths default to folders under the project root (``/usr/local/airflow`` in the image, where
``include/`` is mounted into every Airflow container and the local dbt Cloud service) and can be
moved with environment variables. They are read when a task runs, never when a DAG file is parsed.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def warehouse_path() -> Path:
    """The DuckDB file that the load task writes, dbt transforms and the ML step reads."""
    return _from_env("JAFFLE_SHOP_WAREHOUSE", PROJECT_ROOT / "include" / "warehouse" / "jaffle_shop.duckdb")


def landing_dir() -> Path:
    """Where the extract task lands raw files, one sub-folder per DAG run."""
    return _from_env("ELTML_LANDING_DIR", PROJECT_ROOT / "include" / "landing")


def ml_models_dir() -> Path:
    """Where the ML step writes each trained model and its metrics."""
    return _from_env("ELTML_MODELS_DIR", PROJECT_ROOT / "include" / "ml_models")


def _from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default
