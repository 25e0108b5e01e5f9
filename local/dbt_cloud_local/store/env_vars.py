"""
Project environment variables, the dbt Cloud way: a project default, per-environment values and
per-job overrides (what dbt-jobs-as-code's ``custom_environment_variables`` writes).

dbt Cloud only accepts names prefixed with ``DBT_`` (so a variable can never replace ``PATH`` or
``HOME`` for a run); we enforce the same rule. Within that prefix, the names dbt itself reads (its
global configs, paths and logging) and the names dbt Cloud sets for a run are reserved: a project
variable is data for the project's ``env_var()`` calls, never a way to steer where dbt reads or writes
files or how it behaves. A run sees its job's override, else the value set for its environment, else
the project default. Used by the v3 API routes and by ``python -m dbt_cloud_local env-var``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dbt_cloud_local.store import PROJECT_SCOPE, Store, job_scope

if TYPE_CHECKING:
    from dbt_cloud_local.config import Config

NAME_PATTERN = re.compile(r"^DBT_[A-Z0-9_]+$")
MAX_NAME_LENGTH = 128
MAX_VALUE_LENGTH = 4096
PROJECT_KEY = "project"

#: Names that steer dbt itself, so a project variable may not set them. Sources: dbt's global
#: configs (https://docs.getdbt.com/reference/global-configs/about-global-configs), i.e. every
#: ``envvar=`` in dbt-core 1.11 ``dbt/cli/params.py`` plus ``_ADDITIONAL_ENGINE_ENV_VARS`` in
#: ``dbt/env_vars.py``, and the variables dbt Cloud sets for a run
#: (https://docs.getdbt.com/docs/build/environment-variables, "Special environment variables").
#: The value says why, for the rejection message.
RESERVED_NAMES: dict[str, str] = {
    **dict.fromkeys(
        (
            "DBT_PROJECT_DIR",
            "DBT_PROFILES_DIR",
            "DBT_TARGET_PATH",
            "DBT_LOG_PATH",
            "DBT_PACKAGES_INSTALL_PATH",
            "DBT_DOWNLOAD_DIR",
            "DBT_DOWNLOADS_DIR",
            "DBT_PARTIAL_PARSE_FILE_PATH",
            "DBT_RECORDED_FILE_PATH",
        ),
        "it moves where dbt reads or writes its files, which the server sets for every step",
    ),
    **dict.fromkeys(
        (
            "DBT_STATE",
            "DBT_DEFER_STATE",
            "DBT_FAVOR_STATE",
            "DBT_FAVOR_STATE_MODE",
            "DBT_DEFER",
            "DBT_DEFER_TO_STATE",
            "DBT_ARTIFACT_STATE_PATH",
        ),
        "it points dbt at state artifacts; pass --state/--defer in a step instead",
    ),
    **dict.fromkeys(
        ("DBT_PROFILE", "DBT_TARGET"),
        "it picks the connection; use the job's target_name or the run's target_name_override",
    ),
    **dict.fromkeys(
        (
            "DBT_LOG_FORMAT",
            "DBT_LOG_FORMAT_FILE",
            "DBT_LOG_LEVEL",
            "DBT_LOG_LEVEL_FILE",
            "DBT_LOG_FILE_MAX_BYTES",
            "DBT_LOG_CACHE_EVENTS",
            "DBT_QUIET",
            "DBT_NO_PRINT",
            "DBT_PRINT",
            "DBT_PRINTER_WIDTH",
            "DBT_USE_COLORS",
            "DBT_USE_COLORS_FILE",
            "DBT_WRITE_JSON",
            "DBT_DEBUG",
            "DBT_SHOW_RESOURCE_REPORT",
        ),
        "it changes dbt's logs and artifacts, which the run pages and the API read",
    ),
    **dict.fromkeys(
        ("DBT_SEND_ANONYMOUS_USAGE_STATS", "DBT_VERSION_CHECK", "DBT_UPLOAD_TO_ARTIFACTS_INGEST_API"),
        "the server turns it off for every run so that runs make no calls home",
    ),
    **dict.fromkeys(
        ("DBT_PACKAGE_HUB_URL", "DBT_HOST"),
        "it points dbt at another server for packages or uploads",
    ),
    **dict.fromkeys(
        (
            "DBT_PARTIAL_PARSE",
            "DBT_PARTIAL_PARSE_FILE_DIFF",
            "DBT_STATIC_PARSER",
            "DBT_USE_EXPERIMENTAL_PARSER",
            "DBT_FAIL_FAST",
            "DBT_WARN_ERROR",
            "DBT_WARN_ERROR_OPTIONS",
            "DBT_FULL_REFRESH",
            "DBT_EMPTY",
            "DBT_SAMPLE",
            "DBT_STORE_FAILURES",
            "DBT_INDIRECT_SELECTION",
            "DBT_RESOURCE_TYPES",
            "DBT_EXCLUDE_RESOURCE_TYPES",
            "DBT_INCLUDE_SAVED_QUERY",
            "DBT_EXPORT_SAVED_QUERIES",
            "DBT_EVENT_TIME_START",
            "DBT_EVENT_TIME_END",
            "DBT_CACHE_SELECTED_ONLY",
            "DBT_POPULATE_CACHE",
            "DBT_INTROSPECT",
            "DBT_MACRO_DEBUGGING",
            "DBT_SINGLE_THREADED",
            "DBT_CLEAN_PROJECT_FILES_ONLY",
            "DBT_USE_FAST_TEST_EDGES",
            "DBT_INVOCATION_ENV",
            "DBT_TEST_STATE_MODIFIED",
            "DBT_PP_FILE_DIFF_TEST",
            "DBT_PP_TEST",
            "DBT_TEST_BINARY_SERIALIZATION",
        ),
        "it changes what a dbt command does; pass the matching flag in the job's step instead",
    ),
}
#: Whole families: dbt 1.10+ reads every flag also as ``DBT_ENGINE_<NAME>`` and reserves that prefix;
#: ``DBT_RECORDER_*`` makes dbt record or replay to files; dbt Cloud sets ``DBT_CLOUD_*`` for a run.
RESERVED_PREFIXES: dict[str, str] = {
    "DBT_ENGINE_": "dbt reserves the DBT_ENGINE_ prefix for its own settings",
    "DBT_RECORDER_": "it makes dbt record or replay its work to files",
    "DBT_CLOUD_": "dbt Cloud sets DBT_CLOUD_* variables for every run itself",
}


class EnvVarError(ValueError):
    """An environment variable request is invalid (HTTP 400)."""


def reserved_reason(name: str) -> str | None:
    """Why ``name`` may not be set as a project variable, or None when it may."""
    if name in RESERVED_NAMES:
        return RESERVED_NAMES[name]
    return next((why for prefix, why in RESERVED_PREFIXES.items() if name.startswith(prefix)), None)


def without_reserved(values: dict[str, str]) -> dict[str, str]:
    """``values`` minus reserved names: what a run may see, even from state written before the rule."""
    return {name: value for name, value in values.items() if reserved_reason(name) is None}


def validate_name(name: Any, *, allow_reserved: bool = False) -> str:
    """
    Check a variable name. ``allow_reserved`` is for deletions: removing a reserved variable left in
    the state by an older server must stay possible.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        shown = repr(name)[:80]
        raise EnvVarError(
            f"environment variable name {shown} is invalid: use upper case letters, digits and _, "
            f"at most {MAX_NAME_LENGTH} characters, and start it with DBT_ (as dbt Cloud requires)"
        )
    reason = None if allow_reserved else reserved_reason(name)
    if reason:
        raise EnvVarError(
            f"environment variable {name} is reserved: {reason}. Choose another name, e.g. DBT_MY_{name[4:]}"
        )
    return name


