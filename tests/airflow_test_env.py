"""The test session's Airflow: an isolated home, the project's DAGs, and the project's import roots.

Airflow reads its configuration when first imported, so this runs when the conftest imports it, before
any test module imports Airflow. Both test trees share it: ``tests/`` (what the Astro image runs,
``astro dev pytest``) and ``local/tests/`` (the suites that need the local dbt Cloud, dbt or the
no-Docker stack). Imported once per process, so running both trees in one session sets it up once.
Nothing here may import local-only code: it runs in the image.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Import roots: the project (`import include.…`, as on the Astro image's PYTHONPATH) and `local/`, the
# code that only runs on your machine (absent in the image). Subprocesses inherit them through PYTHONPATH.
IMPORT_ROOTS = [str(PROJECT_ROOT), str(PROJECT_ROOT / "local")]
os.environ["PYTHONPATH"] = os.pathsep.join(
    dict.fromkeys([*IMPORT_ROOTS, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
)

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-tests-")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# A fresh home would otherwise point the metadata DB at the Makefile's or the image's database.
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB in the session's AIRFLOW_HOME (for dag.test() and seeding)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"airflow db migrate failed:\n{result.stdout}\n{result.stderr}"
    return Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
