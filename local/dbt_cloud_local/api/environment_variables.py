"""
Project environment variables (v3): the bulk routes the dbt Cloud UI uses (every scope of a variable at
once) and the one-value routes dbt-jobs-as-code uses (a job's override). Every entry of a request is
checked before anything is written, so a request with one bad entry changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import (
    Context,
    Id,
    PathAccount,
    PathProject,
    active_job,
    authenticated,
)
from dbt_cloud_local.api.envelopes import envelope, response_status
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.api.query import query_int
from dbt_cloud_local.api.requests import (
    BulkCreateRequest,
    BulkDeleteRequest,
    BulkUpdateRequest,
    EnvVarValueRequest,
    EnvVarValueUpdate,
)
from dbt_cloud_local.api.serializers import LOCAL_USER_ID
from dbt_cloud_local.model.env_vars import PROJECT_SCOPE, EnvVarError, job_scope, validate_name
from dbt_cloud_local.model.resources import Project
from dbt_cloud_local.store import env_vars

router = APIRouter(dependencies=[Depends(authenticated)])

_BASE = "/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables"


@router.get(f"{_BASE}/environment/")
def get_environment_variables(project: PathProject, ctx: Context) -> dict[str, Any]:
    data = env_vars.describe(ctx.config, ctx.store, project.id)
    return {**envelope(data), "extra": None, "error_code": None}


@router.get(f"{_BASE}/user/")
def get_user_environment_variables(request: Request, project: PathProject, ctx: Context) -> dict[str, Any]:
    """
    ``EnvVarUserResponse``: each variable's values a developer would see, by scope. The local dbt
    Cloud has no developer credentials and no user overrides (its one user holds the API tokens), so
    a variable shows its ``project`` default only; ``user_id`` may name that user and no other.
    """
    user_id = query_int(request, "user_id")
    if user_id is not None and user_id != LOCAL_USER_ID:
        raise ApiError(404, f"User {user_id} not found", f"The local dbt Cloud's one user is {LOCAL_USER_ID}")
    variables: dict[str, dict[str, Any]] = {}
    for row in ctx.store.env_vars(project.id):
        if row["environment_id"] == PROJECT_SCOPE:
            variables[row["name"]] = {"project": {"id": row["id"], "value": row["value"]}}
    return {**envelope(variables), "extra": None, "error_code": None}


def _job_of_query(request: Request, account: PathAccount, ctx: Context) -> Any:
    """The job ``?job_definition_id=`` names (required)."""
    job_id = query_int(request, "job_definition_id")
    if job_id is None:
        raise ApiError(400, "job_definition_id is required", "Fix: add ?job_definition_id=<job id>")
    return active_job(job_id, account, ctx)


@router.get(f"{_BASE}/job/")
def get_job_environment_variables(
    project: PathProject, job: Annotated[Any, Depends(_job_of_query)], ctx: Context
) -> dict[str, Any]:
    """
    ``EnvVarJobResponse``: each variable's value per scope a run of the job sees, ``project`` (the
    default), ``environment`` (the job's environment) and ``job`` (the job's override, what
    dbt-jobs-as-code reads and compares). Absent scopes are left out, as dbt Cloud does and as
    clients expect (they call ``.get("job", {})``).
    """
    if job.project_id != project.id:
        raise ApiError(404, f"Job {job.id} not found in project {project.id}")
    scopes = {PROJECT_SCOPE: "project", job.environment_id: "environment", job_scope(job.id): "job"}
    variables: dict[str, dict[str, Any]] = {}
    for row in ctx.store.env_vars(project.id):
        scope = scopes.get(row["environment_id"])
        if scope is not None:
            variables.setdefault(row["name"], {})[scope] = {"id": row["id"], "value": row["value"]}
    return {**envelope(variables), "extra": None, "error_code": None}


def _planned_entry(ctx: Any, project: Project, index: int, item: Any) -> env_vars.Change:
    """Validate one ``env_var`` entry of a bulk create, naming it in the error."""
    if not isinstance(item, dict):
        raise ApiError(400, f"env_var[{index}] must be an object", 'Fix: send {"new_name": "DBT_NAME", ...}')
    values = {key: value for key, value in item.items() if key != "new_name"}
    try:
        return env_vars.plan_change(ctx.config, project.id, item.get("new_name"), values)
    except EnvVarError as exc:
        raise ApiError(400, f"env_var[{index}]: {exc}") from None


@router.post(f"{_BASE}/bulk/")
def create_environment_variables(
    project: PathProject,
    body: Annotated[BulkCreateRequest, BulkCreateRequest.dependency()],
    ctx: Context,
) -> dict[str, Any]:
    """Body ``{"env_var": [{"new_name": "DBT_X", "project": "default", "<Environment>": "value"}]}``."""
    changes = [_planned_entry(ctx, project, index, item) for index, item in enumerate(body.env_var)]
    results = []
    for change in changes:  # every entry is valid: write them all
        written, _ = env_vars.apply_change(ctx.store, project.id, change)
        results.append(
            {
                "status": "success",
                "status_code": 201,
                "key_name": change.name,
                "data": {"message": "Environment variable saved", "new_var_ids": written, "failures": []},
            }
        )
    return {"status": response_status(), "data": results}


@router.put(f"{_BASE}/bulk/")
def update_environment_variables(
    project: PathProject,
    body: Annotated[BulkUpdateRequest, BulkUpdateRequest.dependency()],
    ctx: Context,
) -> dict[str, Any]:
    """Body ``{"env_vars": {"name": "DBT_X", "<Environment>|project": "value" or null to delete}}``."""
    values = {key: value for key, value in body.env_vars.items() if key != "name"}
    try:
        change = env_vars.plan_change(ctx.config, project.id, body.env_vars["name"], values)
    except EnvVarError as exc:
        raise ApiError(400, f"env_vars: {exc}") from None
    written, deleted = env_vars.apply_change(ctx.store, project.id, change)
    data = {
        "message": "Environment variable updated",
        "new_var_ids": written,
        "deleted_var_ids": deleted,
        "failures": [],
    }
    return {"status": response_status(), "data": data}


@router.delete(f"{_BASE}/bulk/")
def delete_environment_variables(
    project: PathProject,
    body: Annotated[BulkDeleteRequest, BulkDeleteRequest.dependency()],
    ctx: Context,
) -> Response:
    """Body ``{"env_var_names": ["DBT_X", ...]}``: delete every scope of those variables."""
    valid = []
    for index, name in enumerate(body.env_var_names):  # all names first: a bad one deletes nothing
        try:
            valid.append(validate_name(name, allow_reserved=True))
        except EnvVarError as exc:
            raise ApiError(400, f"env_var_names[{index}]: {exc}") from None
    for name in valid:
        ctx.store.unset_env_var(project.id, name)
    return Response(status_code=204)


# One value of a variable (after the bulk/ routes: ``{env_var_id}`` would match "bulk") -------------


def _check_placement(request: EnvVarValueRequest | EnvVarValueUpdate, project: Project) -> None:
    """The account and project a body names, if any, are the URL's."""
    for key, expected in (("account_id", project.account_id), ("project_id", project.id)):
        value = getattr(request, key)
        if value is not None and value != expected:
            raise ApiError(400, f"{key} is {value} but the URL names {expected}; send {key} {expected}")


