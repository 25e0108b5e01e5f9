"""
Load and validate the local dbt Cloud configuration (one YAML file).

The file declares what a dbt Cloud account would hold: accounts, projects, environments and jobs,
plus server settings, API tokens and fault injection. Validation happens once, at load time, and
every problem is reported with the key that holds it and how to fix it, because a server that starts
with a half-valid config fails later in a far less readable way (inside a dbt run).

Unknown keys are errors too (with a did-you-mean suggestion): a misspelt key would otherwise be
ignored silently and its default used. What only serving needs (the dbt executable, the project
folders, a writable data dir) is checked by :func:`validate_for_serving`, not here, because the
``env`` and ``env-var`` commands and the tests load the config where dbt may be absent.

Jobs come from ``jobs:`` (ids given) and/or the dbt-jobs-as-code file ``jobs_as_code.file`` (with its
Jinja ``vars`` file; see jobs_as_code.py); a serving server seeds them into its store (jobs.py).

Relative paths: ``dbt_project_dir`` is relative to the config file; ``dbt_executable``, the
``jobs_as_code`` files and path-like environment values are relative to ``root`` (default: the
project root, two levels above this package, which is ``/usr/local/airflow`` in the
``dbt-cloud-local`` container).
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dbt_cloud_local.env_vars import reserved_reason
from dbt_cloud_local.faults import FaultSettings, parse_fault_settings

#: The default config shipped with the package.
DEFAULT_CONFIG_PATH = Path(__file__).with_name("config.yml")
#: Project root: base for ``dbt_executable`` and path-like environment values. This package lives in
#: ``local/dbt_cloud_local/``, two levels below it (``/usr/local/airflow`` in the containers).
DEFAULT_ROOT = Path(__file__).resolve().parents[2]

ENV_API_TOKEN = "DBT_CLOUD_LOCAL_API_TOKEN"  # noqa: S105 - a variable name, not a secret
ENV_DBT_EXECUTABLE = "DBT_CLOUD_LOCAL_DBT_EXECUTABLE"

_ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

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
    """
    A dbt Cloud job. The typed fields are what runs read; ``definition`` holds every writable field of
    dbt Cloud's job object (``settings``, ``triggers``, ``schedule``, ``job_type``...) as the API or a
    declaration last wrote it (empty: the defaults of ``jobs.definition_of``). ``seed_key`` names the
    declaration a declared job comes from (``config:<id>``, ``jobs_as_code:<identifier>``); see jobs.py.
    """

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
    updated_at: str | None = None
    #: 1 active, 2 deleted (dbt Cloud soft-deletes jobs: their runs stay readable).
    state: int = 1
    definition: Mapping[str, Any] = field(default_factory=dict, hash=False)
    seed_key: str | None = None
    #: A declared job's environment variable overrides (jobs file ``custom_environment_variables``),
    #: seeded into the store's job scope; runs read the store (env_vars.py), not this field.
    env_overrides: Mapping[str, str] = field(default_factory=dict, hash=False)


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
    #: Loaded: the declared jobs (``jobs:`` and the ``jobs_as_code`` file). A serving server replaces
    #: this with the live ``jobs.JobRepository`` (declared + API-created jobs, from the store).
    jobs: Mapping[int, Job]
    faults: FaultSettings
    #: The accounts each token of ``api_tokens`` is limited to; None (a plain-string token): any account.
    token_accounts: dict[str, frozenset[int] | None] = field(default_factory=dict, repr=False)
    #: Webhook subscriptions declared under ``webhooks:`` (see webhooks.seed_declared).
    webhooks: tuple[DeclaredWebhook, ...] = ()

    def accounts_for(self, token: str) -> frozenset[int] | None:
        """The accounts ``token`` is limited to, or None when it may use any account."""
        return self.token_accounts.get(token, frozenset())


def _fail(key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"config key `{key}`: {problem}. Fix: {fix}.")


def _reject_unknown_keys(mapping: dict[Any, Any], where: str, kind: str) -> None:
    """Refuse keys ``KNOWN_KEYS[kind]`` does not list, suggesting the closest known key."""
    known = KNOWN_KEYS[kind]
    for key in mapping:
        if key in known:
            continue
        name = str(key)
        path = name if where == "config" else f"{where}.{name}"
        close = difflib.get_close_matches(name, sorted(known), n=1)
        if close:
            raise _fail(
                path, f"is not a known key (did you mean `{close[0]}`?)", f"rename it to `{close[0]}`"
            )
        raise _fail(path, "is not a known key", f"remove it; known keys here: {', '.join(sorted(known))}")


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
        _reject_unknown_keys(item, f"{key}[{index}]", key)
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
    _reject_unknown_keys(spec, where, "env")
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
            if not isinstance(name, str) or not _ENV_VAR_NAME.fullmatch(name):
                raise _fail(f"{where}.env", f"{name!r} is not a valid variable name", "use UPPER_SNAKE_CASE")
            reason = reserved_reason(name)
            if reason:
                raise _fail(f"{where}.env.{name}", f"is reserved ({reason})", "remove it or rename it")
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
    jobs: dict[int, Job] = {}
    if raw.get("jobs") is None and raw.get("jobs_as_code") is not None:
        return jobs  # every job comes from the jobs-as-code file
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
            if not isinstance(step, str) or "\x00" in step:
                raise _fail(
                    f"{where}.execute_steps[{step_index}]",
                    "must be a string without NUL",
                    'write "dbt build"',
                )
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
            seed_key=f"config:{job_id}",
        )
    return jobs


def _parse_jobs_as_code(
    raw: dict[str, Any], root: Path, environments: dict[int, Environment], jobs: dict[int, Job]
) -> dict[int, Job]:
    """Add the jobs of the dbt-jobs-as-code file ``jobs_as_code.file`` (rendered with ``vars``); both
    paths are relative to ``root``, like ``dbt_executable``."""
    section = _optional(raw, "jobs_as_code", "config", dict, None)
    if section is None:
        return jobs
    _reject_unknown_keys(section, "jobs_as_code", "jobs_as_code")
    from dbt_cloud_local.jobs_as_code import JobsFileError, load_jobs_file  # avoid an import cycle

    def resolve(key: str) -> Path | None:
        value = _optional(section, key, "jobs_as_code", str, None)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (root / path).resolve()

    jobs_file = resolve("file")
    if jobs_file is None:
        raise _fail("jobs_as_code.file", "is missing", "name the dbt-jobs-as-code YAML file, e.g. jobs.yml")
    try:
        declared = load_jobs_file(jobs_file, resolve("vars"), environments, first_id=max(jobs, default=0) + 1)
    except JobsFileError as exc:
        raise ConfigError(f"config key `jobs_as_code`: {exc}") from exc
    return {**jobs, **{job.id: job for job in declared}}


_WEBHOOK_EVENTS = ("job.run.started", "job.run.completed", "job.run.errored")


@dataclass(frozen=True)
class DeclaredWebhook:
    """A ``webhooks:`` entry: a subscription the server (re)creates at start, its secret read from
    the environment variable ``hmac_secret_env`` (never from the file)."""

    name: str
    account_id: int
    client_url: str
    client_url_env: str | None
    hmac_secret_env: str
    event_types: tuple[str, ...]
    job_ids: tuple[int, ...]
    active: bool


def _parse_webhooks(raw: dict[str, Any], accounts: dict[int, Account]) -> tuple[DeclaredWebhook, ...]:
    items = _optional(raw, "webhooks", "config", list, [])
    declared: list[DeclaredWebhook] = []
    for index, item in enumerate(items):
        where = f"webhooks[{index}]"
        if not isinstance(item, dict):
            raise _fail(where, "must be a mapping", "write `- name: Airflow` followed by its keys")
        _reject_unknown_keys(item, where, "webhooks")
        name = _require(item, "name", where, str)
        if any(other.name == name for other in declared):
            raise _fail(f"{where}.name", f"duplicates {name!r}", "give every webhook its own name")
        account = _optional(item, "account", where, int, min(accounts))
        if account not in accounts:
            raise _fail(f"{where}.account", f"is {account}, not an account id", "use an id from `accounts`")
        url = _require(item, "client_url", where, str)
        if not url.startswith(("http://", "https://")):
            raise _fail(f"{where}.client_url", f"is {url!r}", "use an http(s) URL")
        env_names = {
            key: _optional(item, key, where, str, None) for key in ("client_url_env", "hmac_secret_env")
        }
        if env_names["hmac_secret_env"] is None:
            raise _fail(
                f"{where}.hmac_secret_env", "is missing", "name the environment variable holding the secret"
            )
        for key, value in env_names.items():
            if value is not None and not _ENV_VAR_NAME.match(value):
                raise _fail(
                    f"{where}.{key}", f"is {value!r}, not a variable name", "e.g. DBT_CLOUD_WEBHOOK_SECRET"
                )
        events = _require(item, "event_types", where, list)
        if not events or any(event not in _WEBHOOK_EVENTS for event in events):
            raise _fail(
                f"{where}.event_types", f"is {events!r}", f"list some of {', '.join(_WEBHOOK_EVENTS)}"
            )
        job_ids = _optional(item, "job_ids", where, list, [])
        if not all(isinstance(job, int) and not isinstance(job, bool) and job > 0 for job in job_ids):
            raise _fail(f"{where}.job_ids", f"is {job_ids!r}", "list job ids, or [] for every job")
        declared.append(
            DeclaredWebhook(
                name=name,
                account_id=account,
                client_url=url,
                client_url_env=env_names["client_url_env"],
                hmac_secret_env=env_names["hmac_secret_env"],
                event_types=tuple(dict.fromkeys(events)),
                job_ids=tuple(job_ids),
                active=_optional(item, "active", where, bool, True),
            )
        )
    return tuple(declared)


def _parse_server(raw: dict[str, Any]) -> ServerSettings:
    section = _optional(raw, "server", "config", dict, {})
    _reject_unknown_keys(section, "server", "server")
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


def _parse_token_entry(
    entry: Any, where: str, accounts: dict[int, Account]
) -> tuple[str, frozenset[int] | None]:
    """A plain string may use any account (None); ``{token, accounts: [ids]}`` only the accounts listed."""
    if isinstance(entry, dict):
        _reject_unknown_keys(entry, where, "api_tokens")
        token = _require(entry, "token", where, str)
        allowed = _require(entry, "accounts", where, list)
        known = [item for item in allowed if isinstance(item, int) and not isinstance(item, bool)]
        if not allowed or len(known) != len(allowed) or not set(known) <= set(accounts):
            raise _fail(
                f"{where}.accounts",
                f"must list account ids from `accounts`, got {allowed!r}",
                f"use ids among {sorted(accounts)}, or write the token as a plain string for every account",
            )
        scope: frozenset[int] | None = frozenset(allowed)
    else:
        token, scope = entry, None
    if not isinstance(token, str) or len(token.strip()) < 8 or token != token.strip():
        raise _fail(
            where, "must be a token of 8+ characters without surrounding spaces", "use a longer token"
        )
    return token, scope


def env_tokens(environ: Mapping[str, str]) -> list[str]:
    """The tokens ``DBT_CLOUD_LOCAL_API_TOKEN`` sets (comma-separated), in order; empty when unset."""
    return [token.strip() for token in environ.get(ENV_API_TOKEN, "").split(",") if token.strip()]


def _parse_tokens(raw: dict[str, Any], accounts: dict[int, Account]) -> dict[str, frozenset[int] | None]:
    """Each accepted token and the accounts it is limited to (None: any account)."""
    from_env = env_tokens(os.environ)
    if from_env:
        # A real token from the environment replaces the committed placeholder, for any account.
        return dict.fromkeys(from_env)
    entries = _optional(raw, "api_tokens", "config", list, [])
    if not entries:
        raise ConfigError(
            "config key `api_tokens`: no API token configured. Fix: list at least one token of 8+ "
            f"characters under `api_tokens:` or set the {ENV_API_TOKEN} environment variable."
        )
    tokens: dict[str, frozenset[int] | None] = {}
    for index, entry in enumerate(entries):
        token, scope = _parse_token_entry(entry, f"api_tokens[{index}]", accounts)
        if token in tokens:
            raise _fail(f"api_tokens[{index}]", "repeats an earlier token", "list every token once")
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
    _reject_unknown_keys(raw, "config", "config")
    return raw


def _parse_faults(raw: dict[str, Any]) -> FaultSettings:
    section = raw.get("faults") or {}
    if isinstance(section, dict):
        _reject_unknown_keys(section, "faults", "faults")
        for index, rule in enumerate(section.get("rules") or []):
            if isinstance(rule, dict):
                _reject_unknown_keys(rule, f"faults.rules[{index}]", "faults.rules")
    try:
        return parse_fault_settings(section)
    except ValueError as exc:
        raise ConfigError(f"config key `faults`: {exc}") from exc


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load, resolve and validate the configuration at ``path`` (default: the packaged config)."""
    config_path = Path(path or DEFAULT_CONFIG_PATH).expanduser().resolve()
    raw = _read_yaml(config_path)

    base = config_path.parent
    root_raw = _optional(raw, "root", "config", str, None)
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


