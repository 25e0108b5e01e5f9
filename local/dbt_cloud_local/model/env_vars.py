"""
Project environment variables, the dbt Cloud way: a project default, per-environment values and
per-job overrides (what dbt-jobs-as-code's ``custom_environment_variables`` writes).

dbt Cloud only accepts names prefixed with ``DBT_`` (so a variable can never replace ``PATH`` or
``HOME`` for a run); we enforce the same rule. Within that prefix, the names dbt itself reads (its
global configs, paths and logging) and the names dbt Cloud sets for a run are reserved: a project
variable is data for the project's ``env_var()`` calls, never a way to steer where dbt reads or writes
files or how it behaves. A run sees its job's override, else the value set for its environment, else
the project default. These are the rules; store/env_vars.py keeps the values, and the v3 API routes and
``python -m dbt_cloud_local env-var`` change them.
"""

from __future__ import annotations

import re
from typing import Any

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


#: ``environment_id`` used for a variable's project-wide default value. The column is the value's
#: scope: 0 the project default, a positive id an environment, a negative one ``-job_id``, a job's
#: override (dbt Cloud's ``type: job``); see :func:`job_scope`.
PROJECT_SCOPE = 0


def job_scope(job_id: int) -> int:
    """The ``env_vars.environment_id`` of job ``job_id``'s overrides."""
    return -job_id


#: dbt Cloud's ``CustomEnvironmentVariableTypeEnum``; ``user`` (personal values) is not served here.
TYPES = ("project", "environment", "job")


def scope_type(scope: int) -> str:
    """The dbt Cloud ``type`` of a stored scope (see :func:`job_scope`)."""
    return "project" if scope == PROJECT_SCOPE else "environment" if scope > 0 else "job"
