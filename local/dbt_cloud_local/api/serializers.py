"""
Shape API objects the way dbt Cloud does, within the official OpenAPI schemas.

Every field the schemas list is present; one without a value (``finished_at`` of a running run,
``git_sha`` when none was given) is ``null``, never omitted, as dbt Cloud sends it. The specs declare
no field ``nullable``: they disagree with dbt Cloud there, and we follow dbt Cloud (the contract test
validates with every field nullable; types, formats and enums still hold). Timestamps are RFC 3339
(``2025-01-31T12:00:00.123456+00:00``) as the spec's ``date-time`` format requires (the hosted API
prints a space instead of the ``T``).
"""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime
from typing import Any

from dbt_cloud_local.config.settings import Config
from dbt_cloud_local.model.anatomy import CONNECTION_TYPE
from dbt_cloud_local.model.env_vars import scope_type
from dbt_cloud_local.model.job_definition import definition_of
from dbt_cloud_local.model.resources import Account, Environment, Job, Project
from dbt_cloud_local.model.statuses import (
    CANCELLED,
    ERROR,
    IN_FLIGHT,
    RUNNING,
    STATUS_HUMANIZED,
    SUCCESS,
    TERMINAL,
)
from dbt_cloud_local.runs.workspace import RunWorkspace, tail_text

#: A step's ``status_color``: "a status color code, in hex format" (the spec's ``RunStepResponse``); the
#: run pages use the same colours. In flight: blue.
STATUS_COLOR = {SUCCESS: "#1a7f37", ERROR: "#cf222e", CANCELLED: "#9a6700"}
IN_FLIGHT_COLOR = "#0969da"
STATIC_TIMESTAMP = "2025-01-01T00:00:00+00:00"
FAR_FUTURE = "2099-12-31T00:00:00+00:00"


# Accounts, projects, environments ---------------------------------------------------------------


def account(item: Account) -> dict[str, Any]:
    """An ``AccountResponse``: the many required billing fields carry neutral local values."""
    return {
        "id": item.id,
        "name": item.name,
        "state": 1,
        "plan": "enterprise",
        "run_slots": 2,
        "developer_seats": 1,
        "it_seats": 0,
        "explorer_seats": 0,
        "analyst_seats": 0,
        "read_only_seats": 0,
        "locked": False,
        "lock_reason": "",
        "lock_cause": "other",
        "unlocked_at": STATIC_TIMESTAMP,
        "pending_cancel": False,
        "billing_email_address": "",
        "pod_memory_request_mebibytes": 0,
        "develop_pod_memory_request_mebibytes": 0,
        "run_duration_limit_seconds": 86400,
        "queue_limit": 50,
        "enterprise_login_slug": "",
        "business_critical": False,
        "starter_repo_url": "",
        "git_auth_level": "personal",
        "identifier": f"local{item.id}",
        "trial_end_date": FAR_FUTURE,
        "static_subdomain": "",
        "vanity_subdomain": "",
        "run_locked_until": STATIC_TIMESTAMP,
        "docs_job_id": None,
        "freshness_job_id": None,
        "copilot_locked_until": STATIC_TIMESTAMP,
        "agent_credit_locked": False,
        "account_migration_events": [],
        "groups": [],
        "created_at": STATIC_TIMESTAMP,
        "updated_at": STATIC_TIMESTAMP,
    }


def _project_jobs(item: Project, config: Config) -> tuple[Job | None, Job | None]:
    """The project's docs and freshness jobs: its first jobs generating docs and sources."""
    jobs = sorted(
        (job for job in config.jobs.values() if job.project_id == item.id and job.state == 1),
        key=lambda job: job.id,
    )
    docs_job = next((job for job in jobs if job.generate_docs), jobs[0] if jobs else None)
    freshness_job = next((job for job in jobs if job.run_generate_sources), docs_job)
    return docs_job, freshness_job