# Serving ----------------------------------------------------------------------------------------


def require_writable_dir(path: Path, option: str = "--data-dir") -> Path:
    """Create ``path`` if needed and prove a file can be written there; return it resolved."""
    resolved = path.expanduser().resolve()
    try:
        resolved.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=resolved):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{option} {resolved}: cannot write there ({exc.strerror or exc}). "
            f"Fix: pass a {option} that you can write to, e.g. {option} .state/dbt-cloud-local."
        ) from exc
    return resolved


def _check_project_dir(project: Project, key: str) -> None:
    folder = project.dbt_project_dir
    if not folder.is_dir():
        problem = f"{folder} is not a folder" if folder.exists() else f"{folder} does not exist"
    elif not (folder / "dbt_project.yml").is_file():
        problem = f"{folder} holds no dbt_project.yml"
    else:
        return
    raise _fail(
        key, problem, "point it at the dbt project's folder (relative paths start at the config file)"
    )


def _check_executable(environment: Environment, key: str) -> None:
    executable = environment.dbt_executable
    if executable.is_file() and os.access(executable, os.X_OK):
        return
    problem = f"{executable} is not executable" if executable.exists() else f"{executable} does not exist"
    if os.environ.get(ENV_DBT_EXECUTABLE):
        raise ConfigError(
            f"environment variable {ENV_DBT_EXECUTABLE}: {problem}. "
            "Fix: point it at an installed dbt executable, or unset it to use the config's dbt_executable."
        )
    raise _fail(key, problem, "run `make venv` (it installs .venv-dbt/bin/dbt) or set it to a dbt executable")


def validate_for_serving(config: Config, data_dir: Path) -> Path:
    """
    Check what a serving server needs and :func:`load_config` leaves alone: each project folder holds
    a dbt_project.yml, each dbt executable can run, the data dir is writable. Otherwise the server
    would start and every run would fail later, far from the cause. Returns the resolved data dir.
    """
    for index, project in enumerate(config.projects.values()):
        _check_project_dir(project, f"projects[{index}].dbt_project_dir")
    for index, environment in enumerate(config.environments.values()):
        _check_executable(environment, f"environments[{index}].dbt_executable")
    return require_writable_dir(data_dir)
