"""
The dbt Cloud API v2/v3 routes the Airflow provider (and a few tools) call.

Handlers that touch SQLite or files are plain ``def`` functions, which FastAPI runs in its thread
pool, so the event loop stays free for other requests. Query parameters are parsed by hand because
clients encode them in several ways (``include_related`` as repeated keys, comma-joined or a JSON
list; ``status__in`` as the string ``"[1, 2, 3]"``).

Every input is checked before anything is written or a run is queued, and every refusal is a 4xx in
dbt Cloud's status envelope that names the field: ids and integers must fit SQLite's 64-bit integers,
bodies are at most ``MAX_BODY_BYTES`` of JSON nested at most ``MAX_JSON_DEPTH`` levels, and strings
may not hold NUL or unpaired surrogates (dbt's argv and environment, and SQLite, cannot carry them).
"""

from __future__ import annotations

import json
import math
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response

from dbt_cloud_local import env_vars, jobs, serializers
from dbt_cloud_local.commands import CommandError, parse_steps_override
from dbt_cloud_local.config import Config, Job
from dbt_cloud_local.run_plan import RetryRefused, failure_details, retry_refusal
from dbt_cloud_local.runner import RunManager
from dbt_cloud_local.store import ERROR, STATUS_HUMANIZED, Store
from dbt_cloud_local.workspace import ArtifactPathError, RunWorkspace

router = APIRouter()

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
JOB_ORDER_FIELDS = frozenset({"id", "name", "created_at", "updated_at"})
MAX_CAUSE_LENGTH = 255
MAX_BRANCH_LENGTH = 255
#: Ids and integer fields must fit SQLite's INTEGER (a signed 64-bit number).
MAX_INT64 = 2**63 - 1
#: Request bodies are small JSON objects; anything larger is a mistake or an attack (413).
MAX_BODY_BYTES = 1024 * 1024
#: The deepest legitimate body (env var bulk create) nests 3 levels.
MAX_JSON_DEPTH = 32
#: Characters git refuses in branch names (``git check-ref-format``), plus ``..``, ``@{`` and ``//``.
_BAD_BRANCH = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/.]|[/.]$|\.lock$")
_DBT_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_INTEGER = re.compile(r"^[+-]?[0-9]{1,30}$")

#: A path id: dbt Cloud ids are positive; larger than 64 bits cannot exist (400, not 404).
Id = Annotated[int, PathParam(ge=1, le=MAX_INT64)]


class ApiError(Exception):
    """An error answered with dbt Cloud's status envelope."""

    def __init__(self, code: int, user_message: str, developer_message: str = "") -> None:
        super().__init__(user_message)
        self.code = code
        self.user_message = user_message
        self.developer_message = developer_message


@dataclass
class ServerContext:
    config: Config
    store: Store
    runner: RunManager
    data_dir: Path
    #: Base of the links the server hands out (run ``href``). None: the address the client used.
    public_url: str | None = None


def context(request: Request) -> ServerContext:
    return request.app.state.ctx


def base_url(request: Request) -> str:
    """Where run links point. In containers the API is reached as ``dbt-cloud-local:8443`` while a
    person opens links on the host (``localhost:8443``), so a configured public URL wins."""
    public_url = context(request).public_url
    if public_url:
        return public_url
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"https://{host}"


# Query parsing ----------------------------------------------------------------------------------


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: errors name bad input without echoing megabytes."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _int(value: str, name: str) -> int:
    """A query integer from 0 to ``MAX_INT64`` (plain ASCII digits: no exponent, no sign games)."""
    text = value.strip() if isinstance(value, str) else ""
    number = int(text) if _INTEGER.fullmatch(text) else None
    if number is None or not 0 <= number <= MAX_INT64:
        raise ApiError(
            400,
            f"Query parameter {name} must be an integer from 0 to {MAX_INT64}, got {shown(value)}",
            f"Fix: send {name} as plain digits, e.g. {name}=1",
        )
    return number


