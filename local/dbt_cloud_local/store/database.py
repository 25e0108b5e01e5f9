"""
Durable state: runs, run steps, jobs and environment variables in SQLite (``<data-dir>/state.sqlite3``).

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

from dbt_cloud_local.model.env_vars import PROJECT_SCOPE, job_scope
from dbt_cloud_local.model.records import RunRecord, StepRecord
from dbt_cloud_local.model.statuses import QUEUED, RUNNING

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
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    environment_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    state INTEGER NOT NULL,
    definition TEXT NOT NULL,
    seed_key TEXT UNIQUE,
    seeded TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
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
    created_at TEXT,
    updated_at TEXT,
    UNIQUE (project_id, name, environment_id)
);
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    event_types TEXT NOT NULL,
    job_ids TEXT NOT NULL,
    client_url TEXT NOT NULL,
    active INTEGER NOT NULL,
    hmac_secret TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    http_status_code TEXT NOT NULL DEFAULT '0',
    dispatched_at TEXT
);
"""


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
            self._migrate_env_vars()

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

    # Jobs (see store/jobs.py: declared and API-created jobs; ids are never reused) ---------------------

    @staticmethod
    def _job(row: sqlite3.Row | None) -> dict[str, Any] | None:
        if row is None:
            return None
        data = dict(row)
        data["definition"] = json.loads(data["definition"])
        data["seeded"] = json.loads(data["seeded"]) if data["seeded"] is not None else None
        return data

    def insert_job(
        self,
        job_id: int | None,
        *,
        seed_key: str | None = None,
        seeded: Any = None,
        created_at: str | None = None,
        **fields: Any,
    ) -> int:
        """Insert a job (``job_id`` None: the next id); ``fields`` are the jobs columns."""
        now = utcnow()
        with self._write() as conn:
            cursor = conn.execute(
                """INSERT INTO jobs (id, account_id, project_id, environment_id, name, state, definition,
                       seed_key, seeded, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    job_id,
                    fields["account_id"],
                    fields["project_id"],
                    fields["environment_id"],
                    fields["name"],
                    fields["state"],
                    json.dumps(fields["definition"]),
                    seed_key,
                    None if seeded is None else json.dumps(seeded),
                    created_at or now,
                    now,
                ),
            )
            return int(cursor.lastrowid or 0)

    def update_job(self, job_id: int, *, touch: bool = True, **fields: Any) -> None:
        """Change a job's columns; ``touch`` moves ``updated_at`` (not for bookkeeping-only writes)."""
        encoded = {
            name: json.dumps(value) if name in ("definition", "seeded") else value
            for name, value in fields.items()
        }
        if touch:
            encoded["updated_at"] = utcnow()
        columns = ", ".join(f'"{name}" = ?' for name in encoded)
        with self._write() as conn:
            conn.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*encoded.values(), job_id))  # noqa: S608

    def job_row(self, job_id: int) -> dict[str, Any] | None:
        return self._job(self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def job_row_by_seed_key(self, seed_key: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE seed_key = ?", (seed_key,)).fetchone()
        return self._job(row)

    def job_rows(self) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT * FROM jobs ORDER BY id").fetchall()
        return [self._job(row) for row in rows]  # type: ignore[misc]

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

    def _migrate_env_vars(self) -> None:
        """State written before env var timestamps existed: add the columns, dated now."""
        conn = self._conn()
        columns = {row[1] for row in conn.execute("PRAGMA table_info(env_vars)").fetchall()}
        for column in ("created_at", "updated_at"):
            if column not in columns:
                conn.execute(f"ALTER TABLE env_vars ADD COLUMN {column} TEXT")
                conn.execute(f"UPDATE env_vars SET {column} = ?", (utcnow(),))  # noqa: S608 - constant names

    def env_var_row(self, project_id: int, env_var_id: int) -> dict[str, Any] | None:
        return _row(
            self._conn()
            .execute("SELECT * FROM env_vars WHERE project_id = ? AND id = ?", (project_id, env_var_id))
            .fetchone()
        )

    def delete_env_var_row(self, project_id: int, env_var_id: int) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM env_vars WHERE project_id = ? AND id = ?", (project_id, env_var_id)
            )
            return cursor.rowcount > 0

    def env_vars(self, project_id: int) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT * FROM env_vars WHERE project_id = ? ORDER BY name, environment_id", (project_id,)
        )
        return [dict(row) for row in rows.fetchall()]

    def set_env_var(self, project_id: int, name: str, environment_id: int, value: str) -> int:
        with self._write() as conn:
            conn.execute(
                """INSERT INTO env_vars (project_id, name, environment_id, value, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (project_id, name, environment_id)
                   DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at""",
                (project_id, name, environment_id, value, utcnow(), utcnow()),
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

    def resolved_env_vars(
        self, project_id: int, environment_id: int, job_id: int | None = None
    ) -> dict[str, str]:
        """
        Values a run of ``job_id`` in ``environment_id`` sees, by dbt Cloud's precedence: the job's
        override, else the environment's value, else the project default.
        """
        rank = {PROJECT_SCOPE: 0, environment_id: 1}
        if job_id is not None:
            rank[job_scope(job_id)] = 2
        chosen: dict[str, tuple[int, str]] = {}
        for row in self.env_vars(project_id):
            level = rank.get(row["environment_id"])
            if level is not None and level >= chosen.get(row["name"], (-1, ""))[0]:
                chosen[row["name"]] = (level, row["value"])
        return {name: value for name, (_, value) in chosen.items()}

    # Webhook subscriptions (dbt Cloud's v3 webhooks; see webhooks/) --------------------------

    def _subscription(self, row: sqlite3.Row | None) -> dict[str, Any] | None:
        if row is None:
            return None
        data = dict(row)
        data["event_types"] = json.loads(data["event_types"])
        data["job_ids"] = json.loads(data["job_ids"])
        data["active"] = bool(data["active"])
        return data

    def create_subscription(self, subscription_id: str, account_id: int, fields: dict[str, Any]) -> None:
        """Insert a subscription; ``fields`` holds name, description, event_types, job_ids,
        client_url, active and hmac_secret."""
        now = utcnow()
        with self._write() as conn:
            conn.execute(
                """INSERT INTO webhook_subscriptions (id, account_id, name, description, event_types,
                       job_ids, client_url, active, hmac_secret, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    subscription_id,
                    account_id,
                    fields["name"],
                    fields.get("description") or "",
                    json.dumps(fields["event_types"]),
                    json.dumps(fields["job_ids"]),
                    fields["client_url"],
                    int(fields["active"]),
                    fields["hmac_secret"],
                    now,
                    now,
                ),
            )

    def get_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM webhook_subscriptions WHERE id = ?", (subscription_id,))
        return self._subscription(row.fetchone())

    def list_subscriptions(self, account_id: int) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT * FROM webhook_subscriptions WHERE account_id = ? ORDER BY created_at, id", (account_id,)
        )
        return [self._subscription(row) for row in rows.fetchall()]  # type: ignore[misc]

    def update_subscription(self, subscription_id: str, **fields: Any) -> bool:
        """Change a subscription's columns (lists are stored as JSON); False if it does not exist."""
        encoded = {
            name: json.dumps(value) if name in ("event_types", "job_ids") else value
            for name, value in fields.items()
        }
        encoded["updated_at"] = utcnow()
        columns = ", ".join(f'"{name}" = ?' for name in encoded)
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE webhook_subscriptions SET {columns} WHERE id = ?",  # noqa: S608
                (*encoded.values(), subscription_id),
            )
            return cursor.rowcount == 1

    def record_dispatch(self, subscription_id: str, http_status_code: int) -> None:
        """Remember the latest delivery's HTTP status (0: no answer) and time, as dbt Cloud shows them."""
        with self._write() as conn:
            conn.execute(
                "UPDATE webhook_subscriptions SET http_status_code = ?, dispatched_at = ? WHERE id = ?",
                (str(http_status_code), utcnow(), subscription_id),
            )

    def delete_subscription(self, subscription_id: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM webhook_subscriptions WHERE id = ?", (subscription_id,))
            return cursor.rowcount == 1
