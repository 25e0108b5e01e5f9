"""
Jobs: the one place every part of the server gets a job from, declared or created through the API.

Where jobs come from:

* declarations: config.yml's ``jobs:`` (explicit ids) and the dbt-jobs-as-code file that its
  ``jobs_as_code:`` names (see jobs_as_code.py; ids follow in file order);
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
serializers and the pages read jobs through it without knowing where they come from.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from dbt_cloud_local import env_vars
from dbt_cloud_local.commands import CommandError, parse_step
from dbt_cloud_local.config import Config, ConfigError, Job
from dbt_cloud_local.store import Store

log = logging.getLogger("dbt_cloud_local.jobs")

ACTIVE, DELETED = 1, 2
MAX_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 255
MAX_STEPS = 30
JOB_TYPES = ("ci", "scheduled", "other", "merge", "exposure_sync", "adaptive", "hybrid")
DATE_TYPES = ("every_day", "days_of_week", "custom_cron", "interval_cron")
TIME_TYPES = ("every_hour", "at_exact_hours")
COST_FEATURES = ("state_aware_orchestration", "efficient_testing", "dbt_state")
TRIGGER_KEYS = ("github_webhook", "schedule", "git_provider_webhook", "on_merge", "custom_branch_only")
BOOLEAN_FIELDS = (
    "generate_docs",
    "run_generate_sources",
    "lifecycle_webhooks",
    "run_compare_changes",
    "run_lint",
    "errors_on_lint_failure",
    "triggers_on_draft_pr",
)
_TARGET = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
_DBT_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?#LW-]+$")

#: Every writable field of dbt Cloud's job object and the value a job has when it was not given.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "dbt_version": None,
    "deferring_environment_id": None,
    "deferring_job_definition_id": None,
    "execute_steps": [],
    "execution": {"timeout_seconds": 0},
    "generate_docs": False,
    "run_generate_sources": False,
    "job_type": "other",
    "lifecycle_webhooks": False,
    "run_compare_changes": False,
    "compare_changes_flags": "--select state:modified",
    "run_lint": False,
    "errors_on_lint_failure": False,
    "cost_optimization_features": [],
    # None: the profile's own threads and target (dbt Cloud shows 4 and "default"; see serializers).
    "settings": {"threads": None, "target_name": None},
    "triggers": dict.fromkeys(TRIGGER_KEYS, False),
    "triggers_on_draft_pr": False,
    "schedule": {
        "cron": "0 * * * *",
        "date": {"type": "every_day", "days": None, "cron": None},
        "time": {"type": "every_hour", "interval": 1, "hours": None},
    },
    "job_completion_trigger_condition": None,
}


class JobFieldError(ValueError):
    """A job field is invalid: ``field`` names it (``settings.threads``), the message says the fix."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem
        self.fix = fix


# Validation -------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(
    value: Any, field: str, *, nullable: bool = False, minimum: int = 0, maximum: int = 2**63 - 1
) -> Any:
    if value is None and nullable:
        return None
    if not _is_int(value) or not minimum <= value <= maximum:
        raise JobFieldError(
            field,
            f"must be an integer from {minimum} to {maximum}, got {value!r}"[:200],
            f"send {field} as a number",
        )
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise JobFieldError(
            field, f"must be true or false, got {value!r}"[:200], f"send {field} as a JSON boolean"
        )
    return value