def query_int(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    return _int(value, name)


def query_list(request: Request, name: str) -> list[str]:
    """Accept ``a&a``, ``a,b``, ``["a","b"]`` and ``[1, 2]``."""
    items: list[str] = []
    for raw in request.query_params.getlist(name):
        raw = raw.strip()
        if raw.startswith("["):
            try:
                parsed = json.loads(raw)
            except (ValueError, RecursionError):
                parsed = raw.strip("[]").split(",")
            values = parsed if isinstance(parsed, list) else [parsed]
        else:
            values = raw.split(",")
        items.extend(str(value).strip().strip("'\"") for value in values if str(value).strip())
    return items


def paging(request: Request, ctx: ServerContext) -> tuple[int, int]:
    limit = query_int(request, "limit", ctx.config.server.page_size)
    offset = query_int(request, "offset", 0)
    assert limit is not None
    assert offset is not None
    if not 1 <= limit <= 100:
        raise ApiError(400, "limit must be between 1 and 100")
    return limit, offset


def include_related(request: Request) -> set[str]:
    return set(query_list(request, "include_related"))


# Look-ups ---------------------------------------------------------------------------------------


def account_or_404(ctx: ServerContext, account_id: int) -> None:
    if account_id not in ctx.config.accounts:
        raise ApiError(404, f"Account {account_id} not found", "Check the connection's login (account id).")


def job_or_404(ctx: ServerContext, account_id: int, job_id: int) -> Job:
    """An active job of the account; deleted jobs (state 2) answer 404 like unknown ones."""
    account_or_404(ctx, account_id)
    job = jobs.repository_of(ctx.config).find(account_id, job_id)
    if job is None:
        raise ApiError(404, f"Job {job_id} not found in account {account_id}")
    return job


def run_or_404(ctx: ServerContext, account_id: int, run_id: int) -> dict[str, Any]:
    account_or_404(ctx, account_id)
    run = ctx.store.get_run(run_id)
    if run is None or run["account_id"] != account_id:
        raise ApiError(404, f"Run {run_id} not found in account {account_id}")
    return run


def project_or_404(ctx: ServerContext, account_id: int, project_id: int):
    account_or_404(ctx, account_id)
    project = ctx.config.projects.get(project_id)
    if project is None or project.account_id != account_id:
        raise ApiError(404, f"Project {project_id} not found in account {account_id}")
    return project


def retry_reason(ctx: ServerContext, run: dict[str, Any], latest: dict[int, int | None]) -> str | None:
    """Why ``run`` cannot be retried (``RetryNotSupportedReasonEnum``), or None when it can.

    ``latest`` caches the most recent run id of each job across the runs of one response."""
    job_id = run["job_id"]
    if job_id not in latest:
        newest = ctx.store.latest_run_for_job(job_id)
        latest[job_id] = newest["id"] if newest else None
    steps = ctx.store.step_records(run["id"]) if run["status"] == ERROR else []
    refusal = retry_refusal(
        run["id"], run["status"], job_id, latest[job_id], steps, RunWorkspace(ctx.data_dir, run["id"])
    )
    return refusal.reason if refusal else None


def serialize_run(
    request: Request, ctx: ServerContext, run: dict[str, Any], include: set[str]
) -> dict[str, Any]:
    steps = ctx.store.steps_for_runs([run["id"]])[run["id"]] if "run_steps" in include else None
    return serializers.run(
        run,
        ctx.config,
        base_url=base_url(request),
        include=include,
        steps=steps,
        workspace=RunWorkspace(ctx.data_dir, run["id"]),
        retry_reason=retry_reason(ctx, run, {}),
    )


# Accounts ---------------------------------------------------------------------------------------


def granted_accounts(request: Request) -> frozenset[int]:
    """Accounts the request's token may use (the app's guard stores its limit; None: any account)."""
    limited_to = getattr(request.state, "accounts", None)
    return frozenset(context(request).config.accounts) if limited_to is None else limited_to


@router.get("/")
@router.get("/api/v2/accounts/")
def list_accounts(request: Request) -> dict[str, Any]:
    """Accounts the token may use; ``GET /`` is also the provider's ``test_connection``."""
    ctx = context(request)
    granted = granted_accounts(request)
    items = [
        serializers.account(account) for account in ctx.config.accounts.values() if account.id in granted
    ]
    return serializers.list_envelope(items, total=len(items), limit=100, offset=0, filters={}, order_by="id")


@router.get("/api/v2/accounts/{account_id}/")
def get_account(request: Request, account_id: Id) -> dict[str, Any]:
    ctx = context(request)
    account_or_404(ctx, account_id)
    return serializers.envelope(serializers.account(ctx.config.accounts[account_id]))


# Projects and environments (v3) -----------------------------------------------------------------


def _name_filter(request: Request) -> str | None:
    value = request.query_params.get("name__icontains")
    return value.lower() if value else None


@router.get("/api/v3/accounts/{account_id}/projects/")
def list_projects(request: Request, account_id: Id) -> dict[str, Any]:
    ctx = context(request)
    account_or_404(ctx, account_id)
    limit, offset = paging(request, ctx)
    needle = _name_filter(request)
    projects = [
        project
        for project in sorted(ctx.config.projects.values(), key=lambda project: project.id)
        if project.account_id == account_id and (needle is None or needle in project.name.lower())
    ]
    page = [serializers.project_v3(project, ctx.config) for project in projects[offset : offset + limit]]
    filters = {"account_id": account_id, "name__icontains": request.query_params.get("name__icontains")}
    return serializers.list_envelope(
        page, total=len(projects), limit=limit, offset=offset, filters=filters, order_by="id"
    )


@router.get("/api/v3/accounts/{account_id}/projects/{project_id}/")
def get_project(request: Request, account_id: Id, project_id: Id) -> dict[str, Any]:
    ctx = context(request)
    project = project_or_404(ctx, account_id, project_id)
    return serializers.envelope(serializers.project_v3(project, ctx.config))


@router.get("/api/v3/accounts/{account_id}/projects/{project_id}/environments/")
def list_environments(request: Request, account_id: Id, project_id: Id) -> dict[str, Any]:
    ctx = context(request)
    project_or_404(ctx, account_id, project_id)
    limit, offset = paging(request, ctx)
    needle = _name_filter(request)
    exact = request.query_params.get("name")
    environments = [
        env
        for env in sorted(ctx.config.environments.values(), key=lambda env: env.id)
        if env.project_id == project_id
        and (needle is None or needle in env.name.lower())
        and (exact is None or env.name == exact)
    ]
    page = [serializers.environment_v3(env, ctx.config) for env in environments[offset : offset + limit]]
    filters = {
        "account_id": account_id,
        "project_id": project_id,
        "name__icontains": request.query_params.get("name__icontains"),
        "name": exact,
    }
    return serializers.list_envelope(
        page, total=len(environments), limit=limit, offset=offset, filters=filters, order_by="id"
    )


@router.get("/api/v3/accounts/{account_id}/environments/")
def list_account_environments(request: Request, account_id: Id) -> dict[str, Any]:
    """The account's environments (``project_id`` filters). dbt-jobs-as-code's ``validate --online``
    calls this route; dbt Cloud serves it although the published v3 spec leaves it out."""
    ctx = context(request)
    account_or_404(ctx, account_id)
    limit, offset = paging(request, ctx)
    project_id = query_int(request, "project_id")
    environments = [
        env
        for env in sorted(ctx.config.environments.values(), key=lambda env: env.id)
        if env.account_id == account_id and (project_id is None or env.project_id == project_id)
    ]
    page = [serializers.environment_v3(env, ctx.config) for env in environments[offset : offset + limit]]
    filters = {"account_id": account_id, "project_id": project_id}
    return serializers.list_envelope(
        page, total=len(environments), limit=limit, offset=offset, filters=filters, order_by="id"
    )


@router.get("/api/v3/accounts/{account_id}/projects/{project_id}/environments/{environment_id}/")
def get_environment(request: Request, account_id: Id, project_id: Id, environment_id: Id) -> dict[str, Any]:
    ctx = context(request)
    project_or_404(ctx, account_id, project_id)
    environment = ctx.config.environments.get(environment_id)
    if environment is None or environment.project_id != project_id:
        raise ApiError(404, f"Environment {environment_id} not found in project {project_id}")
    return serializers.envelope(serializers.environment_v3(environment, ctx.config))


# Environment variables (v3) ---------------------------------------------------------------------


@router.get("/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/environment/")
def get_environment_variables(request: Request, account_id: Id, project_id: Id) -> dict[str, Any]:
    ctx = context(request)
    project_or_404(ctx, account_id, project_id)
    data = env_vars.describe(ctx.config, ctx.store, project_id)
    return {**serializers.envelope(data), "extra": None, "error_code": None}


@router.get("/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/job/")
def get_job_environment_variables(request: Request, account_id: Id, project_id: Id) -> dict[str, Any]:
    """
    ``EnvVarJobResponse``: each variable's value per scope a run of the job sees, ``project`` (the
    default), ``environment`` (the job's environment) and ``job`` (the job's override, what
    dbt-jobs-as-code reads and compares). Absent scopes are left out, as dbt Cloud does and as
    clients expect (they call ``.get("job", {})``).
    """
    ctx = context(request)
    project_or_404(ctx, account_id, project_id)
    job_id = query_int(request, "job_definition_id")
    if job_id is None:
        raise ApiError(400, "job_definition_id is required", "Fix: add ?job_definition_id=<job id>")
    job = job_or_404(ctx, account_id, job_id)
    if job.project_id != project_id:
        raise ApiError(404, f"Job {job_id} not found in project {project_id}")
    variables: dict[str, dict[str, Any]] = {}
    for row in ctx.store.env_vars(project_id):
        scopes = {
            env_vars.PROJECT_SCOPE: "project",
            job.environment_id: "environment",
            env_vars.job_scope(job.id): "job",
        }
        scope = scopes.get(row["environment_id"])
        if scope is not None:
            variables.setdefault(row["name"], {})[scope] = {"id": row["id"], "value": row["value"]}
    return {**serializers.envelope(variables), "extra": None, "error_code": None}


def body_too_large() -> ApiError:
    return ApiError(
        413,
        f"The request body is larger than {MAX_BODY_BYTES} bytes",
        "Fix: send a small JSON object as the dbt Cloud API reference shows",
    )


async def read_body(request: Request) -> bytes:
    """The raw body, refused (413) as soon as it passes ``MAX_BODY_BYTES``, whatever Content-Length says."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise body_too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _field(where: str, key: Any) -> str:
    name = (
        key if isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key) else shown(key, 40)
    )
    return f"{where}.{name}" if where else name


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise ApiError(400, f"{where} contains a NUL byte (\\u0000)", f"Fix: remove the NUL from {where}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            400, f"{where} contains an unpaired surrogate", f"Fix: send {where} as valid UTF-8 text"
        ) from None


def check_json(value: Any) -> None:
    """
    Refuse what dbt, SQLite or the response encoder cannot carry, naming the field: nesting deeper
    than ``MAX_JSON_DEPTH``, NUL or unpaired surrogates in strings and keys, integers beyond 64 bits
    and non-finite numbers. Iterative, so hostile nesting cannot exhaust the stack.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        name = where or "the body"
        if depth > MAX_JSON_DEPTH:
            raise ApiError(
                400,
                f"The request body nests deeper than {MAX_JSON_DEPTH} levels (at {name})",
                "Fix: send a flat JSON object as the dbt Cloud API reference shows",
            )
        if isinstance(node, dict):
            for key, item in node.items():
                _check_text(key, f"a key of {name}")
                stack.append((item, _field(where, key), depth + 1))
        elif isinstance(node, list):
            stack.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(node))
        elif isinstance(node, str):
            _check_text(node, name)
        elif isinstance(node, bool):
            continue
        elif isinstance(node, int) and abs(node) > MAX_INT64:
            raise ApiError(
                400, f"{name} is beyond 64-bit integers", f"Fix: send {name} within +/-{MAX_INT64}"
            )
        elif isinstance(node, float) and not math.isfinite(node):
            raise ApiError(400, f"{name} is not a finite number", f"Fix: send {name} as an ordinary number")