def project_ref(item: Project, config: Config) -> dict[str, Any]:
    """The nested ``Project`` object (in jobs and environments)."""
    docs_job, freshness_job = _project_jobs(item, config)
    return {
        "id": item.id,
        "name": item.name,
        "account_id": item.account_id,
        "description": f"dbt project at {item.dbt_project_dir.name}",
        "connection_id": item.id,
        "repository_id": item.id,
        "semantic_layer_config_id": None,
        "state": 1,
        "dbt_project_subdirectory": None,
        "docs_job_id": docs_job.id if docs_job else None,
        "freshness_job_id": freshness_job.id if freshness_job else None,
        "type": 0,
    }


def environment_v2(item: Environment) -> dict[str, Any]:
    """The nested ``EnvironmentV2`` object (in jobs and runs)."""
    return {
        "id": item.id,
        "account_id": item.account_id,
        "project_id": item.project_id,
        "name": item.name,
        "dbt_version": item.dbt_version,
        "connection_id": item.project_id,
        "credentials_id": item.id,
        "repository_id": item.project_id,
        "extended_attributes_id": None,
        "use_custom_branch": True,
        "custom_branch": item.custom_branch,
        "dbt_project_subdirectory": None,
        "supports_docs": True,
        "deployment_type": item.deployment_type,
        "type": "deployment",
        "created_by_id": None,
        "state": 1,
    }


def environment_v3_ref(item: Environment) -> dict[str, Any]:
    """The nested ``EnvironmentV3`` object (in projects)."""
    return {
        **environment_v2(item),
        "enable_model_query_history": False,
        "enable_dbt_state": False,
        "primary_profile_id": item.id,
    }


def environment_v3(item: Environment, config: Config) -> dict[str, Any]:
    """An ``EnvironmentV3Response``."""
    return {
        **environment_v3_ref(item),
        "raw_dbt_version": item.dbt_version,
        "is_deferrable": False,
        "created_at": STATIC_TIMESTAMP,
        "updated_at": STATIC_TIMESTAMP,
        "project": project_ref(config.projects[item.project_id], config),
        "credentials": credentials(item),
        "fusion_readiness": {},
    }


def environment_v2_full(
    item: Environment, config: Config, variables: list[dict[str, Any]], jobs: list[Job]
) -> dict[str, Any]:
    """
    An ``EnvironmentV2Response`` (the v2 routes dbt Cloud keeps for clients such as dagster-dbt):
    the nested environment with its repository, connection (the spec's ``PostgresConnection`` shape:
    no host or port, the warehouse is a DuckDB file), the environment's own variable values
    (``custom_environment_variables``, names and scopes; values as ``display_value``) and its jobs.
    """
    project = config.projects[item.project_id]
    return {
        **environment_v2(item),
        "raw_dbt_version": item.dbt_version,
        "created_at": STATIC_TIMESTAMP,
        "updated_at": STATIC_TIMESTAMP,
        "repository": repository_ref(project),
        "connection": {
            "id": project.id,
            "account_id": item.account_id,
            "dbt_project_id": project.id,
            "name": f"{CONNECTION_TYPE} (local)",
            "type": "duckdb",
            "state": 1,
            "created_by_id": None,
            "created_by_service_token_id": None,
            "hostname": "",
            "dbname": _warehouse_file(project, [item]) or "",
            "port": 0,
            "tunnel_enabled": False,
        },
        "custom_environment_variables": variables,
        "jobs": [job_definition_v2(job) for job in jobs],
    }


#: The one user of the local dbt Cloud: whoever holds its API tokens (it has no accounts of people).
LOCAL_USER_ID = 1


def _local_user_identity() -> dict[str, Any]:
    return {
        "id": LOCAL_USER_ID,
        "first_name": "Local",
        "last_name": "dbt Cloud",
        "email": "local@localhost",
        "email_verified": True,
        "is_active": True,
        "is_staff": False,
        "created_at": STATIC_TIMESTAMP,
    }


