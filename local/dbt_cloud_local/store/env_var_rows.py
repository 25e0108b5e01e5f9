"""
The ``env_vars`` table: project environment variable values, one row per name and scope
(``model.env_vars``: 0 the project, an environment id, or minus a job id).
"""

from __future__ import annotations

from typing import Any

from dbt_cloud_local.model.env_vars import PROJECT_SCOPE, job_scope
from dbt_cloud_local.store.sqlite import Database, decoded, utcnow


class EnvVarRows(Database):
    """Variable values by scope, and the values a run resolves."""

    def env_var_row(self, project_id: int, env_var_id: int) -> dict[str, Any] | None:
        return decoded(
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