async def json_body(request: Request) -> Any:
    """The body as checked JSON (``{}`` when empty); every problem is a 4xx naming the field."""
    body = await read_body(request)
    if not body.strip():
        return {}
    try:
        value = json.loads(body.decode("utf-8"))  # NaN/Infinity parse, then check_json names the field
    except RecursionError:
        raise ApiError(
            400,
            f"The request body nests deeper than {MAX_JSON_DEPTH} levels",
            "Fix: send a flat JSON object as the dbt Cloud API reference shows",
        ) from None
    except UnicodeDecodeError:
        raise ApiError(400, "The request body is not UTF-8 text", "Fix: send JSON encoded as UTF-8") from None
    except ValueError as exc:
        raise ApiError(
            400, f"The request body is not valid JSON: {str(exc)[:200]}", "Fix: send a JSON object"
        ) from None
    check_json(value)
    return value


@router.post("/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/bulk/")
async def create_environment_variables(request: Request, account_id: Id, project_id: Id) -> dict[str, Any]:
    """Body ``{"env_var": [{"new_name": "DBT_X", "project": "default", "<Environment>": "value"}]}``."""
    ctx = context(request)
    body = await json_body(request)
    items = body.get("env_var") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ApiError(400, 'Send {"env_var": [{"new_name": "DBT_NAME", "project": "value", ...}]}')

    def apply() -> list[dict[str, Any]]:
        project_or_404(ctx, account_id, project_id)
        changes = [_planned_entry(ctx, project_id, index, item) for index, item in enumerate(items)]
        results = []
        for change in changes:  # every entry is valid: write them all
            written, _ = env_vars.apply_change(ctx.store, project_id, change)
            results.append(
                {
                    "status": "success",
                    "status_code": 201,
                    "key_name": change.name,
                    "data": {"message": "Environment variable saved", "new_var_ids": written, "failures": []},
                }
            )
        return results

    results = await run_in_threadpool(apply)
    return {"status": serializers.response_status(), "data": results}