def _text(value: Any, field: str, *, maximum: int, allow_empty: bool = True, nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise JobFieldError(
            field, f"must be a non-empty string, got {value!r}"[:200], f"send {field} as text"
        )
    if len(value) > maximum:
        raise JobFieldError(field, f"is {len(value)} characters long", f"shorten it to at most {maximum}")
    return value


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise JobFieldError(
            field, f"must be an object, got {value!r}"[:200], f"send {field} as a JSON object"
        )
    return value


def _choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise JobFieldError(field, f"is {value!r}"[:200], f"use one of {', '.join(choices)}")
    return value


def _steps(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise JobFieldError(
            "execute_steps", "must be a non-empty list of dbt commands", 'send e.g. ["dbt build"]'
        )
    if len(value) > MAX_STEPS:
        raise JobFieldError("execute_steps", f"holds {len(value)} steps", f"use at most {MAX_STEPS}")
    steps = []
    for index, step in enumerate(value):
        where = f"execute_steps[{index}]"
        if not isinstance(step, str):
            raise JobFieldError(where, f"must be a string, got {step!r}"[:200], 'write "dbt build"')
        try:
            parse_step(step)
        except CommandError as exc:
            raise JobFieldError(
                where, str(exc)[:300], "use a dbt command such as dbt build --select tag:x"
            ) from None
        steps.append(step.strip())
    return steps


def _cron(value: Any, field: str) -> str:
    text = _text(value, field, maximum=255, allow_empty=False)
    parts = text.split()
    if len(parts) != 5 or not all(_CRON_FIELD.fullmatch(part) for part in parts):
        raise JobFieldError(
            field, f"is not a cron expression: {text!r}"[:200], 'use five fields, e.g. "0 * * * *"'
        )
    return " ".join(parts)


def _schedule(value: Any, current: dict[str, Any]) -> dict[str, Any]:
    given = _mapping(value, "schedule")
    cron = _cron(given["cron"], "schedule.cron") if given.get("cron") is not None else current["cron"]
    date = _mapping(given["date"], "schedule.date") if given.get("date") is not None else current["date"]
    time = _mapping(given["time"], "schedule.time") if given.get("time") is not None else current["time"]
    days = date.get("days")
    if days is not None and (not isinstance(days, list) or not all(_is_int(d) and 0 <= d <= 6 for d in days)):
        raise JobFieldError(
            "schedule.date.days", f"is {days!r}"[:200], "list weekdays as numbers from 0 to 6"
        )
    hours = time.get("hours")
    if hours is not None and (
        not isinstance(hours, list) or not all(_is_int(h) and 0 <= h <= 23 for h in hours)
    ):
        raise JobFieldError(
            "schedule.time.hours", f"is {hours!r}"[:200], "list hours as numbers from 0 to 23"
        )
    date_cron = date.get("cron")
    return {
        "cron": cron,
        "date": {
            "type": _choice(date.get("type", "every_day"), "schedule.date.type", DATE_TYPES),
            "days": days,
            "cron": None if date_cron is None else _cron(date_cron, "schedule.date.cron"),
        },
        "time": {
            "type": _choice(time.get("type", "every_hour"), "schedule.time.type", TIME_TYPES),
            "interval": _int(
                time.get("interval"), "schedule.time.interval", nullable=True, minimum=1, maximum=23
            ),
            "hours": hours,
        },
    }


def _completion_trigger(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    condition = _mapping(
        _mapping(value, "job_completion_trigger_condition").get("condition"),
        "job_completion_trigger_condition.condition",
    )
    statuses = condition.get("statuses", [10, 20, 30])
    if not isinstance(statuses, list) or not statuses or not set(statuses) <= {10, 20, 30}:
        raise JobFieldError(
            "job_completion_trigger_condition.condition.statuses",
            f"is {statuses!r}"[:200],
            "list run statuses among 10 (success), 20 (error), 30 (cancelled)",
        )
    return {
        "condition": {
            "job_id": _int(
                condition.get("job_id"), "job_completion_trigger_condition.condition.job_id", minimum=1
            ),
            "project_id": _int(
                condition.get("project_id"),
                "job_completion_trigger_condition.condition.project_id",
                minimum=1,
            ),
            "statuses": statuses,
        }
    }


def merge_definition(body: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """
    The definition ``current`` becomes with the fields ``body`` gives (a create starts from
    ``DEFAULTS``); every given field is checked, unknown fields are ignored (as dbt Cloud does).
    Nested objects merge key by key, so a client may send only ``settings.threads``.
    """
    result = copy.deepcopy(dict(current))
    if "description" in body:
        result["description"] = _text(
            body["description"] or "", "description", maximum=MAX_DESCRIPTION_LENGTH
        )
    if "dbt_version" in body:
        version = _text(body["dbt_version"], "dbt_version", maximum=64, nullable=True)
        if version is not None and not _DBT_VERSION.fullmatch(version):
            raise JobFieldError(
                "dbt_version", f"is {version!r}"[:200], "use a version such as 1.11 or latest, or null"
            )
        result["dbt_version"] = version
    for key in ("deferring_environment_id", "deferring_job_definition_id"):
        if key in body:
            result[key] = _int(body[key], key, nullable=True, minimum=1)
    if "execute_steps" in body:
        result["execute_steps"] = _steps(body["execute_steps"])
    if body.get("execution") is not None:
        execution = _mapping(body["execution"], "execution")
        if "timeout_seconds" in execution:
            timeout = _int(execution["timeout_seconds"] or 0, "execution.timeout_seconds", maximum=7 * 86400)
            result["execution"] = {"timeout_seconds": timeout}
    for key in BOOLEAN_FIELDS:
        if body.get(key) is not None:
            result[key] = _bool(body[key], key)
    if body.get("generate_sources") is not None:  # the spec's alias of run_generate_sources
        result["run_generate_sources"] = _bool(body["generate_sources"], "generate_sources")
    if body.get("job_type") is not None:
        result["job_type"] = _choice(body["job_type"], "job_type", JOB_TYPES)
    if body.get("compare_changes_flags") is not None:
        result["compare_changes_flags"] = _text(
            body["compare_changes_flags"], "compare_changes_flags", maximum=1024
        )
    if body.get("cost_optimization_features") is not None:
        features = body["cost_optimization_features"]
        if not isinstance(features, list):
            raise JobFieldError(
                "cost_optimization_features", "must be a list", f"list some of {', '.join(COST_FEATURES)}"
            )
        result["cost_optimization_features"] = [
            _choice(item, f"cost_optimization_features[{index}]", COST_FEATURES)
            for index, item in enumerate(features)
        ]
    if body.get("settings") is not None:
        settings = _mapping(body["settings"], "settings")
        merged = dict(result["settings"])
        if "threads" in settings:
            merged["threads"] = _int(
                settings["threads"], "settings.threads", nullable=True, minimum=1, maximum=64
            )
        if "target_name" in settings:
            target = _text(settings["target_name"], "settings.target_name", maximum=63, nullable=True)
            if target is not None and not _TARGET.fullmatch(target):
                raise JobFieldError(
                    "settings.target_name", f"is {target!r}"[:200], "use letters, digits, _ and -"
                )
            merged["target_name"] = target
        result["settings"] = merged
    if body.get("triggers") is not None:
        triggers = _mapping(body["triggers"], "triggers")
        merged = dict(result["triggers"])
        for key in TRIGGER_KEYS:
            if triggers.get(key) is not None:
                merged[key] = _bool(triggers[key], f"triggers.{key}")
        result["triggers"] = merged
    if body.get("schedule") is not None:
        result["schedule"] = _schedule(body["schedule"], result["schedule"])
    if "job_completion_trigger_condition" in body:
        result["job_completion_trigger_condition"] = _completion_trigger(
            body["job_completion_trigger_condition"]
        )
    return result


def _complete(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A definition validated when it was written, with any field it lacks at its default. Reads do not
    validate again (every read of a job goes through here); nothing may mutate the result."""
    return {**DEFAULTS, **definition}


def definition_of(job: Job) -> dict[str, Any]:
    """The full definition of ``job``: its stored one, or (a config.yml job) built from its fields."""
    if job.definition:
        return _complete(job.definition)
    base = copy.deepcopy(DEFAULTS)
    base.update(
        description=job.description,
        execute_steps=list(job.execute_steps),
        execution={"timeout_seconds": job.timeout_seconds},
        generate_docs=job.generate_docs,
        run_generate_sources=job.run_generate_sources,
        settings={"threads": job.threads, "target_name": job.target_name},
    )
    return base


def job_from_row(row: Mapping[str, Any]) -> Job:
    """A stored row as the ``Job`` runs read. Target ``default`` (dbt Cloud's default name) means the
    profile's own target, since the local profile names its target itself."""
    definition = _complete(row["definition"])
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


# The repository -----------------------------------------------------------------------------------


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
        row = self.store.job_row(job_id) if _is_int(job_id) else None
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
            raise JobFieldError(
                "account_id",
                f"is {body['account_id']!r} but the URL names account {account_id}"[:200],
                "send the account id of the URL, or leave account_id out",
            )
        environment_id = body.get("environment_id", current.environment_id if current else None)
        environment_id = _int(environment_id, "environment_id", minimum=1)
        environment = self.config.environments.get(environment_id)
        if environment is None or environment.account_id != account_id:
            known = sorted(
                env.id for env in self.config.environments.values() if env.account_id == account_id
            )
            raise JobFieldError(
                "environment_id", f"names unknown environment {environment_id}", f"use one of {known}"
            )
        project_id = body.get("project_id", environment.project_id)
        project_id = _int(project_id, "project_id", minimum=1)
        if project_id != environment.project_id:
            raise JobFieldError(
                "project_id",
                f"is {project_id} but environment {environment_id} belongs to project "
                f"{environment.project_id}",
                f"send project_id {environment.project_id}",
            )
        return project_id, environment_id

    def create(self, account_id: int, body: Mapping[str, Any]) -> Job:
        """``POST .../jobs/``: name, environment_id and execute_steps are required."""
        for key in ("name", "environment_id", "execute_steps"):
            if body.get(key) is None:
                raise JobFieldError(key, "is required to create a job", f"send {key}")
        project_id, environment_id = self._placement(account_id, body, None)
        name = _text(body["name"], "name", maximum=MAX_NAME_LENGTH, allow_empty=False)
        definition = merge_definition(body, DEFAULTS)
        if body.get("state", ACTIVE) != ACTIVE:
            raise JobFieldError(
                "state", f"is {body.get('state')!r} for a new job", "create jobs with state 1"
            )
        job_id = self.store.insert_job(
            None,
            account_id=account_id,
            project_id=project_id,
            environment_id=environment_id,
            name=name,
            state=ACTIVE,
            definition=definition,
        )
        return self[job_id]

    def update(self, job: Job, body: Mapping[str, Any]) -> Job:
        """``POST .../jobs/{id}/``: the fields given replace the job's; ``state: 2`` deletes it."""
        project_id, environment_id = self._placement(job.account_id, body, job)
        name = job.name
        if "name" in body:
            name = _text(body["name"], "name", maximum=MAX_NAME_LENGTH, allow_empty=False)
        state = body.get("state") if body.get("state") is not None else job.state
        if state not in (ACTIVE, DELETED):
            raise JobFieldError("state", f"is {state!r}"[:200], "use 1 (active) or 2 (deleted)")
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
                env_vars.set_job_overrides(self.store, job.project_id, job_id, overrides)
                continue
            current = self._stored_with_overrides(row)
            if current == seeded:
                self.store.update_job(row["id"], touch=False, seeded=seeded)
            elif current == _seeded_of(row):
                self.store.update_job(row["id"], seeded=seeded, **wanted)
                if current["env_overrides"] != overrides:
                    env_vars.set_job_overrides(self.store, job.project_id, row["id"], overrides)
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
        overrides = env_vars.job_overrides(self.store, row["project_id"], row["id"])
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