def user_v2(accounts: list[Account]) -> dict[str, Any]:
    """A ``UserResponse``: the token holder, with a developer license and the account admin permission
    in each account the token may use (the token grants exactly that)."""
    grants = [
        {
            "id": account.id,
            "account_id": account.id,
            "user_id": LOCAL_USER_ID,
            "license_type": "developer",
            "permission_set": "account_admin",
            "state": 1,
            "created_at": STATIC_TIMESTAMP,
            "updated_at": STATIC_TIMESTAMP,
        }
        for account in accounts
    ]
    return {
        **_local_user_identity(),
        "fullname": "Local dbt Cloud",
        "apitoken_last_used": None,
        "last_login": None,
        "email_connected": False,
        "enterprise_connected": False,
        "enterprise_authentication_method": None,
        "sso_only_user": False,
        "github_connected": False,
        "github_username": None,
        "github_token_retrieval_failure": False,
        "gitlab_connected": False,
        "gitlab_username": None,
        "gitlab_token_retrieval_failure": False,
        "azure_active_directory_connected": False,
        "azure_active_directory_username": None,
        "azure_active_directory_token_retrieval_failure": False,
        "auth_provider_infos": {},
        "permissions": grants,
        "licenses": {str(account.id): grant for account, grant in zip(accounts, grants, strict=True)},
    }


def account_user(account: Account) -> dict[str, Any]:
    """An ``AccountUser`` (v3): the token holder in ``account``, with a developer license."""
    return {
        **_local_user_identity(),
        "updated_at": STATIC_TIMESTAMP,
        "fullname": "Local dbt Cloud",
        "license": {"id": account.id, "license_type": "developer"},
        "scim_managed": False,
    }


def job_definition_v2(item: Job) -> dict[str, Any]:
    """
    A ``JobDefinitionV2``/``InternalJobDefinition`` (nested in projects and runs), from the job's
    definition (``job_definition.definition_of``). A job never given a schedule still carries dbt
    Cloud's default one (every hour), with ``triggers.schedule`` false: local jobs run only when
    triggered. dbt Cloud sends ``date`` and ``time`` as objects (``HumanReadableSchedule``) in jobs and
    in a run's ``job`` alike; the spec's ``InternalJobDefinition`` (a run's ``job``) says strings: we
    follow dbt Cloud.
    """
    definition = definition_of(item)
    settings = definition["settings"]
    return {
        "id": item.id,
        "account_id": item.account_id,
        "project_id": item.project_id,
        "environment_id": item.environment_id,
        "name": item.name,
        **definition,
        # None: the profile's own threads and target; dbt Cloud's defaults are 4 and "default".
        "settings": {
            "threads": settings["threads"] or 4,
            "target_name": settings["target_name"] or "default",
        },
        "state": item.state,
        "generate_sources": definition["run_generate_sources"],
        "created_at": item.created_at,
        "updated_at": item.updated_at or item.created_at,
    }


def _warehouse_file(item: Project, environments: list[Environment]) -> str | None:
    """The DuckDB file of the project's first environment that names one (its ``warehouse_env_var``)."""
    for environment in environments:
        value = environment.env.get(environment.warehouse_env_var)
        if value:
            return value
    return None


def _environments_of(item: Project, config: Config) -> list[Environment]:
    return sorted(
        (env for env in config.environments.values() if env.project_id == item.id), key=lambda env: env.id
    )


def connection(item: Project, config: Config) -> dict[str, Any]:
    """
    The project's connection (``BaseConnectionV3Response``; its id is the project's). Every local
    project connects to DuckDB, which dbt Cloud has no connection type for (its spec lists postgres,
    redshift, snowflake, bigquery, adapter): "duckdb" plus ``details.path`` is what OpenLineage's dbt
    Cloud processor reads to name the warehouse (``duckdb://<path>``), so lineage works locally.
    """
    return {
        "id": item.id,
        "account_id": item.account_id,
        "project_id": item.id,
        "name": f"{CONNECTION_TYPE} (local)",
        "type": "duckdb",
        "details": {"path": _warehouse_file(item, _environments_of(item, config))},
        "adapter_version": None,
        "created_by_id": None,
        "created_by_service_token_id": None,
        "state": 1,
        "private_link_endpoint_id": None,
        "oauth_configuration_id": None,
        "oauth_redirect_uri": "",
        "created_at": STATIC_TIMESTAMP,
        "updated_at": STATIC_TIMESTAMP,
    }