def _planned_entry(ctx: ServerContext, project_id: int, index: int, item: Any) -> env_vars.Change:
    """Validate one ``env_var`` entry of a bulk create, naming it in the error."""
    if not isinstance(item, dict):
        raise ApiError(400, f"env_var[{index}] must be an object", 'Fix: send {"new_name": "DBT_NAME", ...}')
    values = {key: value for key, value in item.items() if key != "new_name"}
    try:
        return env_vars.plan_change(ctx.config, project_id, item.get("new_name"), values)
    except env_vars.EnvVarError as exc:
        raise ApiError(400, f"env_var[{index}]: {exc}") from None


@router.put("/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/bulk/")
async def update_environment_variables(request: Request, account_id: Id, project_id: Id) -> dict[str, Any]:
    """Body ``{"env_vars": {"name": "DBT_X", "<Environment>|project": "value" or null to delete}}``."""
    ctx = context(request)
    body = await json_body(request)
    spec = body.get("env_vars") if isinstance(body, dict) else None
    if not isinstance(spec, dict) or "name" not in spec:
        raise ApiError(400, 'Send {"env_vars": {"name": "DBT_NAME", "<environment or project>": "value"}}')
    if "new_name" in spec:
        raise ApiError(400, "Renaming environment variables is not supported by the local dbt Cloud server")
    values = {key: value for key, value in spec.items() if key != "name"}

    def apply() -> tuple[list[int], list[int]]:
        project_or_404(ctx, account_id, project_id)
        try:
            change = env_vars.plan_change(ctx.config, project_id, spec["name"], values)
        except env_vars.EnvVarError as exc:
            raise ApiError(400, f"env_vars: {exc}") from None
        return env_vars.apply_change(ctx.store, project_id, change)

    written, deleted = await run_in_threadpool(apply)
    data = {
        "message": "Environment variable updated",
        "new_var_ids": written,
        "deleted_var_ids": deleted,
        "failures": [],
    }
    return {"status": serializers.response_status(), "data": data}


