"""
Read a dbt-jobs-as-code file (format of dbt-jobs-as-code 1.22.0) into the jobs the server declares.

The same file is meant for ``dbt-jobs-as-code plan``/``sync`` against dbt Cloud, so it is read the way
that tool reads it: Jinja-rendered with a vars file (``{{ account_id }}``...; undefined names are
errors), ``jobs: {<identifier>: {...}}``, the tool's defaults for fields left out (threads 4, target
``default``, job type ``scheduled``...), and each job named ``<name> [[<identifier>]]``, the name
``sync`` gives it in dbt Cloud. A job seeded from the file is therefore already what ``sync`` would
have made, and ``plan`` against a fresh local dbt Cloud reports no changes.

Job-level environment variables (``custom_environment_variables: [{DBT_X: "value"}, ...]``) become
the job's overrides (dbt Cloud's ``type: job`` values, what ``sync`` writes): a run of the job sees
them before the environment's and the project's values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from dbt_cloud_local.model import env_vars
from dbt_cloud_local.model.fields import FieldError
from dbt_cloud_local.model.job_definition import DEFAULTS, merge_definition
from dbt_cloud_local.model.resources import Environment, Job

#: What dbt-jobs-as-code accepts as an identifier (its ``VALID_IDENTIFIER_RE``).
IDENTIFIER = re.compile(r"^[a-zA-Z0-9_-]+$")
#: dbt-jobs-as-code's ``JobDefinition`` defaults for the fields a job may leave out.
TOOL_DEFAULTS: dict[str, Any] = {
    "dbt_version": None,
    "settings": {"threads": 4, "target_name": "default"},
    "execution": {"timeout_seconds": 0},
    "deferring_job_definition_id": None,
    "deferring_environment_id": None,
    "run_lint": False,
    "errors_on_lint_failure": True,
    "description": "",
    "run_compare_changes": False,
    "compare_changes_flags": "--select state:modified",
    "job_type": "scheduled",
    "cost_optimization_features": [],
    "triggers_on_draft_pr": False,
    "job_completion_trigger_condition": None,
}
TOOL_TRIGGERS = {"github_webhook": False, "git_provider_webhook": False, "schedule": False, "on_merge": False}
#: Fields of the tool's ``JobDefinition`` (anything else is a typo).
KNOWN_FIELDS = frozenset(
    {
        *TOOL_DEFAULTS,
        "linked_id",
        "id",
        "identifier",
        "account_id",
        "project_id",
        "environment_id",
        "name",
        "self_deferring",
        "run_generate_sources",
        "execute_steps",
        "generate_docs",
        "schedule",
        "triggers",
        "state",
        "custom_environment_variables",
    }
)
REQUIRED = (
    "account_id",
    "project_id",
    "environment_id",
    "name",
    "settings",
    "run_generate_sources",
    "execute_steps",
    "generate_docs",
    "triggers",
)


class JobsFileError(ValueError):
    """The jobs file cannot be used; the message names the file, the job, the field and the fix."""


def _render(path: Path, vars_path: Path | None) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobsFileError(
            f"{path} cannot be read ({exc.strerror or exc}). Fix: point `file` at a jobs YAML file"
        ) from exc
    import jinja2  # dbt Core and Airflow both depend on it; imported here, only when a file is used
    from jinja2 import meta

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - YAML, not HTML
    names = meta.find_undeclared_variables(environment.parse(text))
    if vars_path is None:
        if names:
            raise JobsFileError(
                f"{path} is templated ({', '.join(sorted(names))}). "
                "Fix: name its vars file under `jobs_as_code.vars`"
            )
        return text
    try:
        values = yaml.safe_load(vars_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise JobsFileError(
            f"vars file {vars_path} cannot be read as YAML ({exc}). Fix: correct `vars`"
        ) from exc
    if not isinstance(values, dict):
        raise JobsFileError(f"vars file {vars_path} must hold a mapping, e.g. `account_id: 1`")
    try:
        return environment.from_string(text).render(values)
    except jinja2.exceptions.UndefinedError as exc:
        raise JobsFileError(f"{path}: {exc.message}. Fix: define it in {vars_path}") from exc


def _tool_job(identifier: str, item: dict[str, Any], where: str) -> dict[str, Any]:
    """The job as the tool sends it to dbt Cloud (its defaults applied, the identifier in the name)."""
    unknown = sorted(str(key) for key in item if key not in KNOWN_FIELDS)
    if unknown:
        raise JobsFileError(f"{where}: unknown field {unknown[0]!r}. Fix: remove it or correct its spelling")
    missing = [key for key in REQUIRED if item.get(key) is None]
    job_type = item.get("job_type", TOOL_DEFAULTS["job_type"])
    if item.get("schedule") is None and job_type not in ("ci", "merge"):
        missing.append("schedule")
    if missing:
        raise JobsFileError(f"{where}: `{missing[0]}` is missing. Fix: add it (dbt-jobs-as-code requires it)")
    job = {**TOOL_DEFAULTS, **{key: value for key, value in item.items() if key in KNOWN_FIELDS}}
    job["triggers"] = {**TOOL_TRIGGERS, **(item["triggers"] if isinstance(item["triggers"], dict) else {})}
    schedule = item.get("schedule") or {"cron": "0 0 1 1 *"}
    cron = schedule.get("cron", "0 0 1 1 *") if isinstance(schedule, dict) else schedule
    job["schedule"] = {  # the tool always sends these two for a cron
        "cron": cron,
        "date": {"type": "custom_cron", "cron": cron},
        "time": {"type": "every_hour", "interval": 1},
    }
    job["name"] = f"{item['name']} [[{identifier}]]"
    return job


def _env_overrides(value: Any, where: str) -> dict[str, str]:
    """``custom_environment_variables``: a list of one-entry mappings ``{DBT_NAME: "value"}``."""
    where = f"{where}.custom_environment_variables"
    if value is None:
        return {}
    if not isinstance(value, list):
        raise JobsFileError(f'{where} must be a list of `DBT_NAME: "value"` entries')
    overrides: dict[str, str] = {}
    for index, entry in enumerate(value):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise JobsFileError(
                f'{where}[{index}] must be one `DBT_NAME: "value"` mapping (one variable per list entry)'
            )
        ((name, item),) = entry.items()
        try:
            env_vars.validate_name(name)
            if not isinstance(item, str):  # dbt-jobs-as-code's model takes text only
                raise env_vars.EnvVarError(
                    f'value of {name} must be text. Fix: quote it, e.g. {name}: "{item}"'
                )
            overrides[name] = env_vars.validate_value(name, item)
        except env_vars.EnvVarError as exc:
            raise JobsFileError(f"{where}[{index}]: {exc}") from None
    if len(overrides) != len(value):
        raise JobsFileError(f"{where} names a variable twice. Fix: keep one entry per variable")
    return overrides


def load_jobs_file(
    path: Path, vars_path: Path | None, environments: dict[int, Environment], *, first_id: int
) -> list[Job]:
    """The file's jobs, with ids from ``first_id`` on in file order (used when free, see store/jobs.py)."""
    text = _render(path, vars_path)
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise JobsFileError(
            f"{path} is not valid YAML ({str(exc).splitlines()[0]}). Fix: correct the YAML"
        ) from exc
    items = raw.get("jobs") if isinstance(raw, dict) else None
    if not isinstance(items, dict) or not items:
        raise JobsFileError(
            f"{path} declares no jobs. Fix: write `jobs:` with `<identifier>: {{...}}` entries"
        )
    jobs = []
    for offset, (identifier, item) in enumerate(items.items()):
        where = f"{path.name}: jobs.{identifier}"
        if not isinstance(identifier, str) or not IDENTIFIER.fullmatch(identifier):
            raise JobsFileError(
                f"{where}: identifiers may hold only letters, digits, _ and -. Fix: rename it"
            )
        if not isinstance(item, dict):
            raise JobsFileError(f"{where}: must be a mapping of job fields")
        job_id = first_id + offset
        tool_job = _tool_job(identifier, item, where)
        overrides = _env_overrides(tool_job.pop("custom_environment_variables", None), where)
        if tool_job.pop("self_deferring", False):
            tool_job["deferring_job_definition_id"] = job_id
        try:
            definition = merge_definition(tool_job, DEFAULTS)
            environment = environments.get(tool_job["environment_id"])
            if environment is None:
                raise FieldError(
                    "environment_id",
                    f"names unknown environment {tool_job['environment_id']}",
                    f"use one of {sorted(environments)} (check the vars file)",
                )
            for key, expected in (
                ("project_id", environment.project_id),
                ("account_id", environment.account_id),
            ):
                if tool_job[key] != expected:
                    raise FieldError(
                        key,
                        f"is {tool_job[key]!r}, but environment {environment.id} belongs to "
                        f"{key[:-3]} {expected}",
                        f"set it to {expected} (check the vars file)",
                    )
            if not isinstance(tool_job["name"], str) or len(tool_job["name"]) > 255:
                raise FieldError(
                    "name", "must be text of at most 255 characters with its [[identifier]]", "shorten it"
                )
        except FieldError as exc:
            raise JobsFileError(f"{where}.{exc.field} {exc.problem}. Fix: {exc.fix}") from None
        settings = definition["settings"]
        jobs.append(
            Job(
                id=job_id,
                account_id=environment.account_id,
                project_id=environment.project_id,
                environment_id=environment.id,
                name=tool_job["name"],
                description=definition["description"],
                execute_steps=tuple(definition["execute_steps"]),
                generate_docs=definition["generate_docs"],
                run_generate_sources=definition["run_generate_sources"],
                threads=settings["threads"],
                target_name=None if settings["target_name"] == "default" else settings["target_name"],
                timeout_seconds=definition["execution"]["timeout_seconds"],
                created_at="2025-01-01T00:00:00+00:00",
                definition=definition,
                seed_key=f"jobs_as_code:{identifier}",
                env_overrides=overrides,
            )
        )
    return jobs
