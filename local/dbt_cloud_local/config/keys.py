"""
The keys config.yml may hold, and how one key is read: present or defaulted, of the right type, known
(a misspelt key gets a did-you-mean suggestion rather than silently falling back to its default).

Values are checked by the shared field rules (:mod:`dbt_cloud_local.model.fields`); their errors become
one line naming the config key and the fix.
"""

from __future__ import annotations

import difflib
from typing import Any

from dbt_cloud_local.config.settings import ConfigError
from dbt_cloud_local.model import fields
from dbt_cloud_local.model.fields import FieldError

#: The keys each part of the file may hold. ``faults`` and ``faults.rules`` mirror what
#: ``faults.parse_fault_settings`` reads.
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "config": frozenset(
        {
            "root",
            "server",
            "api_tokens",
            "accounts",
            "projects",
            "environments",
            "jobs",
            "jobs_as_code",
            "faults",
            "webhooks",
        }
    ),
    "server": frozenset(
        {"extra_hostnames", "run_slots", "page_size", "cancel_grace_seconds", "log_tail_lines"}
    ),
    "api_tokens": frozenset({"token", "accounts"}),
    "accounts": frozenset({"id", "name"}),
    "projects": frozenset({"id", "account", "name", "dbt_project_dir"}),
    "environments": frozenset(
        {
            "id",
            "project",
            "name",
            "deployment_type",
            "dbt_executable",
            "dbt_version",
            "env",
            "warehouse_env_var",
            "custom_branch",
        }
    ),
    "env": frozenset({"value", "env_override", "is_path"}),
    "jobs": frozenset(
        {
            "id",
            "name",
            "environment",
            "description",
            "execute_steps",
            "generate_docs",
            "run_generate_sources",
            "threads",
            "target_name",
            "timeout_seconds",
            "created_at",
        }
    ),
    "jobs_as_code": frozenset({"file", "vars"}),
    "webhooks": frozenset(
        {
            "name",
            "account",
            "client_url",
            "client_url_env",
            "hmac_secret_env",
            "event_types",
            "job_ids",
            "active",
        }
    ),
    "faults": frozenset({"latency_ms", "error_rate", "error_statuses", "seed", "rules", "step_delay_ms"}),
    "faults.rules": frozenset({"path", "status", "method", "rate", "times"}),
}


def config_error(key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"config key `{key}`: {problem}. Fix: {fix}.")


def from_field_error(error: FieldError) -> ConfigError:
    """A shared rule's refusal, worded for the config file."""
    return config_error(error.field, error.problem, error.fix)


def reject_unknown_keys(mapping: dict[Any, Any], where: str, kind: str) -> None:
    """Refuse keys ``KNOWN_KEYS[kind]`` does not list, suggesting the closest known key."""
    known = KNOWN_KEYS[kind]
    for key in mapping:
        if key in known:
            continue
        name = str(key)
        path = name if where == "config" else f"{where}.{name}"
        close = difflib.get_close_matches(name, sorted(known), n=1)
        if close:
            raise config_error(
                path, f"is not a known key (did you mean `{close[0]}`?)", f"rename it to `{close[0]}`"
            )
        raise config_error(
            path, "is not a known key", f"remove it; known keys here: {', '.join(sorted(known))}"
        )


def require(mapping: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in mapping:
        raise config_error(f"{where}.{key}", "is missing", f"add `{key}:` to {where}")
    try:
        return fields.of_type(mapping[key], f"{where}.{key}", kind)
    except FieldError as exc:
        raise from_field_error(exc) from None


def optional(
    mapping: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...], default: Any
) -> Any:
    if mapping.get(key) is None:
        return default
    return require(mapping, key, where, kind)


def positive_id(mapping: dict[str, Any], where: str, seen: set[int]) -> int:
    """The entry's ``id``: a positive integer no other entry of its section has."""
    try:
        value = fields.integer(require(mapping, "id", where, int), f"{where}.id", minimum=1)
    except FieldError as exc:
        raise from_field_error(exc) from None
    if value in seen:
        raise config_error(f"{where}.id", f"duplicates id {value}", "give every entry its own id")
    seen.add(value)
    return value


def section(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A required, non-empty list of mappings whose keys are all known."""
    items = raw.get(key)
    if not isinstance(items, list) or not items:
        raise config_error(key, "must be a non-empty list", f"declare at least one entry under `{key}:`")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise config_error(f"{key}[{index}]", "must be a mapping", "write `- id: 1` followed by its keys")
        reject_unknown_keys(item, f"{key}[{index}]", key)
    return items
