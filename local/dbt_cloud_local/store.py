"""
Durable state: runs, run steps and environment variables in SQLite (``<data-dir>/state.sqlite3``).

One connection per thread (sqlite3 connections must not be shared across threads) in WAL mode, so
the many concurrent pollers read while a worker writes; writes additionally take a process-wide lock
so that a burst of writers never hits ``database is locked``. Large, append-only data (dbt logs and
artifacts) lives in files under ``<data-dir>/runs/<id>/``, not in the database.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbt_cloud_local.records import RunRecord, StepRecord

QUEUED, STARTING, RUNNING, SUCCESS, ERROR, CANCELLED = 1, 2, 3, 10, 20, 30
IN_FLIGHT = (QUEUED, STARTING, RUNNING)
TERMINAL = (SUCCESS, ERROR, CANCELLED)
STATUS_HUMANIZED = {
    QUEUED: "Queued",
    STARTING: "Starting",
    RUNNING: "Running",
    SUCCESS: "Success",
    ERROR: "Error",
    CANCELLED: "Cancelled",
}

#: Sort keys the runs list accepts (``-`` prefix for descending).
RUN_ORDER_FIELDS = frozenset({"id", "created_at", "finished_at", "updated_at", "status"})
#: JSON columns, decoded when a row is read.
_JSON_COLUMNS = frozenset({"trigger", "plan", "args"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    environment_id INTEGER NOT NULL,
    job_id INTEGER NOT NULL,
    status INTEGER NOT NULL,
    status_message TEXT,
    "trigger" TEXT NOT NULL,
    plan TEXT NOT NULL,
    retry_of_run_id INTEGER,
    git_branch TEXT,
    git_sha TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    dequeued_at TEXT,
    started_at TEXT,
    finished_at TEXT,
    last_heartbeat_at TEXT,
    has_docs_generated INTEGER NOT NULL DEFAULT 0,
    has_sources_generated INTEGER NOT NULL DEFAULT 0,
    artifacts_saved INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_job ON runs (job_id, id);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS run_steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    command TEXT NOT NULL,
    args TEXT NOT NULL,
    status INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    pid INTEGER,
    exit_code INTEGER,
    UNIQUE (run_id, idx)
);
CREATE TABLE IF NOT EXISTS env_vars (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    environment_id INTEGER NOT NULL,
    value TEXT NOT NULL,
    UNIQUE (project_id, name, environment_id)
);
"""

#: ``environment_id`` used for a variable's project-wide default value.
PROJECT_SCOPE = 0


