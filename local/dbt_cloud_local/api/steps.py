"""
Run steps and the artifacts their dbt invocations wrote (v2). Artifact paths are resolved strictly
inside the step's target directory (``runs.workspace``).

A run's steps are numbered as dbt Cloud numbers them (``model.anatomy``): ``?step=`` names one (1 is
the clone step, the job's first command is 4), and without it the artifacts are the last step's, the
last step that ran (for a job that generates docs, ``dbt docs generate``; for a failed run, the step
that failed), as dbt Cloud serves them.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import (
    ActiveJob,
    Context,
    Id,
    PathAccount,
    PathRun,
    ServerContext,
    authenticated,
)
from dbt_cloud_local.api.envelopes import envelope, list_envelope
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.api.query import Include, query_int
from dbt_cloud_local.runs.workspace import ArtifactPathError, RunWorkspace
from dbt_cloud_local.store.run_rows import RunFilter

router = APIRouter(dependencies=[Depends(authenticated)])


@router.get("/api/v2/accounts/{account_id}/steps/{step_id}/")
def get_step(account: PathAccount, step_id: Id, include: Include, ctx: Context) -> dict[str, Any]:
    step = ctx.store.get_step(step_id)
    run = ctx.store.get_run(step["run_id"]) if step else None
    if step is None or run is None or run["account_id"] != account.id:
        raise ApiError(404, f"Run step {step_id} not found in account {account.id}")
    workspace = RunWorkspace(ctx.data_dir, run["id"])
    data = serializers.run_step(step, workspace, ctx.config.server.log_tail_lines, "debug_logs" in include)
    return envelope(data | {"account_id": account.id})


def _artifact_file(ctx: ServerContext, run: dict[str, Any], step: int, path: str) -> Path:
    try:
        return RunWorkspace(ctx.data_dir, run["id"]).resolve_artifact(step, path)
    except ArtifactPathError as exc:
        raise ApiError(400, str(exc)) from None


def _file_response(file: Path) -> Response:
    media_type = "application/json" if file.suffix == ".json" else mimetypes.guess_type(file.name)[0]
    return FileResponse(file, media_type=media_type or "text/plain")


def _artifact_step(request: Request, ctx: ServerContext, run: dict[str, Any]) -> int:
    """The step ``?step=`` names (1 to the run's last step), else the last one."""
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
def list_artifacts(request: Request, run: PathRun, ctx: Context) -> dict[str, Any]:
    """Artifact paths of one step (default: the last step), relative to its target directory."""
    step = _artifact_step(request, ctx, run)
    paths = RunWorkspace(ctx.data_dir, run["id"]).list_artifacts(step)
    # The spec's ``ListOfStringsEnveloped`` has no ``extra``; every list here carries it all the same.
    filters = {"account_id": run["account_id"], "run_id": run["id"], "step": step}
    return list_envelope(
        paths, total=len(paths), limit=len(paths), offset=0, filters=filters, order_by="path"
    )


@router.get("/api/v2/accounts/{account_id}/runs/{run_id}/artifacts/{path:path}")
def get_artifact(request: Request, run: PathRun, path: str, ctx: Context) -> Response:
    """The raw artifact file; ``.json`` files come back as ``application/json``."""
    step = _artifact_step(request, ctx, run)
    file = _artifact_file(ctx, run, step, path)
    if not file.is_file():
        raise ApiError(404, f"Artifact {path} not found for step {step} of run {run['id']}")
    return _file_response(file)


#: How many of a job's latest runs ``Retrieve Job Artifact`` looks through.
JOB_ARTIFACT_RUNS = 100


@router.get("/api/v2/accounts/{account_id}/jobs/{job_id}/artifacts/{path:path}")
def get_job_artifact(job: ActiveJob, path: str, ctx: Context) -> Response:
    """The artifact of the job's latest run that has it (the file its last step wrote), raw."""
    runs, _ = ctx.store.list_runs(
        account_id=job.account_id,
        filters=RunFilter(job_ids=(job.id,)),
        order_by="-id",
        limit=JOB_ARTIFACT_RUNS,
    )
    steps = ctx.store.steps_for_runs([run["id"] for run in runs])
    for run in runs:
        if steps[run["id"]]:
            file = _artifact_file(ctx, run, steps[run["id"]][-1]["idx"], path)
            if file.is_file():
                return _file_response(file)
    raise ApiError(404, f"No run of job {job.id} has the artifact {path}")
