"""
Plain HTML pages: the run page every run's ``href`` points at, and an index of recent runs.

The provider pushes ``href`` to XCom as the "Monitor Job Run" link, so it has to open something
readable. The pages need no token (they are for a browser on the developer's machine and show what
the API shows: statuses, timings, dbt logs); they never show tokens or environment variable values.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from dbt_cloud_local.api import serializers
from dbt_cloud_local.api.dependencies import BaseUrl, Context
from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.model.statuses import IN_FLIGHT
from dbt_cloud_local.pages.nodes import STYLE as NODES_STYLE
from dbt_cloud_local.pages.nodes import nodes_section
from dbt_cloud_local.runs.workspace import RunWorkspace

router = APIRouter()

_STYLE = (
    """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1f2328; }
table { border-collapse: collapse; }
td, th { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }
.s10 { color: #1a7f37; } .s20 { color: #cf222e; } .s30 { color: #9a6700; } .s1, .s2, .s3 { color: #0969da; }
pre { background: #f6f8fa; padding: 1rem; overflow-x: auto; max-height: 40rem; }
"""
    + NODES_STYLE
)


def _page(title: str, body: str, refresh: bool = False) -> HTMLResponse:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'>{meta}<title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(html)


def _status(code: int, text: str) -> str:
    return f"<strong class='s{code}'>{escape(text)}</strong>"


@router.get("/deploy/", include_in_schema=False)
@router.get("/deploy/{account_id}/runs/", include_in_schema=False)
def runs_index(ctx: Context, base_url: BaseUrl, account_id: int | None = None) -> HTMLResponse:
    rows = []
    for account in ctx.config.accounts.values():
        if account_id is not None and account.id != account_id:
            continue
        runs, _ = ctx.store.list_runs(account_id=account.id, order_by="-id", limit=100)
        for run in runs:
            data = serializers.run(run, ctx.config, base_url=base_url, include=set())
            job = ctx.config.jobs.get(run["job_id"])
            rows.append(
                f"<tr><td><a href='{escape(data['href'])}'>#{run['id']}</a></td>"
                f"<td>{escape(job.name if job else str(run['job_id']))}</td>"
                f"<td>{_status(run['status'], data['status_humanized'])}</td>"
                f"<td>{escape(run['created_at'])}</td><td>{escape(data.get('duration_humanized') or '')}</td>"
                f"<td>{escape(run['trigger'].get('cause') or '')}</td></tr>"
            )
    table = "".join(rows) or "<tr><td colspan='6'>No runs yet.</td></tr>"
    body = (
        "<h1>Local dbt Cloud: recent runs</h1><table><tr><th>Run</th><th>Job</th><th>Status</th>"
        f"<th>Created</th><th>Duration</th><th>Cause</th></tr>{table}</table>"
    )
    return _page("Local dbt Cloud runs", body, refresh=True)


@router.get("/deploy/{account_id}/projects/{project_id}/runs/{run_id}/", include_in_schema=False)
def run_page(ctx: Context, base_url: BaseUrl, account_id: int, project_id: int, run_id: int) -> HTMLResponse:
    run = ctx.store.get_run(run_id)
    if run is None or run["account_id"] != account_id or run["project_id"] != project_id:
        raise ApiError(404, f"Run {run_id} not found")
    steps = ctx.store.steps_for_runs([run_id])[run_id]
    data = serializers.run(
        run,
        ctx.config,
        base_url=base_url,
        include={"trigger", "run_steps"},
        steps=steps,
        workspace=RunWorkspace(ctx.data_dir, run_id),
    )
    job = ctx.config.jobs.get(run["job_id"])
    facts: list[tuple[str, Any]] = [
        ("Job", f"{job.name} (#{run['job_id']})" if job else run["job_id"]),
        ("Cause", data["trigger"].get("cause")),
        ("Message", data.get("status_message")),
        ("Created", data.get("created_at")),
        ("Started", data.get("started_at")),
        ("Finished", data.get("finished_at")),
        ("Queued for", data.get("queued_duration_humanized")),
        ("Ran for", data.get("run_duration_humanized")),
        ("Rerun of", f"#{run['retry_of_run_id']}" if run["retry_of_run_id"] else None),
    ]
    fact_rows = "".join(
        f"<tr><th>{escape(label)}</th><td>{escape(str(value))}</td></tr>" for label, value in facts if value
    )
    step_html = []
    for step in data.get("run_steps", []):
        step_html.append(
            f"<h3>Step {step['index']}: {escape(step['name'])} — "
            f"{_status(step['status'], step['status_humanized'])}"
            f" <small>{escape(step.get('duration_humanized') or '')}</small></h3>"
            f"<pre>{escape(step.get('logs') or '(no output yet)')}</pre>"
        )
    nodes = nodes_section(RunWorkspace(ctx.data_dir, run_id), [step["idx"] for step in steps])
    body = (
        "<p><a href='/deploy/'>All runs</a></p>"
        f"<h1>Run #{run_id} {_status(run['status'], data['status_humanized'])}</h1>"
        f"<table>{fact_rows}</table>{nodes}"
        f"<h2>Steps</h2>{''.join(step_html) or '<p>No steps started yet.</p>'}"
    )
    return _page(f"Run #{run_id}", body, refresh=run["status"] in IN_FLIGHT)
