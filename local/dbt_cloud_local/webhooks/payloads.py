"""
What a webhook receiver gets, as dbt Cloud documents it ("Webhooks for your jobs"): which events a run's
start or finish raises, which subscriptions hear them, and the JSON body of each (ids in ``data`` are
strings, as dbt Cloud sends them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dbt_cloud_local.config.settings import Config
from dbt_cloud_local.model.statuses import CANCELLED, ERROR, RUNNING, SUCCESS, TERMINAL
from dbt_cloud_local.model.webhook_events import JOB_RUN_COMPLETED, JOB_RUN_ERRORED, JOB_RUN_STARTED

#: ``runStatus`` as webhooks name it (the run API says "Error"; webhooks say "Errored").
_RUN_STATUS = {RUNNING: "Running", SUCCESS: "Success", ERROR: "Errored", CANCELLED: "Cancelled"}

STARTED, FINISHED = "started", "finished"


def events_for(phase: str, status: int) -> tuple[str, ...]:
    """The event types a run's phase raises, in the order dbt Cloud sends them."""
    if phase == STARTED:
        return (JOB_RUN_STARTED,)
    if status == ERROR:
        return (JOB_RUN_ERRORED, JOB_RUN_COMPLETED)
    return (JOB_RUN_COMPLETED,) if status in TERMINAL else ()


def _zulu(value: str | None) -> str | None:
    """``2023-01-31T19:28:07Z``: the second-precision UTC form dbt Cloud's payloads use."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def payload(
    config: Config, subscription: dict[str, Any], run: dict[str, Any], event_type: str, event_id: str
) -> dict[str, Any]:
    """The JSON body dbt Cloud sends for ``event_type`` about ``run`` to ``subscription``."""
    job = config.jobs.get(run["job_id"])
    environment = config.environments.get(run["environment_id"])
    project = config.projects.get(run["project_id"])
    status = RUNNING if event_type == JOB_RUN_STARTED else run["status"]
    data: dict[str, Any] = {
        "jobId": str(run["job_id"]),
        "jobName": job.name if job else f"Job {run['job_id']}",
        "runId": str(run["id"]),
        "environmentId": str(run["environment_id"]),
        "environmentName": environment.name if environment else "",
        "dbtVersion": environment.dbt_version if environment else "",
        "projectName": project.name if project else "",
        "projectId": str(run["project_id"]),
        "runStatus": _RUN_STATUS.get(status, str(status)),
        "runStatusCode": status,
        "runStatusMessage": (run.get("status_message") if event_type != JOB_RUN_STARTED else None) or "None",
        "runReason": (run.get("trigger") or {}).get("cause") or "",
        "runStartedAt": _zulu(run.get("started_at") or run.get("created_at")),
    }
    if event_type == JOB_RUN_ERRORED:
        data["runErroredAt"] = _zulu(run.get("finished_at"))
    elif event_type == JOB_RUN_COMPLETED:
        data["runFinishedAt"] = _zulu(run.get("finished_at"))
    return {
        "accountId": run["account_id"],
        "webhooksID": subscription["id"],
        "eventId": event_id,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "eventType": event_type,
        "webhookName": subscription["name"],
        "data": data,
    }


def subscribed(subscription: dict[str, Any], event_type: str, job_id: int) -> bool:
    """Active, listening for ``event_type``, and for this job (an empty ``job_ids`` means every job)."""
    return (
        subscription["active"]
        and event_type in subscription["event_types"]
        and (not subscription["job_ids"] or job_id in subscription["job_ids"])
    )
