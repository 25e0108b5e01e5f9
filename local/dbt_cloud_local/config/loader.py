"""
Load and validate the local dbt Cloud configuration (one YAML file).

The file declares what a dbt Cloud account would hold: accounts, projects, environments and jobs,
plus server settings, API tokens and fault injection. Validation happens once, at load time, and
every problem is reported with the key that holds it and how to fix it, because a server that starts
with a half-valid config fails later in a far less readable way (inside a dbt run).

Unknown keys are errors too (with a did-you-mean suggestion): a misspelt key would otherwise be
ignored silently and its default used. What only serving needs (the dbt executable, the project
folders, a writable data dir) is checked by ``serving.validate_for_serving``, not here, because the
``env`` and ``env-var`` commands and the tests load the config where dbt may be absent.

Jobs come from ``jobs:`` (ids given) and/or the dbt-jobs-as-code file ``jobs_as_code.file`` (with its
Jinja ``vars`` file; see jobs_as_code.py); a serving server seeds them into its store (store/jobs.py).

Relative paths: ``dbt_project_dir`` is relative to the config file; ``dbt_executable``, the
``jobs_as_code`` files and path-like environment values are relative to ``root`` (default: the
project root, two levels above the package, which is ``/usr/local/airflow`` in the
``dbt-cloud-local`` container).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from dbt_cloud_local.config.jobs_as_code import JobsFileError, load_jobs_file
from dbt_cloud_local.config.keys import (
    config_error,
    from_field_error,
    optional,
    positive_id,
    reject_unknown_keys,
    require,
    section,
)
from dbt_cloud_local.config.settings import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_ROOT,
    ENV_API_TOKEN,
    ENV_DBT_EXECUTABLE,
    Config,
    ConfigError,
    DeclaredWebhook,
    ServerSettings,
    env_tokens,
)
from dbt_cloud_local.faults import FaultSettings, parse_fault_settings
from dbt_cloud_local.model import fields
from dbt_cloud_local.model.commands import CommandError, parse_step
from dbt_cloud_local.model.env_vars import reserved_reason
from dbt_cloud_local.model.fields import FieldError
from dbt_cloud_local.model.resources import Account, Environment, Job, Project
from dbt_cloud_local.model.webhook_events import EVENT_TYPES

_ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


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
        raise config_error(where, "must be a string or a mapping with `value`", "write `NAME: value`")
    reject_unknown_keys(spec, where, "env")
    value = require(spec, "value", where, (str, int, float))
    override = optional(spec, "env_override", where, str, None)
    if override and os.environ.get(override):
        value = os.environ[override]
    value = str(value)
    if optional(spec, "is_path", where, bool, False):
        path = Path(value).expanduser()
        value = str(path if path.is_absolute() else (root / path).resolve())
    return value


def _parse_accounts(raw: dict[str, Any]) -> dict[int, Account]:
    seen: set[int] = set()
    accounts = {}
    for index, item in enumerate(section(raw, "accounts")):
        where = f"accounts[{index}]"
        account_id = positive_id(item, where, seen)
        accounts[account_id] = Account(id=account_id, name=require(item, "name", where, str))
    return accounts


def _parse_projects(raw: dict[str, Any], base: Path, accounts: dict[int, Account]) -> dict[int, Project]:
    seen: set[int] = set()
    projects = {}
    for index, item in enumerate(section(raw, "projects")):
        where = f"projects[{index}]"
        project_id = positive_id(item, where, seen)
        account_id = optional(item, "account", where, int, next(iter(accounts)))
        if account_id not in accounts:
            raise config_error(
                f"{where}.account", f"names unknown account {account_id}", "use an id from `accounts`"
            )
        project_dir = Path(require(item, "dbt_project_dir", where, str)).expanduser()
        project_dir = project_dir if project_dir.is_absolute() else (base / project_dir)
        projects[project_id] = Project(
            id=project_id,
            account_id=account_id,
            name=require(item, "name", where, str),
            dbt_project_dir=project_dir.resolve(),
        )
    return projects


def _parse_environments(
    raw: dict[str, Any], root: Path, projects: dict[int, Project]
) -> dict[int, Environment]:
    seen: set[int] = set()
    environments = {}
    for index, item in enumerate(section(raw, "environments")):
        where = f"environments[{index}]"
        environment_id = positive_id(item, where, seen)
        project_id = require(item, "project", where, int)
        if project_id not in projects:
            raise config_error(
                f"{where}.project", f"names unknown project {project_id}", "use an id from `projects`"
            )
        deployment_type = optional(item, "deployment_type", where, str, "production")
        if deployment_type not in ("production", "staging"):
            raise config_error(
                f"{where}.deployment_type", f"is {deployment_type!r}", "use production or staging"
            )
        executable = os.environ.get(ENV_DBT_EXECUTABLE) or optional(
            item, "dbt_executable", where, str, ".venv-dbt/bin/dbt"
        )
        executable_path = Path(executable).expanduser()
        if not executable_path.is_absolute():
            executable_path = root / executable_path
        env_raw = optional(item, "env", where, dict, {})
        env = {}
        for name, spec in env_raw.items():
            if not isinstance(name, str) or not _ENV_VAR_NAME.fullmatch(name):
                raise config_error(
                    f"{where}.env", f"{name!r} is not a valid variable name", "use UPPER_SNAKE_CASE"
                )
            reason = reserved_reason(name)
            if reason:
                raise config_error(f"{where}.env.{name}", f"is reserved ({reason})", "remove it or rename it")
            env[name] = _resolve_env_value(name, spec, f"{where}.env.{name}", root)
        environments[environment_id] = Environment(
            id=environment_id,
            account_id=projects[project_id].account_id,
            project_id=project_id,
            name=require(item, "name", where, str),
            deployment_type=deployment_type,
            dbt_executable=executable_path,
            dbt_version=optional(item, "dbt_version", where, str, "1.11"),
            env=env,
            warehouse_env_var=optional(item, "warehouse_env_var", where, str, "DBT_DUCKDB_PATH"),
            custom_branch=optional(item, "custom_branch", where, str, "main"),
        )
    return environments


def _parse_jobs(raw: dict[str, Any], environments: dict[int, Environment]) -> dict[int, Job]:

    seen: set[int] = set()
    jobs: dict[int, Job] = {}
    if raw.get("jobs") is None and raw.get("jobs_as_code") is not None:
        return jobs  # every job comes from the jobs-as-code file
    for index, item in enumerate(section(raw, "jobs")):
        where = f"jobs[{index}]"
        job_id = positive_id(item, where, seen)
        environment_id = require(item, "environment", where, int)
        if environment_id not in environments:
            raise config_error(
                f"{where}.environment",
                f"names unknown environment {environment_id}",
                "use an id from `environments`",
            )
        steps = require(item, "execute_steps", where, list)
        if not steps:
            raise config_error(f"{where}.execute_steps", "is empty", 'list dbt commands, e.g. ["dbt build"]')
        for step_index, step in enumerate(steps):
            if not isinstance(step, str) or "\x00" in step:
                raise config_error(
                    f"{where}.execute_steps[{step_index}]",
                    "must be a string without NUL",
                    'write "dbt build"',
                )
            try:
                parse_step(step)
            except CommandError as exc:
                raise config_error(
                    f"{where}.execute_steps[{step_index}]", str(exc), "use an allowed dbt command"
                ) from exc
        threads = optional(item, "threads", where, int, None)
        if threads is not None and threads < 1:
            raise config_error(f"{where}.threads", "must be >= 1", "remove it or set a positive number")
        environment = environments[environment_id]
        jobs[job_id] = Job(
            id=job_id,
            account_id=environment.account_id,
            project_id=environment.project_id,
            environment_id=environment_id,
            name=require(item, "name", where, str),
            description=optional(item, "description", where, str, ""),
            execute_steps=tuple(step.strip() for step in steps),
            generate_docs=optional(item, "generate_docs", where, bool, False),
            run_generate_sources=optional(item, "run_generate_sources", where, bool, False),
            threads=threads,
            target_name=optional(item, "target_name", where, str, None),
            timeout_seconds=optional(item, "timeout_seconds", where, int, 0),
            created_at=optional(item, "created_at", where, str, "2025-01-01T00:00:00+00:00"),
            seed_key=f"config:{job_id}",
        )
    return jobs


def _parse_jobs_as_code(
    raw: dict[str, Any], root: Path, environments: dict[int, Environment], jobs: dict[int, Job]
) -> dict[int, Job]:
    """Add the jobs of the dbt-jobs-as-code file ``jobs_as_code.file`` (rendered with ``vars``); both
    paths are relative to ``root``, like ``dbt_executable``."""
    jobs_as_code = optional(raw, "jobs_as_code", "config", dict, None)
    if jobs_as_code is None:
        return jobs
    reject_unknown_keys(jobs_as_code, "jobs_as_code", "jobs_as_code")

    def resolve(key: str) -> Path | None:
        value = optional(jobs_as_code, key, "jobs_as_code", str, None)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (root / path).resolve()

    jobs_file = resolve("file")
    if jobs_file is None:
        raise config_error(
            "jobs_as_code.file", "is missing", "name the dbt-jobs-as-code YAML file, e.g. jobs.yml"
        )
    try:
        declared = load_jobs_file(jobs_file, resolve("vars"), environments, first_id=max(jobs, default=0) + 1)
    except JobsFileError as exc:
        raise ConfigError(f"config key `jobs_as_code`: {exc}") from exc
    return {**jobs, **{job.id: job for job in declared}}


def _parse_webhooks(raw: dict[str, Any], accounts: dict[int, Account]) -> tuple[DeclaredWebhook, ...]:
    items = optional(raw, "webhooks", "config", list, [])
    declared: list[DeclaredWebhook] = []
    for index, item in enumerate(items):
        where = f"webhooks[{index}]"
        if not isinstance(item, dict):
            raise config_error(where, "must be a mapping", "write `- name: Airflow` followed by its keys")
        reject_unknown_keys(item, where, "webhooks")
        name = require(item, "name", where, str)
        if any(other.name == name for other in declared):
            raise config_error(f"{where}.name", f"duplicates {name!r}", "give every webhook its own name")
        account = optional(item, "account", where, int, min(accounts))
        if account not in accounts:
            raise config_error(
                f"{where}.account", f"is {account}, not an account id", "use an id from `accounts`"
            )
        url = require(item, "client_url", where, str)
        env_names = {
            key: optional(item, key, where, str, None) for key in ("client_url_env", "hmac_secret_env")
        }
        if env_names["hmac_secret_env"] is None:
            raise config_error(
                f"{where}.hmac_secret_env", "is missing", "name the environment variable holding the secret"
            )
        for key, value in env_names.items():
            if value is not None and not _ENV_VAR_NAME.match(value):
                raise config_error(
                    f"{where}.{key}", f"is {value!r}, not a variable name", "e.g. DBT_CLOUD_WEBHOOK_SECRET"
                )
        job_ids = optional(item, "job_ids", where, list, [])
        try:
            fields.http_url(url, f"{where}.client_url")
            events = fields.choices(
                require(item, "event_types", where, list), f"{where}.event_types", EVENT_TYPES
            )
            for position, job_id in enumerate(job_ids):
                fields.integer(job_id, f"{where}.job_ids[{position}]", minimum=1)
        except FieldError as exc:
            raise from_field_error(exc) from None
        declared.append(
            DeclaredWebhook(
                name=name,
                account_id=account,
                client_url=url,
                client_url_env=env_names["client_url_env"],
                hmac_secret_env=env_names["hmac_secret_env"],
                event_types=tuple(events),
                job_ids=tuple(job_ids),
                active=optional(item, "active", where, bool, True),
            )
        )
    return tuple(declared)


def _parse_server(raw: dict[str, Any]) -> ServerSettings:
    server = optional(raw, "server", "config", dict, {})
    reject_unknown_keys(server, "server", "server")
    hostnames = optional(server, "extra_hostnames", "server", list, [])
    if not all(isinstance(name, str) and name for name in hostnames):
        raise config_error("server.extra_hostnames", "must be a list of host names", "e.g. [dbt-cloud-local]")
    settings = ServerSettings(
        extra_hostnames=tuple(hostnames),
        run_slots=optional(server, "run_slots", "server", int, 2),
        page_size=optional(server, "page_size", "server", int, 100),
        cancel_grace_seconds=float(optional(server, "cancel_grace_seconds", "server", (int, float), 10.0)),
        log_tail_lines=optional(server, "log_tail_lines", "server", int, 1000),
    )
    if settings.run_slots < 1:
        raise config_error("server.run_slots", "must be >= 1", "set how many runs may execute at once")
    if not 1 <= settings.page_size <= 100:
        raise config_error(
            "server.page_size", "must be between 1 and 100", "dbt Cloud pages hold at most 100 items"
        )
    return settings


def _parse_token_entry(
    entry: Any, where: str, accounts: dict[int, Account]
) -> tuple[str, frozenset[int] | None]:
    """A plain string may use any account (None); ``{token, accounts: [ids]}`` only the accounts listed."""
    if isinstance(entry, dict):
        reject_unknown_keys(entry, where, "api_tokens")
        token = require(entry, "token", where, str)
        allowed = require(entry, "accounts", where, list)
        known = [item for item in allowed if isinstance(item, int) and not isinstance(item, bool)]
        if not allowed or len(known) != len(allowed) or not set(known) <= set(accounts):
            raise config_error(
                f"{where}.accounts",
                f"must list account ids from `accounts`, got {allowed!r}",
                f"use ids among {sorted(accounts)}, or write the token as a plain string for every account",
            )
        scope: frozenset[int] | None = frozenset(allowed)
    else:
        token, scope = entry, None
    if not isinstance(token, str) or len(token.strip()) < 8 or token != token.strip():
        raise config_error(
            where, "must be a token of 8+ characters without surrounding spaces", "use a longer token"
        )
    return token, scope


def _parse_tokens(raw: dict[str, Any], accounts: dict[int, Account]) -> dict[str, frozenset[int] | None]:
    """Each accepted token and the accounts it is limited to (None: any account)."""
    from_env = env_tokens(os.environ)
    if from_env:
        # A real token from the environment replaces the committed placeholder, for any account.
        return dict.fromkeys(from_env)
    entries = optional(raw, "api_tokens", "config", list, [])
    if not entries:
        raise ConfigError(
            "config key `api_tokens`: no API token configured. Fix: list at least one token of 8+ "
            f"characters under `api_tokens:` or set the {ENV_API_TOKEN} environment variable."
        )
    tokens: dict[str, frozenset[int] | None] = {}
    for index, entry in enumerate(entries):
        token, scope = _parse_token_entry(entry, f"api_tokens[{index}]", accounts)
        if token in tokens:
            raise config_error(f"api_tokens[{index}]", "repeats an earlier token", "list every token once")
        tokens[token] = scope
    return tokens


def _read_yaml(config_path: Path) -> dict[str, Any]:
    """The file's top-level mapping; every way of failing becomes one line naming the file."""
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {config_path} does not exist. Fix: pass --config PATH.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"config file {config_path} cannot be read ({exc}). Fix: pass --config with a readable YAML file."
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"config file {config_path} is not valid YAML{where}: {problem}. Fix: correct the YAML there."
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {config_path} must hold a mapping at the top level.")
    reject_unknown_keys(raw, "config", "config")
    return raw


