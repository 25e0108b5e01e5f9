"""
The environment a run's dbt processes get, and the run's ``profiles.yml``.

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
from typing import Any

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
            "DBT_PROFILES_DIR": str(workspace.profile_dir),
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


class ProfileError(Exception):
    """The run's profile cannot be written (no or unreadable ``profiles.yml``); the message says why."""


def _outputs(profile: Any) -> dict[str, Any]:
    outputs = profile.get("outputs") if isinstance(profile, dict) else None
    return outputs if isinstance(outputs, dict) else {}


def write_run_profile(workspace: RunWorkspace, schema_override: str | None, target: str | None) -> list[str]:
    """
    Write the run's ``profiles.yml`` (``workspace.profile_dir``) and return what was done, as log lines
    of the run's profile step (names, targets and adapter types; never a value).

    dbt Cloud creates each run's profile from the environment's connection and credentials; the local
    connection of a project is its own ``profiles.yml`` (in the run's working copy), written with the
    run's ``schema_override`` on every output (dbt has no flag for it; dbt Cloud rewrites the profile
    it generates, and so does this). The project's own file is never changed.
    """
    source = workspace.project / "profiles.yml"
    if not source.is_file():
        raise ProfileError(
            f"the dbt project has no profiles.yml ({source.name} next to dbt_project.yml): the local dbt "
            "Cloud creates each run's profile from it, as dbt Cloud does from the environment's connection"
        )
    try:
        data = yaml.safe_load(source.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ProfileError(f"the project's profiles.yml is not valid YAML: {str(exc)[:300]}") from None
    if not isinstance(data, dict):
        raise ProfileError("the project's profiles.yml must map profile names to profiles")
    lines = [f"Creating the run's profile from the project's connection ({source})"]
    for name, profile in data.items():
        if name == "config":
            continue
        outputs = _outputs(profile)
        described = ", ".join(
            f"{output} ({settings.get('type', '?')})" if isinstance(settings, dict) else str(output)
            for output, settings in outputs.items()
        )
        default = profile.get("target") if isinstance(profile, dict) else None
        lines.append(f"  profile {name}: outputs {described or '(none)'}; default target {default}")
        if schema_override:
            for settings in outputs.values():
                if isinstance(settings, dict):
                    settings["schema"] = schema_override
    if schema_override:
        lines.append(f"  schema override: {schema_override} (on every output)")
    if target:
        lines.append(f"  target: {target} (the job's target name)")
    workspace.profile_dir.mkdir(parents=True, exist_ok=True)
    written = workspace.profile_dir / "profiles.yml"
    written.write_text(yaml.safe_dump(data, sort_keys=False))
    lines.append(f"Wrote {written}")
    return lines