@router.post(f"{_BASE}/")
def create_environment_variable(
    project: PathProject,
    body: Annotated[EnvVarValueRequest, EnvVarValueRequest.dependency()],
    ctx: Context,
) -> dict[str, Any]:
    """``CustomEnvironmentVariableRequest``: one value for the project, an environment or a job (the
    job override dbt-jobs-as-code writes: ``type: job``, ``job_definition_id``, ``raw_value``). An
    existing value of that scope is refused: its id is the one to update."""
    _check_placement(body, project)
    try:
        scope = env_vars.scope_of(
            ctx.config, project.account_id, project.id, body.type, body.environment_id, body.job_definition_id
        )
        row = env_vars.create_value(ctx.store, project.id, body.name, scope, body.raw_value)
    except EnvVarError as exc:
        raise ApiError(400, str(exc)) from None
    return envelope(serializers.env_var_value(ctx.config, project.id, project.account_id, row))


def env_var_row(env_var_id: Id, project: PathProject, ctx: Context) -> dict[str, Any]:
    row = ctx.store.env_var_row(project.id, env_var_id)
    if row is None:
        raise ApiError(404, f"Environment variable {env_var_id} not found in project {project.id}")
    return row


EnvVarRow = Annotated[dict[str, Any], Depends(env_var_row)]


@router.post(f"{_BASE}/{{env_var_id}}/")
def update_environment_variable(
    project: PathProject,
    row: EnvVarRow,
    body: Annotated[EnvVarValueUpdate, EnvVarValueUpdate.dependency()],
    ctx: Context,
) -> dict[str, Any]:
    """A new ``raw_value`` for one stored value. Name and scope are the value's identity: a body naming
    others is refused rather than silently ignored."""
    _check_placement(body, project)
    for key, expected in env_vars.identity(row).items():
        sent = getattr(body, key)
        if sent is not None and sent != expected:
            raise ApiError(
                400,
                f"{key} is {sent!r:.60} but value {row['id']} has {expected!r}; "
                "to change it, delete this value and create another",
            )
    updated = env_vars.update_value(ctx.store, project.id, row, body.raw_value)
    return envelope(serializers.env_var_value(ctx.config, project.id, project.account_id, updated))


@router.delete(f"{_BASE}/{{env_var_id}}/")
def delete_environment_variable(project: PathProject, row: EnvVarRow, ctx: Context) -> Response:
    """Delete one stored value (e.g. a job override); the variable's other scopes stay."""
    ctx.store.delete_env_var_row(project.id, row["id"])
    return Response(status_code=204)
