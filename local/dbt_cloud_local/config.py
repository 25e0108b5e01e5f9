"""
Load and validate the local dbt Cloud configuration (one YAML file).

The file declares what a dbt Cloud account would hold: accounts, projects, environments and jobs,
plus server settings, API tokens and fault injection. Validation happens once, at load time, and
every problem is reported with the key that holds it and how to fix it, because a server that starts
with a half-valid config fails later in a far less readable way (inside a dbt run).

Relative paths: ``dbt_project_dir`` is relative to the config file; ``dbt_executable`` and path-like
environment values are relative to ``root`` (default: the project root, two levels above this
package, which is ``/usr/local/airflow`` in the ``dbt-cloud-local`` container).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dbt_cloud_local.faults import FaultSettings, parse_fault_settings

#: The default config shipped with the package.
DEFAULT_CONFIG_PATH = Path(__file__).with_name("config.yml")
#: Project root: base for ``dbt_executable`` and path-like environment values. This package lives in
#: ``local/dbt_cloud_local/``, two levels below it (``/usr/local/airflow`` in the containers).
DEFAULT_ROOT = Path(__file__).resolve().parents[2]

ENV_API_TOKEN = "DBT_CLOUD_LOCAL_API_TOKEN"  # noqa: S105 - a variable name, not a secret
ENV_DBT_EXECUTABLE = "DBT_CLOUD_LOCAL_DBT_EXECUTABLE"

_ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the key and the fix."""


@dataclass(frozen=True)
class Account:
    id: int
    name: str


@dataclass(frozen=True)
class Project:
    id: int
    account_id: int
    name: str
    dbt_project_dir: Path


@dataclass(frozen=True)
class Environment:
    id: int
    account_id: int
    project_id: int
    name: str
    deployment_type: str
    dbt_executable: Path
    dbt_version: str
    env: dict[str, str]
    warehouse_env_var: str
    custom_branch: str


@dataclass(frozen=True)
class Job:
    id: int
    account_id: int
    project_id: int
    environment_id: int
    name: str
    description: str
    execute_steps: tuple[str, ...]
    generate_docs: bool
    run_generate_sources: bool
    threads: int | None
    target_name: str | None
    timeout_seconds: int
    created_at: str


@dataclass(frozen=True)
class ServerSettings:
    extra_hostnames: tuple[str, ...] = ()
    run_slots: int = 2
    page_size: int = 100
    cancel_grace_seconds: float = 10.0
    log_tail_lines: int = 1000


@dataclass(frozen=True)
class Config:
    """A validated configuration. Look-ups raise ``KeyError`` for unknown ids."""

    path: Path
    root: Path
    server: ServerSettings
    api_tokens: tuple[str, ...] = field(repr=False)
    accounts: dict[int, Account]
    projects: dict[int, Project]
    environments: dict[int, Environment]
    jobs: dict[int, Job]
    faults: FaultSettings


def _fail(key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"config key `{key}`: {problem}. Fix: {fix}.")


