"""
Project environment variables in the store: reading them per scope, validated edits that write all or
nothing, job overrides, and the store a serving server runs with (reserved names never reach a run).

What a name or value may be, and how scopes are encoded, is :mod:`dbt_cloud_local.model.env_vars`.
Used by the v3 API routes, by the job repository (a declared job's overrides) and by
``python -m dbt_cloud_local env-var``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dbt_cloud_local.config.settings import Config
from dbt_cloud_local.model.env_vars import (
    PROJECT_KEY,
    PROJECT_SCOPE,
    EnvVarError,
    job_scope,
    reserved_reason,
    scope_type,
    validate_name,
    validate_value,
    without_reserved,
)
from dbt_cloud_local.model.job_definition import ACTIVE
from dbt_cloud_local.store.database import Store


def scope_id(config: Config, project_id: int, scope: str) -> int:
    """Map ``project`` or an environment name of the project to the stored scope id."""
    if scope == PROJECT_KEY:
        return PROJECT_SCOPE
    for environment in config.environments.values():
        if environment.project_id == project_id and environment.name == scope:
            return environment.id
    names = [env.name for env in config.environments.values() if env.project_id == project_id]
    raise EnvVarError(f"unknown environment {str(scope)[:80]!r}; use 'project' or one of {names}")


def scope_names(config: Config, project_id: int) -> list[str]:
    environments = [env for env in config.environments.values() if env.project_id == project_id]
    return [PROJECT_KEY, *(env.name for env in sorted(environments, key=lambda env: env.id))]


def describe(config: Config, store: Store, project_id: int) -> dict[str, Any]:
    """The ``EnvVarEnvironmentData`` view: names of scopes and ``{name: {scope: {id, value}}}``."""
    by_id = {PROJECT_SCOPE: PROJECT_KEY} | {
        env.id: env.name for env in config.environments.values() if env.project_id == project_id
    }
    variables: dict[str, dict[str, dict[str, Any]]] = {}
    for row in store.env_vars(project_id):
        scope = by_id.get(row["environment_id"])
        if scope is not None:
            variables.setdefault(row["name"], {})[scope] = {"id": row["id"], "value": row["value"]}
    return {"environments": scope_names(config, project_id), "variables": variables}


@dataclass(frozen=True)
class Change:
    """A validated edit of one variable: ``values`` maps scope ids to a value, or None to delete."""

    name: str
    values: dict[int, str | None]


def plan_change(config: Config, project_id: int, name: Any, values: dict[str, Any]) -> Change:
    """
    Validate a variable's name and every scope's value before anything is written, so a request
    with one bad entry changes nothing. ``None`` or empty values delete that scope.
    """
    name = validate_name(name)
    planned: dict[int, str | None] = {}
    for scope, value in values.items():
        scope_key = scope_id(config, project_id, scope)
        planned[scope_key] = None if value is None or value == "" else validate_value(name, value)
    return Change(name=name, values=planned)


def apply_change(store: Store, project_id: int, change: Change) -> tuple[list[int], list[int]]:
    """Write a validated change; return the ids of the values written and of those deleted."""
    existing = {(row["name"], row["environment_id"]): row["id"] for row in store.env_vars(project_id)}
    written, deleted = [], []
    for scope_key, value in change.values.items():
        if value is not None:
            written.append(store.set_env_var(project_id, change.name, scope_key, value))
        elif store.unset_env_var(project_id, change.name, scope_key):
            deleted.append(existing[(change.name, scope_key)])
    return written, deleted


def set_values(
    config: Config, store: Store, project_id: int, name: str, values: dict[str, Any]
) -> tuple[list[int], list[int]]:
    """
    Set (or, for ``None``/empty values, delete) a variable's value per scope.

    :return: ids of the values written and ids of the values deleted.
    """
    return apply_change(store, project_id, plan_change(config, project_id, name, values))


class RunEnvStore(Store):
    """
    The server's store: runs read project variables through :meth:`resolved_env_vars`, so reserved
    names are dropped here, at read time. A value written before a name became reserved (or straight
    into SQLite) therefore never reaches dbt; it stays listed so that it can be deleted.
    """

    def resolved_env_vars(
        self, project_id: int, environment_id: int, job_id: int | None = None
    ) -> dict[str, str]:
        return without_reserved(super().resolved_env_vars(project_id, environment_id, job_id))


def reserved_in_state(config: Config, store: Store) -> list[tuple[int, str]]:
    """``(project_id, name)`` of stored variables that runs ignore, to warn about them at start."""
    found = {
        (project_id, row["name"])
        for project_id in config.projects
        for row in store.env_vars(project_id)
        if reserved_reason(row["name"])
    }
    return sorted(found)


# One variable value at a time (``POST/DELETE .../environment-variables/[{id}/]``) ----------------

#: dbt Cloud's ``CustomEnvironmentVariableTypeEnum``; ``user`` (personal values) is not served here.
TYPES = ("project", "environment", "job")


# One variable value at a time (``POST/DELETE .../environment-variables/[{id}/]``) ----------------


def scope_of(
    config: Config,
    account_id: int,
    project_id: int,
    kind: str,
    environment_id: int | None,
    job_id: int | None,
) -> int:
    """The stored scope a value of ``kind`` names: the project, an environment of it, or an active job
    of it."""
    if kind == "project":
        return PROJECT_SCOPE
    if kind == "environment":
        environment = config.environments.get(environment_id) if environment_id else None
        if environment is None or environment.project_id != project_id:
            known = sorted(env.id for env in config.environments.values() if env.project_id == project_id)
            raise EnvVarError(
                f"environment_id {environment_id!r} is not an environment of project {project_id}; "
                f"use one of {known}"
            )
        return environment.id
    job = config.jobs.get(job_id) if job_id else None
    if job is None or job.state != ACTIVE or job.account_id != account_id or job.project_id != project_id:
        raise EnvVarError(
            f"job_definition_id {job_id!r} is not an active job of project {project_id}; "
            "send the id of the job the override is for"
        )
    return job_scope(job.id)


def identity(row: dict[str, Any]) -> dict[str, Any]:
    """What makes a stored value the one it is, in the request's terms: its name and its scope."""
    scope = row["environment_id"]
    kind = scope_type(scope)
    return {
        "name": row["name"],
        "type": kind,
        "environment_id": scope if kind == "environment" else None,
        "job_definition_id": -scope if kind == "job" else None,
    }