def account_connection(item: Project, config: Config) -> dict[str, Any]:
    """The project's connection as an account connection (``AccountConnectionDetail``): DuckDB has
    no ``adapter_version`` and no ``config`` among the spec's adapters, so both are null."""
    return {
        "id": item.id,
        "account_id": item.account_id,
        "name": f"{CONNECTION_TYPE} (local)",
        "adapter_version": None,
        "config": None,
        "private_link_endpoint_id": None,
        "is_ssh_tunnel_enabled": False,
        "oauth_configuration_id": None,
        "oauth_redirect_uri": "",
        "is_configured_for_native_oauth": False,
        "platform_metadata_credentials_id": None,
        "analytics_credentials_id": None,
        "environment__count": len(_environments_of(item, config)),
        "created_at": STATIC_TIMESTAMP,
        "updated_at": STATIC_TIMESTAMP,
    }


def repository_ref(item: Project) -> dict[str, Any]:
    """The project's repository as jobs and projects nest it: the project folder itself
    (``remote_backend`` manual_config, no git remote). Its id is the project's."""
    return {
        "id": item.id,
        "account_id": item.account_id,
        "project_id": item.id,
        "full_name": None,
        "remote_backend": "manual_config",
        "git_clone_strategy": None,
        "deploy_key_id": None,
        "repository_credentials_id": None,
        "github_installation_id": None,
        "github_webhook_id": None,
        "state": 1,
        "private_link_endpoint_id": None,
        "git_provider_id": None,
    }


def repository(item: Project) -> dict[str, Any]:
    """A ``RepositoryV2Response``/``RepositoryV3Response``: the project folder, which each run's clone
    step copies (no deploy key, no git provider)."""
    return {
        **repository_ref(item),
        "name": item.name,
        "github_repo": None,
        "web_url": None,
        "deploy_key": {"account_id": item.account_id, "public_key": "", "state": 1},
        "git_provider": None,
        "gitlab": None,
        "is_private_link_enabled": False,
        "created_at": STATIC_TIMESTAMP,
        "updated_at": STATIC_TIMESTAMP,
    }


def credentials(item: Environment) -> dict[str, Any]:
    """An environment's credentials (``DbtAdapterCredentials``; their id is the environment's)."""
    return {
        "id": item.id,
        "account_id": item.account_id,
        "project_id": item.project_id,
        "type": "adapter",
        "state": 1,
        "threads": 4,
        "username": "local",
        "default_schema": "main",
        "target_name": "default",
        "adapter_id": None,
        "adapter_version": None,
    }


def profile(item: Environment) -> dict[str, Any]:
    """A ``ProfileDetail``: one profile per environment, binding the project's connection and the
    environment's credentials (ids: the environment's, as its ``primary_profile_id`` says)."""
    binding = {
        "id": item.id,
        "name": item.name,
        "type": "deployment",
        "deployment_type": item.deployment_type,
    }
    return {
        "id": item.id,
        "account_id": item.account_id,
        "project_id": item.project_id,
        "key": f"{item.name.lower().replace(' ', '_')}_{item.id}",
        "connection_id": item.project_id,
        "credentials_id": item.id,
        "extended_attributes_id": None,
        "primary_bindings": [binding],
        "catalog_bindings": [],
    }


def project_v3(item: Project, config: Config) -> dict[str, Any]:
    """A ``ProjectResponse``. The spec requires docs/freshness jobs: we name the project's first jobs."""
    environments = _environments_of(item, config)
    docs_job, freshness_job = _project_jobs(item, config)
    placeholder_job = docs_job or Job(
        id=0, account_id=item.account_id, project_id=item.id, environment_id=0, name="", description="",
        execute_steps=("dbt build",), generate_docs=False, run_generate_sources=False, threads=None,
        target_name=None, timeout_seconds=0, created_at=STATIC_TIMESTAMP,
    )  # fmt: skip
    return {
        **project_ref(item, config),
        "created_at": STATIC_TIMESTAMP,
        "updated_at": STATIC_TIMESTAMP,
        "connection": connection(item, config),
        "environments": [environment_v3_ref(env) for env in environments],
        "repository": repository_ref(item),
        "group_permissions": [],
        "docs_job": job_definition_v2(docs_job or placeholder_job),
        "freshness_job": job_definition_v2(freshness_job or placeholder_job),
        "fusion_readiness": {},
        "default_version": "latest",
    }


