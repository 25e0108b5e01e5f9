"""
The ``runs`` and ``run_steps`` tables: a run from queued to finished, and the steps it executed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dbt_cloud_local.model.records import RunRecord, StepRecord
from dbt_cloud_local.model.statuses import QUEUED, RUNNING
from dbt_cloud_local.store.sqlite import Database, decoded, utcnow

#: Sort keys the runs list accepts (``-`` prefix for descending): the spec's ``id``, ``created_at`` and
#: ``finished_at``, and ``updated_at``, ``status``.
RUN_ORDER_FIELDS = frozenset({"id", "created_at", "finished_at", "updated_at", "status"})


@dataclass(frozen=True)
class RunFilter:
    """
    Which runs a list keeps; a field left None keeps every run, an empty set none. Timestamps are
    ISO strings in UTC in the store's form (``utcnow``), so they compare as text; a range keeps both
    ends, either of which may be open (None), and never a run without that timestamp.
    """

    ids: frozenset[int] | None = None
    id_above: int | None = None
    job_ids: frozenset[int] | None = None
    project_ids: frozenset[int] | None = None
    environment_ids: frozenset[int] | None = None
    statuses: frozenset[int] | None = None
    created: tuple[str | None, str | None] | None = None
    finished: tuple[str | None, str | None] | None = None
    has_docs_generated: bool | None = None
    has_sources_generated: bool | None = None
    #: A filter no run can match (e.g. ``deferring_run_id``: no local run defers to another).
    nothing: bool = False

    def where(self) -> tuple[list[str], list[Any]]:
        """SQL conditions and their parameters."""
        where: list[str] = ["0"] if self.nothing else []
        params: list[Any] = []
        for column, allowed in (
            ("id", self.ids),
            ("job_id", self.job_ids),
            ("project_id", self.project_ids),
            ("environment_id", self.environment_ids),
            ("status", self.statuses),
        ):
            if allowed is not None:
                where.append(f"{column} IN ({', '.join('?' for _ in allowed)})" if allowed else "0")
                params.extend(sorted(allowed))
        if self.id_above is not None:
            where.append("id > ?")
            params.append(self.id_above)
        for column, bounds in (("created_at", self.created), ("finished_at", self.finished)):
            if bounds is not None:
                where.append(f"{column} IS NOT NULL")
                for operator, bound in zip((">=", "<="), bounds, strict=True):
                    if bound is not None:
                        where.append(f"{column} {operator} ?")
                        params.append(bound)
        for column, flag in (
            ("has_docs_generated", self.has_docs_generated),
            ("has_sources_generated", self.has_sources_generated),
        ):
            if flag is not None:
                where.append(f"{column} = ?")
                params.append(int(flag))
        return where, params


class RunRows(Database):
    """Runs and their steps, as dicts for the API and as typed records for the run engine."""

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
        return decoded(self._conn().execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())

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
        filters: RunFilter = RunFilter(),
        order_by: str = "id",
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the account's runs that ``filters`` keep, and how many it keeps in all."""
        conditions, params = filters.where()
        where, params = ["account_id = ?", *conditions], [account_id, *params]
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
        return [decoded(row) for row in rows], total  # type: ignore[misc]

    def latest_run_for_job(self, job_id: int) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM runs WHERE job_id = ? ORDER BY id DESC LIMIT 1", (job_id,))
        return decoded(row.fetchone())

    def runs_with_status(self, statuses: Iterable[int]) -> list[dict[str, Any]]:
        statuses = tuple(statuses)
        marks = ", ".join("?" for _ in statuses)
        rows = self._conn().execute(
            f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY id",  # noqa: S608
            statuses,
        )
        return [decoded(row) for row in rows.fetchall()]  # type: ignore[misc]

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

    # Steps: each run's executed steps, in order ----------------------------------------------------

    def add_step(self, run_id: int, index: int, name: str, command: str, args: list[str]) -> dict[str, Any]:
        now = utcnow()
        with self._write() as conn:
            cursor = conn.execute(
                """INSERT INTO run_steps (run_id, idx, name, command, args, status, created_at, updated_at,
                       started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (run_id, index, name, command, json.dumps(args), RUNNING, now, now, now),
            )
            step_id = cursor.lastrowid
        step = decoded(self._conn().execute("SELECT * FROM run_steps WHERE id = ?", (step_id,)).fetchone())
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
            step = decoded(row)
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
        return decoded(self._conn().execute("SELECT * FROM run_steps WHERE id = ?", (step_id,)).fetchone())
