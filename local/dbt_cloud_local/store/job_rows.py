"""
The ``jobs`` table: declared and API-created jobs (ids are never reused); ``store.jobs`` reads and
writes jobs through it.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from dbt_cloud_local.store.sqlite import Database, utcnow


class JobRows(Database):
    """Job rows, their definition and last seeded declaration decoded from JSON."""

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
