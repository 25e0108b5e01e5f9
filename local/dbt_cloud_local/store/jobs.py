"""
Jobs: the one place every part of the server gets a job from, declared or created through the API.

Where jobs come from:

* declarations: config.yml's ``jobs:`` (explicit ids) and the dbt-jobs-as-code file that its
  ``jobs_as_code:`` names (see config/jobs_as_code.py; ids follow in file order);
* the API: ``POST /api/v2/accounts/{a}/jobs/`` creates a job, ``POST .../jobs/{id}/`` changes it and
  ``DELETE .../jobs/{id}/`` deletes it the way dbt Cloud does, by setting its state to 2 (its runs
  stay readable; it leaves the job list and cannot be triggered).

How the two interact, applied at every start by :meth:`JobRepository.seed`:

* the store's ``jobs`` table is the source of truth while the server runs. Every read goes there, so
  a change is visible to the next request, the provider's ``get_job_by_name`` and the run pages at once;
* a declaration the store has never seen is inserted, with its declared id when that id is free;
* a declared job that nobody changed through the API since it was seeded follows its declaration:
  edit config.yml or the jobs file, restart, and the change applies (a removed declaration deletes
  the job);
* a declared job changed through the API (``dbt-jobs-as-code sync`` included) keeps the API's version
  across restarts, and the start log says that its declaration differs. Once the two agree again
  (e.g. after a ``sync`` of the same file), the declaration is followed again;
* jobs created through the API are kept across restarts.

``Config.jobs`` of a serving server is a :class:`JobRepository` (``attach``), so the run manager, the
serializers and the pages read jobs through it without knowing where they come from. What a job's
definition may hold, and its defaults, is :mod:`dbt_cloud_local.model.job_definition`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from dbt_cloud_local.config.settings import Config, ConfigError
from dbt_cloud_local.model import fields
from dbt_cloud_local.model.fields import FieldError
from dbt_cloud_local.model.job_definition import (
    ACTIVE,
    DEFAULTS,
    DELETED,
    MAX_NAME_LENGTH,
    complete,
    definition_of,
    merge_definition,
)
from dbt_cloud_local.model.resources import Job
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.store.env_vars import job_overrides, set_job_overrides

log = logging.getLogger("dbt_cloud_local.jobs")


def job_from_row(row: Mapping[str, Any]) -> Job:
    """A stored row as the ``Job`` runs read. Target ``default`` (dbt Cloud's default name) means the
    profile's own target, since the local profile names its target itself."""
    definition = complete(row["definition"])
    settings = definition["settings"]
    target = settings.get("target_name")
    return Job(
        id=row["id"],
        account_id=row["account_id"],
        project_id=row["project_id"],
        environment_id=row["environment_id"],
        name=row["name"],
        description=definition["description"],
        execute_steps=tuple(definition["execute_steps"]),
        generate_docs=definition["generate_docs"],
        run_generate_sources=definition["run_generate_sources"],
        threads=settings.get("threads"),
        target_name=None if target in (None, "default") else target,
        timeout_seconds=definition["execution"]["timeout_seconds"] or 0,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        state=row["state"],
        definition=definition,
        seed_key=row["seed_key"],
    )


class JobRepository(Mapping[int, Job]):
    """
    Every job of the store, deleted ones included (runs keep pointing at them), as a read-only mapping
    by id; :meth:`active` and :meth:`find` are what API look-ups use. Writes validate first, then
    store, so a refused request changes nothing.
    """

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store

    # Mapping: every job, by id ---------------------------------------------------------------------

    def __getitem__(self, job_id: int) -> Job:
        row = self.store.job_row(job_id) if fields.is_integer(job_id) else None
        if row is None:
            raise KeyError(job_id)
        return job_from_row(row)

    def __iter__(self) -> Iterator[int]:
        return iter([row["id"] for row in self.store.job_rows()])

    def __len__(self) -> int:
        return len(self.store.job_rows())

    def values(self) -> list[Job]:  # type: ignore[override]  # one query, not one per job
        return [job_from_row(row) for row in self.store.job_rows()]

    # Look-ups ------------------------------------------------------------------------------------

    def find(self, account_id: int, job_id: int) -> Job | None:
        """The active job ``job_id`` of ``account_id``, or None (unknown, other account, deleted)."""
        row = self.store.job_row(job_id)
        if row is None or row["account_id"] != account_id or row["state"] != ACTIVE:
            return None
        return job_from_row(row)

    def active(self, account_id: int | None = None) -> list[Job]:
        return [
            job
            for job in self.values()
            if job.state == ACTIVE and (account_id is None or job.account_id == account_id)
        ]

    # Writes --------------------------------------------------------------------------------------

    def _placement(self, account_id: int, body: Mapping[str, Any], current: Job | None) -> tuple[int, int]:
        """(project_id, environment_id) of a create or update, checked against the account's config."""
        if body.get("account_id") is not None and body["account_id"] != account_id:
            raise FieldError(
                "account_id",
                f"is {body['account_id']!r} but the URL names account {account_id}"[:200],
                "send the account id of the URL, or leave account_id out",
            )
        environment_id = body.get("environment_id", current.environment_id if current else None)
        environment_id = fields.integer(environment_id, "environment_id", minimum=1)
        environment = self.config.environments.get(environment_id)
        if environment is None or environment.account_id != account_id:
            known = sorted(
                env.id for env in self.config.environments.values() if env.account_id == account_id
            )
            raise FieldError(
                "environment_id", f"names unknown environment {environment_id}", f"use one of {known}"
            )
        project_id = body.get("project_id", environment.project_id)
        project_id = fields.integer(project_id, "project_id", minimum=1)
        if project_id != environment.project_id:
            raise FieldError(
                "project_id",
                f"is {project_id} but environment {environment_id} belongs to project "
                f"{environment.project_id}",
                f"send project_id {environment.project_id}",
            )
        return project_id, environment_id

    def create(self, account_id: int, body: Mapping[str, Any]) -> Job:
        """
        ``POST .../jobs/``: ``name`` and ``environment_id`` are required (``project_id`` and
        ``account_id``, when sent, must match them); every field not sent gets dbt Cloud's default
        (``job_definition.DEFAULTS``), as dbt Cloud accepts a job of only account, project,
        environment and name (dagster-dbt creates its ad hoc jobs so, and runs them with
        ``steps_override``). A job without commands runs dbt Cloud's built-in steps only.
        """
        for key in ("name", "environment_id"):
            if body.get(key) is None:
                raise FieldError(key, "is required to create a job", f"send {key}")
        project_id, environment_id = self._placement(account_id, body, None)
        name = fields.text(body["name"], "name", maximum=MAX_NAME_LENGTH, allow_empty=False)
        definition = merge_definition(body, DEFAULTS)
        if body.get("state", ACTIVE) not in (ACTIVE, DELETED):
            raise FieldError("state", f"is {body.get('state')!r}"[:200], "use 1 (active) or 2 (deleted)")
        job_id = self.store.insert_job(
            None,
            account_id=account_id,
            project_id=project_id,
            environment_id=environment_id,
            name=name,
            state=body.get("state", ACTIVE),
            definition=definition,
        )
        return self[job_id]

    def update(self, job: Job, body: Mapping[str, Any]) -> Job:
        """``POST .../jobs/{id}/``: the fields given replace the job's; ``state: 2`` deletes it."""
        project_id, environment_id = self._placement(job.account_id, body, job)
        name = job.name
        if "name" in body:
            name = fields.text(body["name"], "name", maximum=MAX_NAME_LENGTH, allow_empty=False)
        state = body.get("state") if body.get("state") is not None else job.state
        if state not in (ACTIVE, DELETED):
            raise FieldError("state", f"is {state!r}"[:200], "use 1 (active) or 2 (deleted)")
        definition = merge_definition(body, definition_of(job))
        self.store.update_job(
            job.id,
            project_id=project_id,
            environment_id=environment_id,
            name=name,
            state=state,
            definition=definition,
        )
        return self[job.id]

    def delete(self, job: Job) -> Job:
        """``DELETE .../jobs/{id}/``: dbt Cloud's soft delete (state 2)."""
        self.store.update_job(job.id, state=DELETED)
        return self[job.id]

    # Declarations --------------------------------------------------------------------------------

    def seed(self, declared: Mapping[int, Job]) -> None:
        """Apply the declarations at start, by the rules of this module's docstring."""
        keys = set()
        for job in declared.values():
            assert job.seed_key is not None
            keys.add(job.seed_key)
            wanted = _declared_state(job)
            # The job's env var overrides are part of its declared state (compared, remembered in
            # ``seeded``) but live in the env_vars table, not in the jobs columns.
            overrides = dict(job.env_overrides)
            seeded = {**wanted, "env_overrides": overrides}
            row = self.store.job_row_by_seed_key(job.seed_key)
            if row is None:
                job_id = self._insert_declared(job, wanted, seeded)
                set_job_overrides(self.store, job.project_id, job_id, overrides)
                continue
            current = self._stored_with_overrides(row)
            if current == seeded:
                self.store.update_job(row["id"], touch=False, seeded=seeded)
            elif current == _seeded_of(row):
                self.store.update_job(row["id"], seeded=seeded, **wanted)
                if current["env_overrides"] != overrides:
                    set_job_overrides(self.store, job.project_id, row["id"], overrides)
                log.info("Job %s (%s) follows its changed declaration", row["id"], job.seed_key)
            else:
                log.warning(
                    "Job %s (%s) was changed through the API; it keeps that version, not its declaration "
                    "(run `make jobs-plan` to see the difference, `make jobs-sync` to apply the file)",
                    row["id"],
                    job.seed_key,
                )
        for row in self.store.job_rows():
            gone = row["seed_key"] is not None and row["seed_key"] not in keys and row["state"] == ACTIVE
            if gone and self._stored_with_overrides(row) == _seeded_of(row):
                deleted = {**_seeded_of(row), "state": DELETED}
                self.store.update_job(row["id"], state=DELETED, seeded=deleted)
                log.info("Job %s (%s) is no longer declared: deleted (state 2)", row["id"], row["seed_key"])

    def _stored_with_overrides(self, row: Mapping[str, Any]) -> dict[str, Any]:
        overrides = job_overrides(self.store, row["project_id"], row["id"])
        return {**_stored_state(row), "env_overrides": overrides}

    def _insert_declared(self, job: Job, wanted: dict[str, Any], seeded: dict[str, Any]) -> int:
        taken = self.store.job_row(job.id)
        if taken is not None and job.seed_key and job.seed_key.startswith("config:"):
            raise ConfigError(
                f"config key `jobs`: job id {job.id} is already used by job {taken['name']!r}, which was "
                "created through the API. Fix: give the config job another id."
            )
        return self.store.insert_job(
            None if taken is not None else job.id,
            seed_key=job.seed_key,
            seeded=seeded,
            created_at=job.created_at,
            **wanted,
        )


def _declared_state(job: Job) -> dict[str, Any]:
    return {
        "account_id": job.account_id,
        "project_id": job.project_id,
        "environment_id": job.environment_id,
        "name": job.name,
        "state": ACTIVE,
        "definition": definition_of(job),
    }


def _seeded_of(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The declared state last seeded (state written before job overrides existed: none)."""
    return None if row["seeded"] is None else {"env_overrides": {}, **row["seeded"]}


def _stored_state(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "account_id": row["account_id"],
        "project_id": row["project_id"],
        "environment_id": row["environment_id"],
        "name": row["name"],
        "state": row["state"],
        "definition": merge_definition(row["definition"], DEFAULTS),
    }


def attach(config: Config, store: Store) -> Config:
    """Seed the declared jobs into ``store`` and return ``config`` reading its jobs from there."""
    repository = JobRepository(config, store)
    repository.seed(config.jobs)
    return replace(config, jobs=repository)


def repository_of(config: Config) -> JobRepository:
    """The live repository of a serving server's config (``attach`` put it there)."""
    jobs = config.jobs
    if not isinstance(jobs, JobRepository):
        raise TypeError("config.jobs is not a JobRepository: call jobs.attach(config, store) first")
    return jobs
