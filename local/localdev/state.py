"""The one home of local state and the name of each folder in it.

Everything the local paths write (``make demo``, ``make up``, the failure switch, the container
rehearsal) lives under one folder, ``.state/`` by default, moved with ``LOCALDEV_STATE_DIR``. The names
here are the only place the layout is written down in Python; the Makefile, the compose override, the
image's ``include/paths.py`` and the local dbt Cloud's defaults cannot import them, and
``local/tests/test_local_facts.py`` proves they say the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # this package is local/localdev/
STATE_DIR_ENV = "LOCALDEV_STATE_DIR"
DEFAULT_STATE_DIR = REPO_ROOT / ".state"
#: The local dbt Cloud's data dir: its runs, logs, artifacts, environment variables and CA.
DBT_CLOUD_DIR = "dbt-cloud-local"
#: Task data: the DuckDB warehouse, landing files, trained models (include/paths.py's default).
DATA_DIR = "data"
#: The container rehearsal's compose file, Compose binary and Podman socket.
REHEARSAL_DIR = "astro-rehearsal"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$LOCALDEV_STATE_DIR``, else ``.state/`` in the checkout."""
    value = (os.environ if environ is None else environ).get(STATE_DIR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else DEFAULT_STATE_DIR