@router.delete("/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/bulk/")
async def delete_environment_variables(request: Request, account_id: Id, project_id: Id) -> Response:
    """Body ``{"env_var_names": ["DBT_X", ...]}``: delete every scope of those variables."""
    ctx = context(request)
    body = await json_body(request)
    names = body.get("env_var_names") if isinstance(body, dict) else None
    if not isinstance(names, list) or not names:
        raise ApiError(400, 'Send {"env_var_names": ["DBT_NAME", ...]}')

    def apply() -> None:
        project_or_404(ctx, account_id, project_id)
        valid = []
        for index, name in enumerate(names):  # all names first: a bad one deletes nothing
            try:
                valid.append(env_vars.validate_name(name, allow_reserved=True))
            except env_vars.EnvVarError as exc:
                raise ApiError(400, f"env_var_names[{index}]: {exc}") from None
        for name in valid:
            ctx.store.unset_env_var(project_id, name)

    await run_in_threadpool(apply)
    return Response(status_code=204)


# One value of a variable (after the bulk/ routes: ``{env_var_id}`` would match "bulk") -------------


@router.post("/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/")
async def create_environment_variable(request: Request, account_id: Id, project_id: Id) -> dict[str, Any]:
    """``CustomEnvironmentVariableRequest``: one value for the project, an environment or a job (the
    job override dbt-jobs-as-code writes: ``type: job``, ``job_definition_id``, ``raw_value``)."""
    ctx = context(request)
    body = await json_body(request)

    def apply() -> dict[str, Any]:
        project_or_404(ctx, account_id, project_id)
        try:
            return env_vars.create_value(ctx.config, ctx.store, account_id, project_id, body)
        except env_vars.EnvVarError as exc:
            raise ApiError(400, str(exc)) from None

    return serializers.envelope(await run_in_threadpool(apply))


def env_var_or_404(ctx: ServerContext, account_id: int, project_id: int, env_var_id: int) -> dict[str, Any]:
    project_or_404(ctx, account_id, project_id)
    row = ctx.store.env_var_row(project_id, env_var_id)
    if row is None:
        raise ApiError(404, f"Environment variable {env_var_id} not found in project {project_id}")
    return row


@router.post("/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/{env_var_id}/")
async def update_environment_variable(
    request: Request, account_id: Id, project_id: Id, env_var_id: Id
) -> dict[str, Any]:
    """A new ``raw_value`` for one stored value (its name and scope stay)."""
    ctx = context(request)
    body = await json_body(request)

    def apply() -> dict[str, Any]:
        row = env_var_or_404(ctx, account_id, project_id, env_var_id)
        try:
            return env_vars.update_value(ctx.config, ctx.store, account_id, project_id, row, body)
        except env_vars.EnvVarError as exc:
            raise ApiError(400, str(exc)) from None

    return serializers.envelope(await run_in_threadpool(apply))


@router.delete("/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/{env_var_id}/")
def delete_environment_variable(request: Request, account_id: Id, project_id: Id, env_var_id: Id) -> Response:
    """Delete one stored value (e.g. a job override); the variable's other scopes stay."""
    ctx = context(request)
    env_var_or_404(ctx, account_id, project_id, env_var_id)
    ctx.store.delete_env_var_row(project_id, env_var_id)
    return Response(status_code=204)


# Jobs -------------------------------------------------------------------------------------------


@router.get("/api/v2/accounts/{account_id}/jobs/")
def list_jobs(request: Request, account_id: Id) -> dict[str, Any]:
    """Active jobs by default, as dbt Cloud lists them; ``state=2`` lists the deleted ones."""
    ctx = context(request)
    account_or_404(ctx, account_id)
    limit, offset = paging(request, ctx)
    project_id = query_int(request, "project_id")
    project_ids = {_int(value, "project_id__in") for value in query_list(request, "project_id__in")}
    environment_id = query_int(request, "environment_id")
    state = query_int(request, "state", jobs.ACTIVE)
    needle = _name_filter(request)
    order_by = request.query_params.get("order_by") or "id"
    if order_by.lstrip("-") not in JOB_ORDER_FIELDS:
        raise ApiError(400, f"Cannot order jobs by {shown(order_by)}; use one of {sorted(JOB_ORDER_FIELDS)}")
    found = [
        job
        for job in jobs.repository_of(ctx.config).values()
        if job.account_id == account_id
        and job.state == state
        and (project_id is None or job.project_id == project_id)
        and (not project_ids or job.project_id in project_ids)
        and (environment_id is None or job.environment_id == environment_id)
        and (needle is None or needle in job.name.lower())
    ]
    field = order_by.lstrip("-")
    found.sort(key=lambda job: (getattr(job, field) or "", job.id), reverse=order_by.startswith("-"))
    page = [
        serializers.job(job, ctx.config, ctx.store.count_runs_for_job(job.id, ERROR))
        for job in found[offset : offset + limit]
    ]
    filters = {
        "account_id": account_id,
        "project_id": project_id,
        "project_id__in": sorted(project_ids) or None,
        "environment_id": environment_id,
        "state": state,
        "name__icontains": request.query_params.get("name__icontains"),
    }
    return serializers.list_envelope(
        page, total=len(found), limit=limit, offset=offset, filters=filters, order_by=order_by
    )


