"""Parse the project's DAG files the way the dag-processor does, with external access forbidden.

A DAG file is parsed every few seconds by every scheduler/dag-processor: any network call, metadata-DB
query, Variable or Connection lookup at module level runs at every parse, slows the whole deployment
and breaks when that service is down. Parsing here with all of those turned into errors proves that
no DAG file does any of them at top level.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT_ROOT / "dags"


class ForbiddenAtParseTimeError(RuntimeError):
    """Raised when a DAG file touches the network, the metadata DB, a Variable or a Connection."""


def _forbid(what: str):
    def refuse(*_args, **_kwargs):
        raise ForbiddenAtParseTimeError(f"{what} at DAG parse time: move it inside a task.")

    return refuse


@contextlib.contextmanager
def external_access_forbidden() -> Iterator[None]:
    """Make network, metadata-DB, Variable and Connection access raise while the block runs."""
    from airflow.sdk import BaseHook, Connection, Variable
    from sqlalchemy.engine import Engine

    patches = [
        mock.patch.object(socket.socket, "connect", _forbid("Network access")),
        mock.patch.object(socket.socket, "connect_ex", _forbid("Network access")),
        mock.patch.object(socket, "getaddrinfo", _forbid("DNS lookup")),
        mock.patch.object(Engine, "connect", _forbid("Metadata DB access")),
        mock.patch.object(Variable, "get", _forbid("Variable.get")),
        mock.patch.object(Connection, "get", _forbid("Connection.get")),
        mock.patch.object(BaseHook, "get_connection", _forbid("BaseHook.get_connection")),
    ]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield


def parse_dags(dag_folder: Path = DAGS_FOLDER):
    """Return a DagBag of ``dag_folder`` parsed with external access forbidden.

    ``include_examples`` is not passed: Airflow 3.3 removed it (``[core] load_examples`` decides).
    """
    from airflow.models import DagBag

    with external_access_forbidden():
        return DagBag(dag_folder=str(dag_folder))
