"""
A job's definition: every writable field of dbt Cloud's job object, its defaults, and the rules a
definition is written by.

A definition is checked once, when it is written (an API create or update, a declaration in config.yml
or the jobs file), by :func:`merge_definition`; reads complete it with the defaults and trust it. The
field rules themselves are the shared ones of :mod:`dbt_cloud_local.model.fields`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from dbt_cloud_local.model import fields
from dbt_cloud_local.model.commands import CommandError, parse_step
from dbt_cloud_local.model.fields import FieldError
from dbt_cloud_local.model.resources import Job

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
    # dbt Cloud's default (its terraform provider documents it: "Defaults to `true`").
    "errors_on_lint_failure": True,
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


def _steps(value: Any) -> list[str]:
    """The job's commands: a list (empty: the job runs dbt Cloud's built-in steps only, until a run's
    ``steps_override`` gives it commands)."""
    if not isinstance(value, list):
        raise FieldError("execute_steps", "must be a list of dbt commands", 'send e.g. ["dbt build"]')
    if len(value) > MAX_STEPS:
        raise FieldError("execute_steps", f"holds {len(value)} steps", f"use at most {MAX_STEPS}")
    steps = []
    for index, step in enumerate(value):
        where = f"execute_steps[{index}]"
        if not isinstance(step, str):
            raise FieldError(where, f"must be a string, got {fields.shown(step)}", 'write "dbt build"')
        try:
            parse_step(step)
        except CommandError as exc:
            raise FieldError(
                where, str(exc)[:300], "use a dbt command such as dbt build --select tag:x"
            ) from None
        steps.append(step.strip())
    return steps


def _cron(value: Any, field: str) -> str:
    text = fields.text(value, field, maximum=255, allow_empty=False)
    parts = text.split()
    if len(parts) != 5 or not all(_CRON_FIELD.fullmatch(part) for part in parts):
        raise FieldError(
            field, f"is not a cron expression: {fields.shown(text)}", 'use five fields, e.g. "0 * * * *"'
        )
    return " ".join(parts)


def _schedule(value: Any, current: dict[str, Any]) -> dict[str, Any]:
    given = fields.mapping(value, "schedule")
    cron = _cron(given["cron"], "schedule.cron") if given.get("cron") is not None else current["cron"]
    date = (
        fields.mapping(given["date"], "schedule.date") if given.get("date") is not None else current["date"]
    )
    time = (
        fields.mapping(given["time"], "schedule.time") if given.get("time") is not None else current["time"]
    )
    days = date.get("days")
    if days is not None and (
        not isinstance(days, list) or not all(fields.is_integer(d) and 0 <= d <= 6 for d in days)
    ):
        raise FieldError(
            "schedule.date.days", f"is {fields.shown(days)}", "list weekdays as numbers from 0 to 6"
        )
    hours = time.get("hours")
    if hours is not None and (
        not isinstance(hours, list) or not all(fields.is_integer(h) and 0 <= h <= 23 for h in hours)
    ):
        raise FieldError(
            "schedule.time.hours", f"is {fields.shown(hours)}", "list hours as numbers from 0 to 23"
        )
    date_cron = date.get("cron")
    return {
        "cron": cron,
        "date": {
            "type": fields.choice(date.get("type", "every_day"), "schedule.date.type", DATE_TYPES),
            "days": days,
            "cron": None if date_cron is None else _cron(date_cron, "schedule.date.cron"),
        },
        "time": {
            "type": fields.choice(time.get("type", "every_hour"), "schedule.time.type", TIME_TYPES),
            "interval": fields.integer(
                time.get("interval"), "schedule.time.interval", nullable=True, minimum=1, maximum=23
            ),
            "hours": hours,
        },
    }


def _completion_trigger(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    condition = fields.mapping(
        fields.mapping(value, "job_completion_trigger_condition").get("condition"),
        "job_completion_trigger_condition.condition",
    )
    statuses = condition.get("statuses", [10, 20, 30])
    if not isinstance(statuses, list) or not statuses or not set(statuses) <= {10, 20, 30}:
        raise FieldError(
            "job_completion_trigger_condition.condition.statuses",
            f"is {fields.shown(statuses)}",
            "list run statuses among 10 (success), 20 (error), 30 (cancelled)",
        )
    return {
        "condition": {
            "job_id": fields.integer(
                condition.get("job_id"), "job_completion_trigger_condition.condition.job_id", minimum=1
            ),
            "project_id": fields.integer(
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
        result["description"] = fields.text(
            body["description"] or "", "description", maximum=MAX_DESCRIPTION_LENGTH
        )
    if "dbt_version" in body:
        result["dbt_version"] = fields.dbt_version(body["dbt_version"], "dbt_version", nullable=True)
    for key in ("deferring_environment_id", "deferring_job_definition_id"):
        if key in body:
            result[key] = fields.integer(body[key], key, nullable=True, minimum=1)
    if "execute_steps" in body:
        result["execute_steps"] = _steps(body["execute_steps"])
    if body.get("execution") is not None:
        execution = fields.mapping(body["execution"], "execution")
        if "timeout_seconds" in execution:
            timeout = fields.integer(
                execution["timeout_seconds"] or 0, "execution.timeout_seconds", maximum=7 * 86400
            )
            result["execution"] = {"timeout_seconds": timeout}
    for key in BOOLEAN_FIELDS:
        if body.get(key) is not None:
            result[key] = fields.boolean(body[key], key)
    if body.get("generate_sources") is not None:  # the spec's alias of run_generate_sources
        result["run_generate_sources"] = fields.boolean(body["generate_sources"], "generate_sources")
    if body.get("job_type") is not None:
        result["job_type"] = fields.choice(body["job_type"], "job_type", JOB_TYPES)
    if body.get("compare_changes_flags") is not None:
        result["compare_changes_flags"] = fields.text(
            body["compare_changes_flags"], "compare_changes_flags", maximum=1024
        )
    if body.get("cost_optimization_features") is not None:
        features = body["cost_optimization_features"]
        if not isinstance(features, list):
            raise FieldError(
                "cost_optimization_features", "must be a list", f"list some of {', '.join(COST_FEATURES)}"
            )
        result["cost_optimization_features"] = [
            fields.choice(item, f"cost_optimization_features[{index}]", COST_FEATURES)
            for index, item in enumerate(features)
        ]
    if body.get("settings") is not None:
        settings = fields.mapping(body["settings"], "settings")
        merged = dict(result["settings"])
        if "threads" in settings:
            merged["threads"] = fields.integer(
                settings["threads"], "settings.threads", nullable=True, minimum=1, maximum=64
            )
        if "target_name" in settings:
            target = fields.text(settings["target_name"], "settings.target_name", maximum=63, nullable=True)
            if target is not None and not _TARGET.fullmatch(target):
                raise FieldError(
                    "settings.target_name", f"is {fields.shown(target)}", "use letters, digits, _ and -"
                )
            merged["target_name"] = target
        result["settings"] = merged
    if body.get("triggers") is not None:
        triggers = fields.mapping(body["triggers"], "triggers")
        merged = dict(result["triggers"])
        for key in TRIGGER_KEYS:
            if triggers.get(key) is not None:
                merged[key] = fields.boolean(triggers[key], f"triggers.{key}")
        result["triggers"] = merged
    if body.get("schedule") is not None:
        result["schedule"] = _schedule(body["schedule"], result["schedule"])
    if "job_completion_trigger_condition" in body:
        result["job_completion_trigger_condition"] = _completion_trigger(
            body["job_completion_trigger_condition"]
        )
    return result


def complete(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A definition validated when it was written, with any field it lacks at its default. Reads do not
    validate again (every read of a job goes through here); nothing may mutate the result."""
    return {**DEFAULTS, **definition}


def definition_of(job: Job) -> dict[str, Any]:
    """The full definition of ``job``: its stored one, or (a config.yml job) built from its fields."""
    if job.definition:
        return complete(job.definition)
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