def _job_response(ctx: ServerContext, job: Job) -> dict[str, Any]:
    return serializers.envelope(serializers.job(job, ctx.config, ctx.store.count_runs_for_job(job.id, ERROR)))


def _job_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "The request body must be a JSON object of job fields",
            'Fix: send e.g. {"name": "Nightly", "environment_id": 1, "execute_steps": ["dbt build"]}',
        )
    return body


def _field_error(exc: jobs.JobFieldError) -> ApiError:
    return ApiError(400, f"Invalid job field {exc.field}: {exc.problem}", f"Fix: {exc.fix}")


@router.post("/api/v2/accounts/{account_id}/jobs/")
async def create_job(request: Request, account_id: Id) -> dict[str, Any]:
    """Create a job (``HumanReadableJobDefinitionRequest``); every field is checked before it is stored."""
    ctx = context(request)
    body = _job_body(await json_body(request))

    def create() -> dict[str, Any]:
        account_or_404(ctx, account_id)
        try:
            job = jobs.repository_of(ctx.config).create(account_id, body)
        except jobs.JobFieldError as exc:
            raise _field_error(exc) from None
        return _job_response(ctx, job)

    return await run_in_threadpool(create)


@router.post("/api/v2/accounts/{account_id}/jobs/{job_id}/")
async def update_job(request: Request, account_id: Id, job_id: Id) -> dict[str, Any]:
    """Update a job: given fields replace the job's (nested objects key by key); ``state: 2`` deletes it."""
    ctx = context(request)
    body = _job_body(await json_body(request))

    def update() -> dict[str, Any]:
        job = job_or_404(ctx, account_id, job_id)
        if body.get("id") is not None and body["id"] != job_id:
            raise ApiError(
                400,
                f"Invalid job field id: {shown(body['id'])} is not the job {job_id} of the URL",
                "Fix: send the id of the URL, or leave id out",
            )
        try:
            updated = jobs.repository_of(ctx.config).update(job, body)
        except jobs.JobFieldError as exc:
            raise _field_error(exc) from None
        return _job_response(ctx, updated)

    return await run_in_threadpool(update)


@router.delete("/api/v2/accounts/{account_id}/jobs/{job_id}/")
def delete_job(request: Request, account_id: Id, job_id: Id) -> dict[str, Any]:
    """
    Delete a job the way dbt Cloud does: its state becomes 2, it leaves the job list and cannot be
    triggered, its runs stay. The spec documents a bare 204; dbt Cloud answers 200 with the deleted
    job (state 2) in the envelope, and so do we (clients such as dbt-jobs-as-code accept both).
    """
    ctx = context(request)
    job = job_or_404(ctx, account_id, job_id)
    return _job_response(ctx, jobs.repository_of(ctx.config).delete(job))


@router.get("/api/v2/accounts/{account_id}/jobs/{job_id}/")
def get_job(request: Request, account_id: Id, job_id: Id) -> dict[str, Any]:
    """The provider's ``get_job`` omits the trailing slash: ``app.TrailingSlashOptional`` serves it."""
    ctx = context(request)
    job = job_or_404(ctx, account_id, job_id)
    return serializers.envelope(serializers.job(job, ctx.config, ctx.store.count_runs_for_job(job.id, ERROR)))


