"""Where the demo pipeline keeps its files, the same on a laptop and in the Astro image.

Runtime data never lands in ``include/`` (code, bind-mounted read-write from your checkout by
``astro dev start``, where the image's ``astro`` user often cannot write on native Linux Docker).
It defaults to ``.state/data/`` under the project root: git-ignored on a laptop, and in the
containers (``/usr/local/airflow/.state/data``) a named volume that the Airflow services and the
local dbt Cloud share (docker-compose.override.yml). Each path moves with an environment variable.
They are read when a task runs, never when a DAG file is parsed.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / ".state" / "data"


def warehouse_path() -> Path:
    """The DuckDB file that the load task writes, dbt transforms and the ML step reads."""
    return _from_env("JAFFLE_SHOP_WAREHOUSE", DATA_DIR / "warehouse" / "jaffle_shop.duckdb")


def landing_dir() -> Path:
    """Where the extract task lands raw files, one sub-folder per DAG run."""
    return _from_env("ELTML_LANDING_DIR", DATA_DIR / "landing")


def ml_models_dir() -> Path:
    """Where the ML step writes each trained model and its metrics."""
    return _from_env("ELTML_MODELS_DIR", DATA_DIR / "ml_models")


def _from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default
