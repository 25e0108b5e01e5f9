"""
The state database: SQLite in ``<data-dir>/state.sqlite3``, its schema, and how it is reached.

One connection per thread (sqlite3 connections must not be shared across threads) in WAL mode, so
the many concurrent pollers read while a worker writes; writes additionally take a process-wide lock
so that a burst of writers never hits ``database is locked``. Large, append-only data (dbt logs and
artifacts) lives in files under ``<data-dir>/runs/<id>/``, not in the database. The tables' reads and
writes are the ``*_rows`` modules; ``database.Store`` has them all.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def decoded(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    data = dict(row)
    for key in _JSON_COLUMNS & data.keys():
        data[key] = json.loads(data[key])
    return data


class Database:
    """Thread-safe access to the state database, its schema created (and older state migrated) at open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._write_lock:
            self._conn().executescript(_SCHEMA)  # executescript manages its own transaction
            self._migrate()

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

    def _migrate(self) -> None:
        """State written before env var timestamps existed: add the columns, dated now."""
        conn = self._conn()
        columns = {row[1] for row in conn.execute("PRAGMA table_info(env_vars)").fetchall()}
        for column in ("created_at", "updated_at"):
            if column not in columns:
                conn.execute(f"ALTER TABLE env_vars ADD COLUMN {column} TEXT")
                conn.execute(f"UPDATE env_vars SET {column} = ?", (utcnow(),))  # noqa: S608 - constant names