def validate_value(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise EnvVarError(f"value of {name} must be a string")
    value = str(value)
    if len(value) > MAX_VALUE_LENGTH or "\x00" in value:
        raise EnvVarError(f"value of {name} must be at most {MAX_VALUE_LENGTH} characters, without NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EnvVarError(f"value of {name} must be valid UTF-8 text") from None
    return value


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


def scope_type(scope: int) -> str:
    """The dbt Cloud ``type`` of a stored scope (see ``store.job_scope``)."""
    return "project" if scope == PROJECT_SCOPE else "environment" if scope > 0 else "job"


def value_view(config: Config, project_id: int, account_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """A ``CustomEnvironmentVariableResponse``. ``display_value`` carries the value (dbt-jobs-as-code
    reads it back as the value it compares), as dbt Cloud shows non-secret values."""
    from dbt_cloud_local import serializers  # serializers imports the config module: kept local

    scope = row["environment_id"]
    kind = scope_type(scope)
    environment = config.environments.get(scope) if kind == "environment" else None
    return {
        "id": row["id"],
        "account_id": account_id,
        "project_id": project_id,
        "name": row["name"],
        "type": kind,
        "user_id": None,
        "environment_id": scope if kind == "environment" else None,
        "job_definition_id": -scope if kind == "job" else None,
        "display_value": row["value"],
        "state": 1,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "environment": serializers.environment_v3(environment, config) if environment else None,
    }


def _field_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EnvVarError(f"{key} must be an integer id, got {repr(value)[:60]}")
    return value


def _scope_of(config: Config, account_id: int, project_id: int, kind: str, body: dict[str, Any]) -> int:
    """The stored scope a create names: the project, an environment of it, or an active job of it."""
    if kind == "project":
        return PROJECT_SCOPE
    if kind == "environment":
        environment_id = _field_int(body, "environment_id")
        environment = config.environments.get(environment_id) if environment_id else None
        if environment is None or environment.project_id != project_id:
            known = sorted(env.id for env in config.environments.values() if env.project_id == project_id)
            raise EnvVarError(
                f"environment_id {environment_id!r} is not an environment of project {project_id}; "
                f"use one of {known}"
            )
        return environment.id
    job_id = _field_int(body, "job_definition_id")
    job = config.jobs.get(job_id) if job_id else None
    if job is None or job.state != 1 or job.account_id != account_id or job.project_id != project_id:
        raise EnvVarError(
            f"job_definition_id {job_id!r} is not an active job of project {project_id}; "
            "send the id of the job the override is for"
        )
    return job_scope(job.id)


def _check_placement(body: dict[str, Any], account_id: int, project_id: int) -> None:
    for key, expected in (("account_id", account_id), ("project_id", project_id)):
        value = _field_int(body, key)
        if value is not None and value != expected:
            raise EnvVarError(f"{key} is {value} but the URL names {expected}; send {key} {expected}")


def _raw_value(body: dict[str, Any], name: str) -> str:
    value = body.get("raw_value")
    if value is None or value == "":
        raise EnvVarError(f"raw_value is required: send the value of {name} as raw_value")
    return validate_value(name, value)


def create_value(config: Config, store: Store, account_id: int, project_id: int, body: Any) -> dict[str, Any]:
    """
    ``POST .../environment-variables/``: one value of ``name`` for one scope (``type`` project,
    environment with ``environment_id``, or job with ``job_definition_id``). An existing value of that
    scope is refused, as its id is the one to update.
    """
    if not isinstance(body, dict):
        raise EnvVarError('send a JSON object, e.g. {"name": "DBT_X", "type": "job", ...}')
    for key in ("account_id", "project_id", "name", "type"):
        if body.get(key) is None:
            raise EnvVarError(f"{key} is required (dbt Cloud's CustomEnvironmentVariableRequest)")
    _check_placement(body, account_id, project_id)
    name = validate_name(body["name"])
    kind = body["type"]
    if kind not in TYPES:
        raise EnvVarError(f"type {repr(kind)[:40]} is not supported here; use one of {list(TYPES)}")
    scope = _scope_of(config, account_id, project_id, kind, body)
    value = _raw_value(body, name)
    existing = next(
        (row for row in store.env_vars(project_id) if row["name"] == name and row["environment_id"] == scope),
        None,
    )
    if existing is not None:
        raise EnvVarError(
            f"{name} already has a {kind} value (id {existing['id']}); update it with "
            f"POST .../environment-variables/{existing['id']}/"
        )
    env_var_id = store.set_env_var(project_id, name, scope, value)
    row = store.env_var_row(project_id, env_var_id)
    assert row is not None
    return value_view(config, project_id, account_id, row)


def update_value(
    config: Config, store: Store, account_id: int, project_id: int, row: dict[str, Any], body: Any
) -> dict[str, Any]:
    """``POST .../environment-variables/{id}/``: a new ``raw_value``. Name and scope are the value's
    identity: a body naming others is refused rather than silently ignored."""
    if not isinstance(body, dict):
        raise EnvVarError('send a JSON object, e.g. {"name": "DBT_X", "raw_value": "..."}')
    _check_placement(body, account_id, project_id)
    scope = row["environment_id"]
    kind = scope_type(scope)
    current = {
        "name": row["name"],
        "type": kind,
        "environment_id": scope if kind == "environment" else None,
        "job_definition_id": -scope if kind == "job" else None,
    }
    for key, expected in current.items():
        if body.get(key) is not None and body[key] != expected:
            raise EnvVarError(
                f"{key} is {repr(body[key])[:60]} but value {row['id']} has {expected!r}; "
                "to change it, delete this value and create another"
            )
    value = _raw_value(body, row["name"])
    store.set_env_var(project_id, row["name"], scope, value)
    updated = store.env_var_row(project_id, row["id"])
    assert updated is not None
    return value_view(config, project_id, account_id, updated)


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
