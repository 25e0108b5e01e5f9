"""
Project environment variables, the dbt Cloud way: a project default plus per-environment values.

dbt Cloud only accepts names prefixed with ``DBT_`` (so a variable can never replace ``PATH`` or
``HOME`` for a run); we enforce the same rule. A run sees the value set for its environment, else the
project default. Used by the v3 API routes and by ``python -m dbt_cloud_local env-var``.
"""

from __future__ import annotations

import re
from typing import Any

from dbt_cloud_local.config import Config
from dbt_cloud_local.store import PROJECT_SCOPE, Store

NAME_PATTERN = re.compile(r"^DBT_[A-Z0-9_]+$")
MAX_VALUE_LENGTH = 4096
PROJECT_KEY = "project"


class EnvVarError(ValueError):
    """An environment variable request is invalid (HTTP 400)."""


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise EnvVarError(
            f"environment variable name {name!r} is invalid: use upper case letters, digits and _ "
            "and start it with DBT_ (as dbt Cloud requires)"
        )
    return name


def validate_value(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise EnvVarError(f"value of {name} must be a string")
    value = str(value)
    if len(value) > MAX_VALUE_LENGTH or "\x00" in value:
        raise EnvVarError(f"value of {name} must be at most {MAX_VALUE_LENGTH} characters, without NUL")
    return value


def scope_id(config: Config, project_id: int, scope: str) -> int:
    """Map ``project`` or an environment name of the project to the stored scope id."""
    if scope == PROJECT_KEY:
        return PROJECT_SCOPE
    for environment in config.environments.values():
        if environment.project_id == project_id and environment.name == scope:
            return environment.id
    names = [env.name for env in config.environments.values() if env.project_id == project_id]
    raise EnvVarError(f"unknown environment {scope!r}; use 'project' or one of {names}")


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


def set_values(
    config: Config, store: Store, project_id: int, name: str, values: dict[str, Any]
) -> tuple[list[int], list[int]]:
    """
    Set (or, for ``None``/empty values, delete) a variable's value per scope.

    :return: ids of the values written and ids of the values deleted.
    """
    name = validate_name(name)
    written, deleted = [], []
    existing = {(row["name"], row["environment_id"]): row["id"] for row in store.env_vars(project_id)}
    for scope, value in values.items():
        scope_key = scope_id(config, project_id, scope)
        if value is None or value == "":
            if store.unset_env_var(project_id, name, scope_key):
                deleted.append(existing[(name, scope_key)])
            continue
        written.append(store.set_env_var(project_id, name, scope_key, validate_value(name, value)))
    return written, deleted