def create_value(store: Store, project_id: int, name: str, scope: int, value: str) -> dict[str, Any]:
    """
    Store one value of ``name`` for one scope. An existing value of that scope is refused, as its id is
    the one to update.
    """
    existing = next(
        (row for row in store.env_vars(project_id) if row["name"] == name and row["environment_id"] == scope),
        None,
    )
    if existing is not None:
        raise EnvVarError(
            f"{name} already has a {scope_type(scope)} value (id {existing['id']}); update it with "
            f"POST .../environment-variables/{existing['id']}/"
        )
    row = store.env_var_row(project_id, store.set_env_var(project_id, name, scope, value))
    assert row is not None
    return row


def update_value(store: Store, project_id: int, row: dict[str, Any], value: str) -> dict[str, Any]:
    """A new value for a stored one; its name and scope stay."""
    store.set_env_var(project_id, row["name"], row["environment_id"], value)
    updated = store.env_var_row(project_id, row["id"])
    assert updated is not None
    return updated


def job_overrides(store: Store, project_id: int, job_id: int) -> dict[str, str]:
    """The job's overrides, ``{name: value}``."""
    scope = job_scope(job_id)
    return {row["name"]: row["value"] for row in store.env_vars(project_id) if row["environment_id"] == scope}


def set_job_overrides(store: Store, project_id: int, job_id: int, values: dict[str, str]) -> None:
    """Make the job's overrides exactly ``values`` (validated by the caller)."""
    scope = job_scope(job_id)
    for name in job_overrides(store, project_id, job_id).keys() - values.keys():
        store.unset_env_var(project_id, name, scope)
    for name, value in values.items():
        store.set_env_var(project_id, name, scope, value)