def _parse_faults(raw: dict[str, Any]) -> FaultSettings:
    faults = raw.get("faults") or {}
    if isinstance(faults, dict):
        reject_unknown_keys(faults, "faults", "faults")
        for index, rule in enumerate(faults.get("rules") or []):
            if isinstance(rule, dict):
                reject_unknown_keys(rule, f"faults.rules[{index}]", "faults.rules")
    try:
        return parse_fault_settings(faults)
    except ValueError as exc:
        raise ConfigError(f"config key `faults`: {exc}") from exc


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load, resolve and validate the configuration at ``path`` (default: the packaged config)."""
    config_path = Path(path or DEFAULT_CONFIG_PATH).expanduser().resolve()
    raw = _read_yaml(config_path)

    base = config_path.parent
    root_raw = optional(raw, "root", "config", str, None)
    root = (base / root_raw).resolve() if root_raw else DEFAULT_ROOT

    accounts = _parse_accounts(raw)
    projects = _parse_projects(raw, base, accounts)
    environments = _parse_environments(raw, root, projects)
    jobs = _parse_jobs(raw, environments)
    faults = _parse_faults(raw)
    tokens = _parse_tokens(raw, accounts)
    server = _parse_server(raw)
    jobs = _parse_jobs_as_code(raw, root, environments, jobs)  # last: it reads files
    webhooks = _parse_webhooks(raw, accounts)
    return Config(
        path=config_path,
        root=root,
        server=server,
        api_tokens=tuple(tokens),
        accounts=accounts,
        projects=projects,
        environments=environments,
        jobs=jobs,
        faults=faults,
        token_accounts=tokens,
        webhooks=webhooks,
    )