def _optional(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ApiError(400, f"{key} must be a {names}, got {shown(value)}", f"Fix: send {key} as a {names}")
    return value


#: Pull request ids of the spec's ``TriggerRunRequest``: accepted, type-checked and ignored.
PULL_REQUEST_FIELDS = (
    "azure_pull_request_id",
    "github_pull_request_id",
    "gitlab_merge_request_id",
    "non_native_pull_request_id",
)


def _check_git_branch(branch: str | None) -> None:
    if branch is not None and (len(branch) > MAX_BRANCH_LENGTH or _BAD_BRANCH.search(branch)):
        raise ApiError(
            400,
            f"git_branch is not a valid branch name: {shown(branch)}",
            f"Fix: use a git branch name of at most {MAX_BRANCH_LENGTH} characters, e.g. main or feature/x",
        )


def validate_run_request(body: Any) -> dict[str, Any]:
    """Check a ``/run/`` body; unknown keys are accepted and ignored (``check_json`` vetted them)."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    cause = body.get("cause")
    if not isinstance(cause, str) or not cause.strip():
        raise ApiError(400, "cause is required: describe why the job is triggered")
    if len(cause) > MAX_CAUSE_LENGTH:
        raise ApiError(
            400,
            f"cause may be at most {MAX_CAUSE_LENGTH} characters long, got {len(cause)}",
            "Fix: shorten the cause",
        )
    for key in PULL_REQUEST_FIELDS:
        _optional(body, key, int)
    request = {
        "cause": cause,
        "git_sha": _optional(body, "git_sha", str),
        "git_branch": _optional(body, "git_branch", str),
        "schema_override": _optional(body, "schema_override", str),
        "dbt_version_override": _optional(body, "dbt_version_override", str),
        "threads_override": _optional(body, "threads_override", int),
        "target_name_override": _optional(body, "target_name_override", str),
        "generate_docs_override": _optional(body, "generate_docs_override", bool),
        "timeout_seconds_override": _optional(body, "timeout_seconds_override", int),
    }
    for key in ("schema_override", "target_name_override"):
        if request[key] is not None and not _IDENTIFIER.fullmatch(request[key]):
            raise ApiError(
                400, f"{key} must be a plain identifier (letters, digits, _), got {shown(request[key])}"
            )
    if request["git_sha"] is not None and not re.fullmatch(r"[0-9a-fA-F]{4,64}", request["git_sha"]):
        raise ApiError(400, "git_sha must be a hexadecimal commit id")
    _check_git_branch(request["git_branch"])
    version = request["dbt_version_override"]
    if version is not None and not _DBT_VERSION.fullmatch(version):
        raise ApiError(
            400,
            f"dbt_version_override must be a version such as 1.11 or latest, got {shown(version)}",
            "Fix: send letters, digits, '.', '-', '+' or '_', at most 64 characters",
        )
    if request["threads_override"] is not None and not 1 <= request["threads_override"] <= 64:
        raise ApiError(400, "threads_override must be between 1 and 64")
    if request["timeout_seconds_override"] is not None and request["timeout_seconds_override"] < 0:
        raise ApiError(400, "timeout_seconds_override must be 0 (no timeout) or more")
    return request


@router.post("/api/v2/accounts/{account_id}/jobs/{job_id}/run/")
async def trigger_run(request: Request, account_id: Id, job_id: Id) -> dict[str, Any]:
    ctx = context(request)
    body = await json_body(request)
    run_request = validate_run_request(body)
    try:
        steps = parse_steps_override(body.get("steps_override"))
    except CommandError as exc:
        raise ApiError(400, f"Invalid steps_override: {str(exc)[:300]}") from None

    def create() -> dict[str, Any]:
        job = job_or_404(ctx, account_id, job_id)
        run = ctx.runner.trigger(job, run_request, steps)
        return serialize_run(request, ctx, run, {"trigger", "job"})

    return serializers.envelope(await run_in_threadpool(create))


@router.post("/api/v2/accounts/{account_id}/jobs/{job_id}/rerun/")
def rerun_job(request: Request, account_id: Id, job_id: Id) -> dict[str, Any]:
    ctx = context(request)
    job = job_or_404(ctx, account_id, job_id)
    run = ctx.runner.rerun(job)
    return serializers.envelope(serialize_run(request, ctx, run, {"trigger", "job"}))


# Runs -------------------------------------------------------------------------------------------


@router.get("/api/v2/accounts/{account_id}/runs/")
def list_runs(request: Request, account_id: Id) -> dict[str, Any]:
    ctx = context(request)
    account_or_404(ctx, account_id)
    limit, offset = paging(request, ctx)
    statuses = [_int(value, "status__in") for value in query_list(request, "status__in")]
    status = query_int(request, "status")
    if status is not None:
        statuses.append(status)
    unknown = [value for value in statuses if value not in STATUS_HUMANIZED]
    if unknown:
        raise ApiError(400, f"Unknown run status {unknown[0]}; use 1, 2, 3, 10, 20 or 30")
    order_by = request.query_params.get("order_by") or "id"
    job_id = query_int(request, "job_definition_id")
    project_id = query_int(request, "project_id")
    environment_id = query_int(request, "environment_id")
    try:
        runs, total = ctx.store.list_runs(
            account_id=account_id,
            job_id=job_id,
            project_id=project_id,
            environment_id=environment_id,
            statuses=statuses or None,
            order_by=order_by,
            limit=limit,
            offset=offset,
        )
    except ValueError as exc:
        raise ApiError(
            400, str(exc), "order_by accepts id, created_at, finished_at, updated_at, status"
        ) from None
    include = include_related(request)
    steps = ctx.store.steps_for_runs([run["id"] for run in runs]) if "run_steps" in include else {}
    latest: dict[int, int | None] = {}
    items = [
        serializers.run(
            run,
            ctx.config,
            base_url=base_url(request),
            include=include,
            steps=steps.get(run["id"]),
            workspace=RunWorkspace(ctx.data_dir, run["id"]),
            retry_reason=retry_reason(ctx, run, latest),
        )
        for run in runs
    ]
    filters = {
        "account_id": account_id,
        "job_definition_id": job_id,
        "project_id": project_id,
        "environment_id": environment_id,
        "status__in": statuses or None,
        "include_related": sorted(include) or None,
    }
    return serializers.list_envelope(
        items, total=total, limit=limit, offset=offset, filters=filters, order_by=order_by
    )


@router.get("/api/v2/accounts/{account_id}/runs/{run_id}/")
def get_run(request: Request, account_id: Id, run_id: Id) -> dict[str, Any]:
    ctx = context(request)
    run = run_or_404(ctx, account_id, run_id)
    return serializers.envelope(serialize_run(request, ctx, run, include_related(request)))


@router.post("/api/v2/accounts/{account_id}/runs/{run_id}/cancel/")
def cancel_run(request: Request, account_id: Id, run_id: Id) -> dict[str, Any]:
    """Cancel a run. Completed runs are returned unchanged (cancelling is idempotent)."""
    ctx = context(request)
    run_or_404(ctx, account_id, run_id)
    run = ctx.runner.cancel(run_id)
    return serializers.envelope(serialize_run(request, ctx, run, {"trigger", "job"}))


@router.get("/api/v2/accounts/{account_id}/runs/{run_id}/retry/")
def get_run_failure_details(request: Request, account_id: Id, run_id: Id) -> dict[str, Any]:
    """``RunFailureDetails``: the step that failed and the planned steps it skipped (null and [] for a
    run without a failed step)."""
    ctx = context(request)
    run_or_404(ctx, account_id, run_id)
    record = ctx.store.run_record(run_id)
    assert record is not None
    failed, skipped = failure_details(record.plan, ctx.store.step_records(run_id))
    return serializers.envelope({"failed_step": failed, "skipped_steps": skipped})


@router.post("/api/v2/accounts/{account_id}/runs/{run_id}/retry/")
def retry_run(request: Request, account_id: Id, run_id: Id) -> dict[str, Any]:
    """dbt Cloud's run-level retry: a failed run that is its job's latest and has run results starts
    a new run from its failed step (``dbt retry``); anything else is refused with the reason (400)."""
    ctx = context(request)
    original = run_or_404(ctx, account_id, run_id)
    if jobs.repository_of(ctx.config).find(account_id, original["job_id"]) is None:
        raise ApiError(
            400,
            f"Run {run_id} cannot be retried: its job {original['job_id']} was deleted "
            "or is no longer configured",
        )
    try:
        run = ctx.runner.retry(run_id)
    except RetryRefused as exc:
        raise ApiError(400, exc.refusal.message, exc.refusal.reason) from None
    return serializers.envelope(serialize_run(request, ctx, run, {"trigger", "job"}))


@router.get("/api/v2/accounts/{account_id}/steps/{step_id}/")
def get_step(request: Request, account_id: Id, step_id: Id) -> dict[str, Any]:
    ctx = context(request)
    account_or_404(ctx, account_id)
    step = ctx.store.get_step(step_id)
    run = ctx.store.get_run(step["run_id"]) if step else None
    if step is None or run is None or run["account_id"] != account_id:
        raise ApiError(404, f"Run step {step_id} not found in account {account_id}")
    workspace = RunWorkspace(ctx.data_dir, run["id"])
    include = include_related(request)
    data = serializers.run_step(step, workspace, ctx.config.server.log_tail_lines, "debug_logs" in include)
    return serializers.envelope(data | {"account_id": account_id})


def _artifact_step(request: Request, ctx: ServerContext, run: dict[str, Any]) -> int:
    steps = ctx.store.steps_for_runs([run["id"]])[run["id"]]
    if not steps:
        raise ApiError(404, f"Run {run['id']} has no steps yet, so no artifacts")
    step = query_int(request, "step")
    if step is None:
        return steps[-1]["idx"]
    if not 1 <= step <= len(steps):
        raise ApiError(404, f"Run {run['id']} has steps 1 to {len(steps)}; step {step} does not exist")
    return step


@router.get("/api/v2/accounts/{account_id}/runs/{run_id}/artifacts/")
def list_artifacts(request: Request, account_id: Id, run_id: Id) -> dict[str, Any]:
    """Artifact paths of one step (default: the last step), relative to its target directory."""
    ctx = context(request)
    run = run_or_404(ctx, account_id, run_id)
    step = _artifact_step(request, ctx, run)
    paths = RunWorkspace(ctx.data_dir, run_id).list_artifacts(step)
    # The spec's ``ListOfStringsEnveloped`` has no ``extra``; every list here carries it all the same.
    filters = {"account_id": account_id, "run_id": run_id, "step": step}
    return serializers.list_envelope(
        paths, total=len(paths), limit=len(paths), offset=0, filters=filters, order_by="path"
    )


@router.get("/api/v2/accounts/{account_id}/runs/{run_id}/artifacts/{path:path}")
def get_artifact(request: Request, account_id: Id, run_id: Id, path: str) -> Response:
    """The raw artifact file; ``.json`` files come back as ``application/json``."""
    ctx = context(request)
    run = run_or_404(ctx, account_id, run_id)
    step = _artifact_step(request, ctx, run)
    try:
        file = RunWorkspace(ctx.data_dir, run_id).resolve_artifact(step, path)
    except ArtifactPathError as exc:
        raise ApiError(400, str(exc)) from None
    if not file.is_file():
        raise ApiError(404, f"Artifact {path} not found for step {step} of run {run_id}")
    media_type = "application/json" if file.suffix == ".json" else mimetypes.guess_type(file.name)[0]
    return FileResponse(file, media_type=media_type or "text/plain")


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        serializers.error_body(error.code, error.user_message, error.developer_message),
        status_code=error.code,
    )