def _require(mapping: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in mapping:
        raise _fail(f"{where}.{key}", "is missing", f"add `{key}:` to {where}")
    value = mapping[key]
    if (isinstance(value, bool) and kind is int) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _fail(f"{where}.{key}", f"must be a {names}, got {value!r}", f"set it to a {names}")
    return value


def _optional(mapping: dict[str, Any], key: str, where: str, kind: type, default: Any) -> Any:
    if mapping.get(key) is None:
        return default
    return _require(mapping, key, where, kind)


def _positive_id(mapping: dict[str, Any], where: str, seen: set[int]) -> int:
    value = _require(mapping, "id", where, int)
    if value < 1:
        raise _fail(f"{where}.id", f"must be a positive integer, got {value}", "use 1, 2, 3...")
    if value in seen:
        raise _fail(f"{where}.id", f"duplicates id {value}", "give every entry its own id")
    seen.add(value)
    return value


def _section(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = raw.get(key)
    if not isinstance(items, list) or not items:
        raise _fail(key, "must be a non-empty list", f"declare at least one entry under `{key}:`")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _fail(f"{key}[{index}]", "must be a mapping", "write `- id: 1` followed by its keys")
    return items


def _resolve_env_value(name: str, spec: Any, where: str, root: Path) -> str:
    """
    Resolve one environment value.

    A plain string is used as is. A mapping ``{value, env_override, is_path}`` lets a deployment
    override the value from the server's own environment (e.g. ``JAFFLE_SHOP_WAREHOUSE``) and
    resolves relative paths against ``root``.
    """
    if isinstance(spec, (str, int, float)) and not isinstance(spec, bool):
        return str(spec)
    if not isinstance(spec, dict):
        raise _fail(where, "must be a string or a mapping with `value`", "write `NAME: value`")
    value = _require(spec, "value", where, (str, int, float))
    override = _optional(spec, "env_override", where, str, None)
    if override and os.environ.get(override):
        value = os.environ[override]
    value = str(value)
    if _optional(spec, "is_path", where, bool, False):
        path = Path(value).expanduser()
        value = str(path if path.is_absolute() else (root / path).resolve())
    return value


def _parse_accounts(raw: dict[str, Any]) -> dict[int, Account]:
    seen: set[int] = set()
    accounts = {}
    for index, item in enumerate(_section(raw, "accounts")):
        where = f"accounts[{index}]"
        account_id = _positive_id(item, where, seen)
        accounts[account_id] = Account(id=account_id, name=_require(item, "name", where, str))
    return accounts


def _parse_projects(raw: dict[str, Any], base: Path, accounts: dict[int, Account]) -> dict[int, Project]:
    seen: set[int] = set()
    projects = {}
    for index, item in enumerate(_section(raw, "projects")):
        where = f"projects[{index}]"
        project_id = _positive_id(item, where, seen)
        account_id = _optional(item, "account", where, int, next(iter(accounts)))
        if account_id not in accounts:
            raise _fail(
                f"{where}.account", f"names unknown account {account_id}", "use an id from `accounts`"
            )
        project_dir = Path(_require(item, "dbt_project_dir", where, str)).expanduser()
        project_dir = project_dir if project_dir.is_absolute() else (base / project_dir)
        projects[project_id] = Project(
            id=project_id,
            account_id=account_id,
            name=_require(item, "name", where, str),
            dbt_project_dir=project_dir.resolve(),
        )
    return projects


def _parse_environments(
    raw: dict[str, Any], root: Path, projects: dict[int, Project]
) -> dict[int, Environment]:
    seen: set[int] = set()
    environments = {}
    for index, item in enumerate(_section(raw, "environments")):
        where = f"environments[{index}]"
        environment_id = _positive_id(item, where, seen)
        project_id = _require(item, "project", where, int)
        if project_id not in projects:
            raise _fail(
                f"{where}.project", f"names unknown project {project_id}", "use an id from `projects`"
            )
        deployment_type = _optional(item, "deployment_type", where, str, "production")
        if deployment_type not in ("production", "staging"):
            raise _fail(f"{where}.deployment_type", f"is {deployment_type!r}", "use production or staging")
        executable = os.environ.get(ENV_DBT_EXECUTABLE) or _optional(
            item, "dbt_executable", where, str, ".venv-dbt/bin/dbt"
        )
        executable_path = Path(executable).expanduser()
        if not executable_path.is_absolute():
            executable_path = root / executable_path
        env_raw = _optional(item, "env", where, dict, {})
        env = {}
        for name, spec in env_raw.items():
            if not isinstance(name, str) or not _ENV_VAR_NAME.match(name):
                raise _fail(f"{where}.env", f"{name!r} is not a valid variable name", "use UPPER_SNAKE_CASE")
            env[name] = _resolve_env_value(name, spec, f"{where}.env.{name}", root)
        environments[environment_id] = Environment(
            id=environment_id,
            account_id=projects[project_id].account_id,
            project_id=project_id,
            name=_require(item, "name", where, str),
            deployment_type=deployment_type,
            dbt_executable=executable_path,
            dbt_version=_optional(item, "dbt_version", where, str, "1.11"),
            env=env,
            warehouse_env_var=_optional(item, "warehouse_env_var", where, str, "DBT_DUCKDB_PATH"),
            custom_branch=_optional(item, "custom_branch", where, str, "main"),
        )
    return environments


def _parse_jobs(raw: dict[str, Any], environments: dict[int, Environment]) -> dict[int, Job]:
    from dbt_cloud_local.commands import CommandError, parse_step  # avoid an import cycle at module load

    seen: set[int] = set()
    jobs = {}
    for index, item in enumerate(_section(raw, "jobs")):
        where = f"jobs[{index}]"
        job_id = _positive_id(item, where, seen)
        environment_id = _require(item, "environment", where, int)
        if environment_id not in environments:
            raise _fail(
                f"{where}.environment",
                f"names unknown environment {environment_id}",
                "use an id from `environments`",
            )
        steps = _require(item, "execute_steps", where, list)
        if not steps:
            raise _fail(f"{where}.execute_steps", "is empty", 'list dbt commands, e.g. ["dbt build"]')
        for step_index, step in enumerate(steps):
            if not isinstance(step, str):
                raise _fail(f"{where}.execute_steps[{step_index}]", "must be a string", 'write "dbt build"')
            try:
                parse_step(step)
            except CommandError as exc:
                raise _fail(
                    f"{where}.execute_steps[{step_index}]", str(exc), "use an allowed dbt command"
                ) from exc
        threads = _optional(item, "threads", where, int, None)
        if threads is not None and threads < 1:
            raise _fail(f"{where}.threads", "must be >= 1", "remove it or set a positive number")
        environment = environments[environment_id]
        jobs[job_id] = Job(
            id=job_id,
            account_id=environment.account_id,
            project_id=environment.project_id,
            environment_id=environment_id,
            name=_require(item, "name", where, str),
            description=_optional(item, "description", where, str, ""),
            execute_steps=tuple(step.strip() for step in steps),
            generate_docs=_optional(item, "generate_docs", where, bool, False),
            run_generate_sources=_optional(item, "run_generate_sources", where, bool, False),
            threads=threads,
            target_name=_optional(item, "target_name", where, str, None),
            timeout_seconds=_optional(item, "timeout_seconds", where, int, 0),
            created_at=_optional(item, "created_at", where, str, "2025-01-01T00:00:00+00:00"),
        )
    return jobs


def _parse_server(raw: dict[str, Any]) -> ServerSettings:
    section = _optional(raw, "server", "config", dict, {})
    hostnames = _optional(section, "extra_hostnames", "server", list, [])
    if not all(isinstance(name, str) and name for name in hostnames):
        raise _fail("server.extra_hostnames", "must be a list of host names", "e.g. [dbt-cloud-local]")
    settings = ServerSettings(
        extra_hostnames=tuple(hostnames),
        run_slots=_optional(section, "run_slots", "server", int, 2),
        page_size=_optional(section, "page_size", "server", int, 100),
        cancel_grace_seconds=float(_optional(section, "cancel_grace_seconds", "server", (int, float), 10.0)),
        log_tail_lines=_optional(section, "log_tail_lines", "server", int, 1000),
    )
    if settings.run_slots < 1:
        raise _fail("server.run_slots", "must be >= 1", "set how many runs may execute at once")
    if not 1 <= settings.page_size <= 100:
        raise _fail("server.page_size", "must be between 1 and 100", "dbt Cloud pages hold at most 100 items")
    return settings


def _parse_tokens(raw: dict[str, Any]) -> tuple[str, ...]:
    from_env = os.environ.get(ENV_API_TOKEN, "").strip()
    if from_env:
        # A real token from the environment replaces the committed placeholder.
        return tuple(token.strip() for token in from_env.split(",") if token.strip())
    tokens = _optional(raw, "api_tokens", "config", list, [])
    if not tokens or not all(isinstance(token, str) and len(token) >= 8 for token in tokens):
        raise ConfigError(
            "config key `api_tokens`: no API token configured. Fix: list at least one token of 8+ "
            f"characters under `api_tokens:` or set the {ENV_API_TOKEN} environment variable."
        )
    return tuple(tokens)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load, resolve and validate the configuration at ``path`` (default: the packaged config)."""
    config_path = Path(path or DEFAULT_CONFIG_PATH).expanduser().resolve()
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {config_path} does not exist. Fix: pass --config PATH.") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {config_path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {config_path} must hold a mapping at the top level.")

    base = config_path.parent
    root_raw = _optional(raw, "root", "config", str, None)
    root = (base / root_raw).resolve() if root_raw else DEFAULT_ROOT

    accounts = _parse_accounts(raw)
    projects = _parse_projects(raw, base, accounts)
    environments = _parse_environments(raw, root, projects)
    jobs = _parse_jobs(raw, environments)
    try:
        faults = parse_fault_settings(raw.get("faults") or {})
    except ValueError as exc:
        raise ConfigError(f"config key `faults`: {exc}") from exc
    return Config(
        path=config_path,
        root=root,
        server=_parse_server(raw),
        api_tokens=_parse_tokens(raw),
        accounts=accounts,
        projects=projects,
        environments=environments,
        jobs=jobs,
        faults=faults,
    )
