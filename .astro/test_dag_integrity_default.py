"""The parse check behind `astro dev parse`, adapted to Airflow 3.3.

The Astro CLI's generated version builds `DagBag(include_examples=False)`, which raises TypeError on
Airflow 3.3 (the argument was removed; `[core] load_examples` decides). This one parses the DAGs
folder without it, answers Connection and Variable lookups with placeholders (as the CLI's version
does, so that a DAG reading them with defaults still parses), and reports each file's import error.
Paths listed in .astro/dag_integrity_exceptions.txt (relative to the project root) are exempt.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXCEPTIONS_FILE = Path(__file__).with_name("dag_integrity_exceptions.txt")


def _exempt_paths() -> set[str]:
    if not EXCEPTIONS_FILE.exists():
        return set()
    lines = (line.strip() for line in EXCEPTIONS_FILE.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def _placeholder_variable(key, default=None, deserialize_json=False, **kwargs):
    default = kwargs.get("default_var", default)
    if default is not None:
        return default
    return {} if deserialize_json else f"MOCKED_{key}_VALUE"


def _placeholder_connection(conn_id, *_args, **_kwargs):
    from airflow.sdk import Connection

    return Connection(conn_id=conn_id, conn_type="generic")


@contextmanager
def _quiet_placeholders():
    from airflow.sdk import BaseHook, Connection, Variable

    logging.getLogger("airflow").disabled = True
    with (
        mock.patch.object(Variable, "get", staticmethod(_placeholder_variable)),
        mock.patch.object(Connection, "get", staticmethod(_placeholder_connection)),
        mock.patch.object(BaseHook, "get_connection", staticmethod(_placeholder_connection)),
    ):
        yield
    logging.getLogger("airflow").disabled = False


def _import_results() -> list[tuple[str, str | None]]:
    from airflow.configuration import conf
    from airflow.models import DagBag

    dags_folder = Path(conf.get("core", "dags_folder"))
    with _quiet_placeholders():
        bag = DagBag(dag_folder=str(dags_folder))
    results: list[tuple[str, str | None]] = [
        (os.path.relpath(path, PROJECT_ROOT), message.strip()) for path, message in bag.import_errors.items()
    ]
    results += [(os.path.relpath(dag.fileloc, PROJECT_ROOT), None) for dag in bag.dags.values()]
    return sorted(set(results), key=lambda item: (item[0], item[1] or ""))


@pytest.mark.parametrize(("rel_path", "error"), _import_results(), ids=lambda value: value or "ok")
def test_file_imports(rel_path, error):
    if error and rel_path not in _exempt_paths():
        raise AssertionError(f"{rel_path} failed to import with message\n{error}")