def job(item: Job, config: Config, run_failure_count: int = 0) -> dict[str, Any]:
    """A ``HumanReadableJobDefinitionResponse``."""
    environment = config.environments[item.environment_id]
    definition = job_definition_v2(item)
    return {
        **definition,
        # The job's own dbt_version is null unless it overrides its environment's (as in dbt Cloud).
        "raw_dbt_version": definition["dbt_version"] or environment.dbt_version,
        "is_deferrable": False,
        "lifecycle_webhooks_url": "",
        "run_failure_count": run_failure_count,
        "account": {
            "id": item.account_id,
            "name": config.accounts[item.account_id].name,
            "state": 1,
            "docs_job_id": None,
            "freshness_job_id": None,
        },
        "project": project_ref(config.projects[item.project_id], config),
        "environment": environment_v2(environment),
        "fusion_readiness": {},
        "generate_sources": item.run_generate_sources,
    }


# Runs -----------------------------------------------------------------------------------------


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


def _clock(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _humanize(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} hour{'s' * (hours != 1)}"] if hours else []
    if minutes:
        parts.append(f"{minutes} minute{'s' * (minutes != 1)}")
    parts.append(f"{secs} second{'s' * (secs != 1)}")
    return ", ".join(parts)


def run_step(
    step: dict[str, Any], workspace: RunWorkspace, tail_lines: int, full_debug: bool
) -> dict[str, Any]:
    """A ``RunStep`` with dbt's console output in ``logs`` and its debug log in ``debug_logs``."""
    index = step["idx"]
    logs, _ = tail_text(workspace.console(index), tail_lines)
    truncated_debug, _ = tail_text(workspace.debug_log(index), tail_lines)
    debug = (
        workspace.debug_log(index).read_text(errors="replace")
        if full_debug and workspace.debug_log(index).exists()
        else truncated_debug
    )
    end = step["finished_at"] or (step["updated_at"] if step["status"] not in IN_FLIGHT else None)
    duration = _seconds_between(step["started_at"], step["finished_at"] or end)
    return {
        "id": step["id"],
        "run_id": step["run_id"],
        "account_id": None,
        "index": index,
        "name": step["name"],
        "status": step["status"],
        "status_humanized": STATUS_HUMANIZED[step["status"]],
        "status_color": STATUS_COLOR.get(step["status"], IN_FLIGHT_COLOR),
        # The clone and profile steps invoke no dbt command.
        "run_step_command": {"run_step_id": step["id"], "dbt_command": step["command"] or None},
        "run_step_invocation": {"run_step_id": step["id"], "run_id": step["run_id"]},
        "logs": logs,
        "debug_logs": debug,
        "truncated_debug_logs": truncated_debug,
        "log_path": str(workspace.console(index)),
        "debug_log_path": str(workspace.debug_log(index)),
        "created_at": step["created_at"],
        "updated_at": step["updated_at"],
        "started_at": step["started_at"],
        "finished_at": step["finished_at"],
        "duration": _clock(duration),
        "duration_humanized": _humanize(duration),
        "exit_code": step["exit_code"],
    }


#: The ``RunTrigger`` fields: those a run was not given are null.
TRIGGER_FIELDS = (
    "cause",
    "job_definition_id",
    "git_branch",
    "git_sha",
    "azure_pull_request_id",
    "github_pull_request_id",
    "gitlab_merge_request_id",
    "non_native_pull_request_id",
    "schema_override",
    "dbt_version_override",
    "threads_override",
    "target_name_override",
    "generate_docs_override",
    "timeout_seconds_override",
    "steps_override",
    "cause_category",
)


def run_href(base_url: str, run: dict[str, Any]) -> str:
    return f"{base_url}/deploy/{run['account_id']}/projects/{run['project_id']}/runs/{run['id']}/"


def run(
    item: dict[str, Any],
    config: Config,
    *,
    base_url: str,
    include: Set[str],
    steps: list[dict[str, Any]] | None = None,
    workspace: RunWorkspace | None = None,
    retry_reason: str | None = "",
) -> dict[str, Any]:
    """
    A ``RunResponse``; ``include`` selects related objects (trigger, job, environment, run_steps).

    ``retry_reason`` is why the run cannot be retried (a ``RetryNotSupportedReasonEnum`` value, see
    ``runs.plan.retry_refusal``) or None when it can; left out, only the status decides.
    """
    status = item["status"]
    if retry_reason == "":
        retry_reason = None if status == ERROR else "RETRY_NOT_FAILED_RUN"
    created, started, finished = item["created_at"], item["started_at"], item["finished_at"]
    now_or_finished = finished or item["updated_at"]
    duration = _seconds_between(created, now_or_finished)
    queued = _seconds_between(
        created, started or (now_or_finished if status in TERMINAL else item["updated_at"])
    )
    run_duration = _seconds_between(started, now_or_finished) if started else 0.0
    job_config = config.jobs.get(item["job_id"])
    environment = config.environments.get(item["environment_id"])
    trigger = dict(item["trigger"])
    data: dict[str, Any] = {
        "id": item["id"],
        "trigger_id": item["id"],
        "account_id": item["account_id"],
        "environment_id": item["environment_id"],
        "project_id": item["project_id"],
        "job_definition_id": item["job_id"],
        "job_id": item["job_id"],
        "status": status,
        "status_humanized": STATUS_HUMANIZED[status],
        "status_message": item["status_message"],
        "dbt_version": environment.dbt_version if environment else None,
        "git_branch": item["git_branch"],
        "git_sha": item["git_sha"],
        "owner_thread_id": None,
        "deferring_run_id": None,
        "executed_by_thread_id": "dbt-run" if item["dequeued_at"] else None,
        "artifacts_saved": bool(item["artifacts_saved"]),
        "artifact_s3_path": f"runs/{item['id']}/steps" if item["artifacts_saved"] else None,
        "has_docs_generated": bool(item["has_docs_generated"]),
        "has_sources_generated": bool(item["has_sources_generated"]),
        "notifications_sent": status in TERMINAL,
        "blocked_by": [],
        "created_at": created,
        "updated_at": item["updated_at"],
        "dequeued_at": item["dequeued_at"],
        "started_at": started,
        "finished_at": finished,
        "last_checked_at": item["updated_at"],
        "last_heartbeat_at": item["last_heartbeat_at"],
        "should_start_at": created,
        "in_progress": status in IN_FLIGHT,
        "is_complete": status in TERMINAL,
        "is_success": status == SUCCESS,
        "is_error": status == ERROR,
        "is_cancelled": status == CANCELLED,
        "is_running": status == RUNNING,
        "duration": _clock(duration),
        "queued_duration": _clock(queued),
        "run_duration": _clock(run_duration),
        "duration_humanized": _humanize(duration),
        "queued_duration_humanized": _humanize(queued),
        "run_duration_humanized": _humanize(run_duration),
        "created_at_humanized": created,
        "finished_at_humanized": finished,
        "retrying_run_id": item["retry_of_run_id"],
        "can_retry": retry_reason is None,
        "retry_not_supported_reason": retry_reason,
        "used_repo_cache": False,
        "href": run_href(base_url, item),
        # Related objects are null (run_steps empty) unless ``include_related`` asks for them.
        "trigger": None,
        "job": None,
        "environment": None,
        "run_steps": [],
        "deprecation": None,
        "audit": None,
    }
    if "trigger" in include:
        data["trigger"] = {
            "id": item["id"],
            **dict.fromkeys(TRIGGER_FIELDS),
            **trigger,
            "created_at": created,
            "updated_at": created,
        }
    if "job" in include and job_config is not None:
        data["job"] = job_definition_v2(job_config) | {"dbt_version": data["dbt_version"]}
    if "environment" in include and environment is not None:
        data["environment"] = environment_v2(environment)
    if "run_steps" in include:
        assert workspace is not None
        data["run_steps"] = [
            run_step(step, workspace, config.server.log_tail_lines, "debug_logs" in include)
            | {"account_id": item["account_id"]}
            for step in steps or []
        ]
    return data


# Environment variables ----------------------------------------------------------------------


def env_var_value(config: Config, project_id: int, account_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """A ``CustomEnvironmentVariableResponse``. ``display_value`` carries the value (dbt-jobs-as-code
    reads it back as the value it compares), as dbt Cloud shows non-secret values."""
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
        "environment": environment_v3(environment, config) if environment else None,
    }
