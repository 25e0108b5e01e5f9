"""The environment any Airflow process of this project runs with on your machine.

One function, so that ``make demo``, ``make up``, the end-to-end tests and the benchmarks agree on
what the Astro image gives for free: the project and ``local/`` as import roots (``/usr/local/airflow``
on ``PYTHONPATH`` in the image), the DAGs and plugins folders, no example DAGs, and an Airflow home of
their own. Each caller adds what is its own (database, executor, the dbt Cloud connection, data paths).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from include.paths import DATA_DIR_ENV, WAREHOUSE_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]  # this package is local/localdev/
#: `import include.…` (as in the image) and `import dbt_cloud_local`, `import localdev` (local only).
IMPORT_ROOTS = (REPO_ROOT, REPO_ROOT / "local")


def data_environment(data_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Where task data goes, for the Airflow tasks (include/paths.py) and the local dbt Cloud's dbt runs
    alike (its warehouse follows ``JAFFLE_SHOP_WAREHOUSE``), unless ``base`` already moved it."""
    base = os.environ if base is None else base
    folder = base.get(DATA_DIR_ENV) or str(data_dir)
    return {
        DATA_DIR_ENV: folder,
        "JAFFLE_SHOP_WAREHOUSE": base.get("JAFFLE_SHOP_WAREHOUSE") or str(Path(folder) / WAREHOUSE_FILE),
    }


def project_environment(
    airflow_home: Path | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default: this process's environment) with the project's Airflow settings applied.

    Without ``airflow_home`` the caller's ``AIRFLOW_HOME`` stays. A metadata DB URL inherited from the
    caller is dropped: it would point this Airflow at someone else's database.
    """
    env = dict(os.environ if base is None else base)
    inherited = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(dict.fromkeys([*map(str, IMPORT_ROOTS), *inherited])),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    if airflow_home is not None:
        env["AIRFLOW_HOME"] = str(airflow_home)
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    return env
