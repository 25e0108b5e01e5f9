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
#: Environment variable that moves all task data at once (the local stack points it into its state).
DATA_DIR_ENV = "ELTML_DATA_DIR"
#: The warehouse file within the data folder; JAFFLE_SHOP_WAREHOUSE moves it (the local dbt Cloud reads it).
WAREHOUSE_FILE = Path("warehouse") / "jaffle_shop.duckdb"


def data_dir() -> Path:
    """The folder all task data lives under, unless a path below is moved on its own."""
    return _from_env(DATA_DIR_ENV, PROJECT_ROOT / ".state" / "data")


def warehouse_path() -> Path:
    """The DuckDB file that the load task writes, dbt transforms and the ML step reads."""
    return _from_env("JAFFLE_SHOP_WAREHOUSE", data_dir() / WAREHOUSE_FILE)


def landing_dir() -> Path:
    """Where the extract task lands raw files, one sub-folder per DAG run."""
    return _from_env("ELTML_LANDING_DIR", data_dir() / "landing")


def ml_models_dir() -> Path:
    """Where the ML step writes each trained model and its metrics."""
    return _from_env("ELTML_MODELS_DIR", data_dir() / "ml_models")


def _from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default
