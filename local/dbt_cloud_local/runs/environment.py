"""
The environment a run's dbt processes get, and the run's copy of ``profiles.yml``.

dbt reads its configuration from environment variables and ``profiles.yml``, so these two decide what
a run connects to. The environment is built from scratch rather than inherited: only PATH and locale
come from the server, then the environment's ``env`` from the config, then the project's environment
variables (the job's override wins over the environment's value, which wins over the project
default: ``Store.resolved_env_vars``), then dbt Cloud's ``DBT_CLOUD_*``
variables and the settings that keep dbt inside the data dir (``HOME``, ``DBT_PROFILES_DIR``). A
server started from a shell full of credentials therefore leaks none of them into runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from dbt_cloud_local.model.records import RunRecord
from dbt_cloud_local.model.resources import Environment, Job
from dbt_cloud_local.runs.workspace import RunWorkspace

#: Variables passed from the server's environment to dbt (nothing else leaks into runs).
PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


def run_environment(
    run: RunRecord,
    *,
    job: Job,
    environment: Environment,
    project_vars: Mapping[str, str],
    home: Path,
    workspace: RunWorkspace,
    server_env: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """Every variable the run's dbt processes see (the per-step paths are added by ``step_paths``)."""
    trigger = run.trigger
    env = {name: server_env[name] for name in PASSTHROUGH_ENV if name in server_env}
    env.update(environment.env)
    env.update(project_vars)
    env.update(
        {
            "HOME": str(home),
            "DBT_PROFILES_DIR": str(workspace.project),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_VERSION_CHECK": "false",
            "DBT_USE_COLORS": "false",
            "DBT_PRINTER_WIDTH": "100",
            "PYTHONUNBUFFERED": "1",
            "DBT_CLOUD_ACCOUNT_ID": str(run.account_id),
            "DBT_CLOUD_PROJECT_ID": str(run.project_id),
            "DBT_CLOUD_ENVIRONMENT_ID": str(run.environment_id),
            "DBT_CLOUD_ENVIRONMENT_NAME": environment.name,
            "DBT_CLOUD_ENVIRONMENT_TYPE": "prod"
            if environment.deployment_type == "production"
            else "staging",
            "DBT_CLOUD_JOB_ID": str(run.job_id),
            "DBT_CLOUD_RUN_ID": str(run.id),
            "DBT_CLOUD_RUN_REASON": trigger.cause,
            "DBT_CLOUD_RUN_REASON_CATEGORY": trigger.cause_category,
            "DBT_CLOUD_GIT_BRANCH": run.git_branch or "",
        }
    )
    target_name = trigger.target_name_override or job.target_name
    if target_name:
        env["DBT_TARGET"] = target_name
    return env


def step_paths(env: Mapping[str, str], workspace: RunWorkspace, index: int) -> dict[str, str]:
    """``env`` for step ``index``: its own target and log directory, so steps never mix artifacts."""
    return {
        **env,
        "DBT_TARGET_PATH": str(workspace.target(index)),
        "DBT_LOG_PATH": str(workspace.logs(index)),
    }


def deps_paths(env: Mapping[str, str], workspace: RunWorkspace) -> dict[str, str]:
    """``env`` for ``dbt deps``, whose debug log must not land in the working copy or a step's logs."""
    return {**env, "DBT_LOG_PATH": str(workspace.deps_logs)}


def warehouse_path(
    environment: Environment, project_vars: Mapping[str, str], project_dir: Path
) -> Path | None:
    """
    The DuckDB file a run in ``environment`` writes, or None if its ``warehouse_env_var`` is unset.

    Resolved the way dbt would see it from the run's working copy (``project_dir``), so that two
    spellings of one file are recognised as the same warehouse.
    """
    value = {**environment.env, **project_vars}.get(environment.warehouse_env_var)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = project_dir / path
    return path.resolve()


def ensure_warehouse_dir(env: Mapping[str, str], environment: Environment) -> None:
    """Create the directory of an absolute warehouse path: DuckDB creates the file, not its folder."""
    value = env.get(environment.warehouse_env_var)
    if value and Path(value).is_absolute():
        Path(value).parent.mkdir(parents=True, exist_ok=True)


def apply_schema_override(workspace: RunWorkspace, schema_override: str | None) -> None:
    """
    Set ``schema_override`` on every output of the working copy's ``profiles.yml``.

    dbt has no flag for the target schema; dbt Cloud rewrites the profile it generates, and this
    server rewrites the run's own copy (never the project's file).
    """
    profiles = workspace.project / "profiles.yml"
    if not schema_override or not profiles.exists():
        return
    data = yaml.safe_load(profiles.read_text()) or {}
    for name, profile in data.items():
        if name == "config" or not isinstance(profile, dict):
            continue
        for output in (profile.get("outputs") or {}).values():
            if isinstance(output, dict):
                output["schema"] = schema_override
    profiles.write_text(yaml.safe_dump(data, sort_keys=False))