def utcnow() -> str:
    """Current time as an RFC 3339 string (what the OpenAPI spec's ``date-time`` requires)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    data = dict(row)
    for key in _JSON_COLUMNS & data.keys():
        data[key] = json.loads(data[key])
    return data


class Store:
    """Thread-safe access to the state database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._write_lock:
            self._conn().executescript(_SCHEMA)  # executescript manages its own transaction

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (other threads' connections close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # Runs -------------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        account_id: int,
        project_id: int,
        environment_id: int,
        job_id: int,
        trigger: dict[str, Any],
        plan: list[dict[str, Any]],
        git_branch: str | None,
        git_sha: str | None,
        retry_of_run_id: int | None = None,
    ) -> dict[str, Any]:
        now = utcnow()
        with self._write() as conn:
            cursor = conn.execute(
                """INSERT INTO runs (account_id, project_id, environment_id, job_id, status, status_message,
                       "trigger", plan, retry_of_run_id, git_branch, git_sha, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    account_id,
                    project_id,
                    environment_id,
                    job_id,
                    QUEUED,
                    "Waiting for an available run slot",
                    json.dumps(trigger),
                    json.dumps(plan),
                    retry_of_run_id,
                    git_branch,
                    git_sha,
                    now,
                    now,
                ),
            )
            run_id = cursor.lastrowid
        run = self.get_run(run_id)
        assert run is not None
        return run

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        return _row(self._conn().execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())

    def update_run(self, run_id: int, **fields: Any) -> None:
        fields["updated_at"] = utcnow()
        columns = ", ".join(f'"{name}" = ?' for name in fields)
        with self._write() as conn:
            conn.execute(f"UPDATE runs SET {columns} WHERE id = ?", (*fields.values(), run_id))  # noqa: S608

    def transition_run(self, run_id: int, from_statuses: Iterable[int], **fields: Any) -> bool:
        """Update a run only if its status is one of ``from_statuses``; return whether it changed."""
        statuses = tuple(from_statuses)
        fields["updated_at"] = utcnow()
        columns = ", ".join(f'"{name}" = ?' for name in fields)
        marks = ", ".join("?" for _ in statuses)
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE runs SET {columns} WHERE id = ? AND status IN ({marks})",  # noqa: S608
                (*fields.values(), run_id, *statuses),
            )
            return cursor.rowcount == 1

    def list_runs(
        self,
        *,
        account_id: int,
        job_id: int | None = None,
        project_id: int | None = None,
        environment_id: int | None = None,
        statuses: list[int] | None = None,
        order_by: str = "id",
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        where, params = ["account_id = ?"], [account_id]
        for column, value in (
            ("job_id", job_id),
            ("project_id", project_id),
            ("environment_id", environment_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        descending = order_by.startswith("-")
        column = order_by.lstrip("-")
        if column not in RUN_ORDER_FIELDS:
            raise ValueError(f"cannot order runs by {order_by!r}")
        direction = "DESC" if descending else "ASC"
        clause = " AND ".join(where)
        conn = self._conn()
        total = conn.execute(f"SELECT COUNT(*) FROM runs WHERE {clause}", params).fetchone()[0]  # noqa: S608
        rows = conn.execute(
            f"SELECT * FROM runs WHERE {clause} ORDER BY {column} IS NULL, {column} {direction}, "  # noqa: S608
            f"id {direction} LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
        return [_row(row) for row in rows], total  # type: ignore[misc]

    def latest_run_for_job(self, job_id: int) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM runs WHERE job_id = ? ORDER BY id DESC LIMIT 1", (job_id,))
        return _row(row.fetchone())

    def runs_with_status(self, statuses: Iterable[int]) -> list[dict[str, Any]]:
        statuses = tuple(statuses)
        marks = ", ".join("?" for _ in statuses)
        rows = self._conn().execute(
            f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY id",  # noqa: S608
            statuses,
        )
        return [_row(row) for row in rows.fetchall()]  # type: ignore[misc]

    def run_record(self, run_id: int) -> RunRecord | None:
        """``get_run`` as a typed record (for the runner; the API keeps the dict)."""
        row = self.get_run(run_id)
        return RunRecord.from_row(row) if row is not None else None

    def latest_run_record_for_job(self, job_id: int) -> RunRecord | None:
        row = self.latest_run_for_job(job_id)
        return RunRecord.from_row(row) if row is not None else None

    def run_records_with_status(self, statuses: Iterable[int]) -> list[RunRecord]:
        """``runs_with_status`` as typed records, oldest first."""
        return [RunRecord.from_row(row) for row in self.runs_with_status(statuses)]

    def count_runs_for_job(self, job_id: int, status: int) -> int:
        row = self._conn().execute(
            "SELECT COUNT(*) FROM runs WHERE job_id = ? AND status = ?", (job_id, status)
        )
        return row.fetchone()[0]

    # Run steps --------------------------------------------------------------------------------

    def add_step(self, run_id: int, index: int, name: str, command: str, args: list[str]) -> dict[str, Any]:
        now = utcnow()
        with self._write() as conn:
            cursor = conn.execute(
                """INSERT INTO run_steps (run_id, idx, name, command, args, status, created_at, updated_at,
                       started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (run_id, index, name, command, json.dumps(args), RUNNING, now, now, now),
            )
            step_id = cursor.lastrowid
        step = _row(self._conn().execute("SELECT * FROM run_steps WHERE id = ?", (step_id,)).fetchone())
        assert step is not None
        return step

    def update_step(self, step_id: int, **fields: Any) -> None:
        fields["updated_at"] = utcnow()
        columns = ", ".join(f'"{name}" = ?' for name in fields)
        with self._write() as conn:
            conn.execute(f"UPDATE run_steps SET {columns} WHERE id = ?", (*fields.values(), step_id))  # noqa: S608

    def steps_for_runs(self, run_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        result: dict[int, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return result
        marks = ", ".join("?" for _ in run_ids)
        rows = self._conn().execute(
            f"SELECT * FROM run_steps WHERE run_id IN ({marks}) ORDER BY run_id, idx",  # noqa: S608
            run_ids,
        )
        for row in rows.fetchall():
            step = _row(row)
            assert step is not None
            result[step["run_id"]].append(step)
        return result

    def add_step_record(
        self, run_id: int, index: int, name: str, command: str, args: list[str]
    ) -> StepRecord:
        """``add_step`` returning a typed record: the step starts out running."""
        return StepRecord.from_row(self.add_step(run_id, index, name, command, args))

    def step_records(self, run_id: int) -> list[StepRecord]:
        """The steps of one run as typed records, in execution order."""
        return [StepRecord.from_row(row) for row in self.steps_for_runs([run_id])[run_id]]

    def get_step(self, step_id: int) -> dict[str, Any] | None:
        return _row(self._conn().execute("SELECT * FROM run_steps WHERE id = ?", (step_id,)).fetchone())

    # Environment variables --------------------------------------------------------------------

    def env_vars(self, project_id: int) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT * FROM env_vars WHERE project_id = ? ORDER BY name, environment_id", (project_id,)
        )
        return [dict(row) for row in rows.fetchall()]

    def set_env_var(self, project_id: int, name: str, environment_id: int, value: str) -> int:
        with self._write() as conn:
            conn.execute(
                """INSERT INTO env_vars (project_id, name, environment_id, value) VALUES (?, ?, ?, ?)
                   ON CONFLICT (project_id, name, environment_id) DO UPDATE SET value = excluded.value""",
                (project_id, name, environment_id, value),
            )
            row = conn.execute(
                "SELECT id FROM env_vars WHERE project_id = ? AND name = ? AND environment_id = ?",
                (project_id, name, environment_id),
            ).fetchone()
        return row[0]

    def unset_env_var(self, project_id: int, name: str, environment_id: int | None = None) -> int:
        """Delete one scope of a variable, or every scope when ``environment_id`` is None."""
        with self._write() as conn:
            if environment_id is None:
                cursor = conn.execute(
                    "DELETE FROM env_vars WHERE project_id = ? AND name = ?", (project_id, name)
                )
            else:
                cursor = conn.execute(
                    "DELETE FROM env_vars WHERE project_id = ? AND name = ? AND environment_id = ?",
                    (project_id, name, environment_id),
                )
            return cursor.rowcount

    def resolved_env_vars(self, project_id: int, environment_id: int) -> dict[str, str]:
        """Values a run in ``environment_id`` sees: the environment's value, else the project default."""
        values: dict[str, str] = {}
        for row in self.env_vars(project_id):
            if row["environment_id"] == PROJECT_SCOPE:
                values.setdefault(row["name"], row["value"])
        for row in self.env_vars(project_id):
            if row["environment_id"] == environment_id:
                values[row["name"]] = row["value"]
        return values
