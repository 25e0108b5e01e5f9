"""Receive dbt Cloud's job webhooks in Airflow, so runs started anywhere (dbt Cloud's scheduler, a
person in the UI, another tool) still become per-model asset events in Airflow.

The FastAPI app built here is mounted on Airflow's own api-server by ``plugins/dbt_cloud_webhooks.py``
at ``/dbt-cloud-webhooks``; dbt Cloud posts to ``<airflow url>/dbt-cloud-webhooks/events``. For each
request it:

1. verifies dbt Cloud's signature: the ``Authorization`` header must equal the hex HMAC-SHA256 of the
   raw body keyed with the subscription's secret (constant-time compare). Wrong or missing: 401, and
   nothing is recorded. The secret is the password of the Airflow connection ``dbt_cloud_webhook``
   (read per request, so rotating it needs no restart; never logged);
2. for ``job.run.completed`` and ``job.run.errored``, triggers the ``dbt_cloud_webhook_runs`` DAG with
   conf ``{account_id, job_id, run_id, event_id}``; its task records the run's per-model asset events.
   Other events (``job.run.started``, dbt Cloud's test event) are acknowledged and ignored.

Replays are ignored durably: the DAG run id is derived from the dbt Cloud run (account, job, run and
its start time), and the metadata database refuses a second DAG run with the same id. So a replayed
event, a retried delivery, and the ``job.run.errored`` + ``job.run.completed`` pair that dbt Cloud
sends for one failed run all record the run once. Any 2xx tells dbt Cloud to stop retrying.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID = "dbt_cloud_webhook"
WEBHOOK_DAG_ID = "dbt_cloud_webhook_runs"
URL_PREFIX = "/dbt-cloud-webhooks"
EVENTS_PATH = "/events"
#: Events after which the run's artifacts can be read (``errored`` fires first; both count once).
RECORDED_EVENTS = frozenset({"job.run.completed", "job.run.errored"})
#: dbt Cloud's payloads are about 1 KB; anything this large is not one.
MAX_BODY_BYTES = 256 * 1024
_DIGITS = re.compile(r"[0-9]+")


class BadEvent(ValueError):
    """The body is not a dbt Cloud job event; the message says which field is wrong."""


@dataclass(frozen=True)
class JobRunEvent:
    event_id: str
    event_type: str
    account_id: int
    job_id: int
    run_id: int
    run_started_at: str

    @property
    def dag_run_id(self) -> str:
        """One id per dbt Cloud run (the start time tells apart a reset server's reused run ids)."""
        started = "".join(_DIGITS.findall(self.run_started_at))[:14]
        suffix = f"_{started}" if started else ""
        return f"dbt_cloud_a{self.account_id}_j{self.job_id}_r{self.run_id}{suffix}"

    @property
    def conf(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "job_id": self.job_id,
            "run_id": self.run_id,
            "event_id": self.event_id,
        }


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the hex HMAC-SHA256 of ``body`` under ``secret`` (constant time)."""
    if not header or not secret:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header.strip().lower().encode("utf-8", "replace"))


def _positive_int(value: Any, where: str) -> int:
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
        raise BadEvent(f"{where} must be a positive whole number, got {str(value)[:40]!r}")
    return int(text)


def parse_event(body: bytes) -> JobRunEvent:
    """The job run event in a verified body; ``BadEvent`` names what is missing or malformed."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise BadEvent("the body is not JSON") from None
    if not isinstance(document, dict):
        raise BadEvent("the body is not a JSON object")
    data = document.get("data")
    if not isinstance(data, dict):
        data = {}
    event_id = document.get("eventId")
    event_type = document.get("eventType")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 100:
        raise BadEvent("eventId must be a non-empty string")
    if not isinstance(event_type, str):
        raise BadEvent("eventType must be a string")
    if event_type not in RECORDED_EVENTS:
        return JobRunEvent(event_id, event_type, 0, 0, 0, "")
    started = data.get("runStartedAt")
    return JobRunEvent(
        event_id=event_id,
        event_type=event_type,
        account_id=_positive_int(document.get("accountId"), "accountId"),
        job_id=_positive_int(data.get("jobId"), "data.jobId"),
        run_id=_positive_int(data.get("runId"), "data.runId"),
        run_started_at=started if isinstance(started, str) else "",
    )


# Airflow side: where the secret comes from and how a DAG run is created (server components only).


def secret_from_connection(conn_id: str = WEBHOOK_CONN_ID) -> str | None:
    """The subscription's secret: the connection's password (env var, secrets backend or DB)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection  # server side: models, not the Task SDK

    try:
        return Connection.get_connection_from_secrets(conn_id).password or None
    except AirflowNotFoundException:
        return None


def trigger_webhook_dag(event: JobRunEvent) -> bool:
    """Queue a run of the webhook DAG for ``event``; False if that dbt Cloud run was already recorded."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy.exc import IntegrityError

    try:
        trigger_dag(
            WEBHOOK_DAG_ID,
            run_id=event.dag_run_id,
            conf=event.conf,
            triggered_by=DagRunTriggeredByType.REST_API,
            note=f"dbt Cloud webhook {event.event_type} {event.event_id}",
        )
    except (DagRunAlreadyExists, IntegrityError):  # IntegrityError: a concurrent delivery won the race
        return False
    return True


def create_app(
    secret: Callable[[], str | None] = secret_from_connection,
    trigger: Callable[[JobRunEvent], bool] = trigger_webhook_dag,
) -> FastAPI:
    """The receiver as a FastAPI app (``secret`` and ``trigger`` default to Airflow's)."""
    app = FastAPI(title="dbt Cloud webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    def answer(code: int, **body: Any) -> JSONResponse:
        return JSONResponse(body, status_code=code)

    @app.post(EVENTS_PATH)
    async def receive(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return answer(413, detail=f"Body over {MAX_BODY_BYTES} bytes; not a dbt Cloud webhook.")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return answer(413, detail=f"Body over {MAX_BODY_BYTES} bytes; not a dbt Cloud webhook.")
        key = await run_in_threadpool(secret)
        if not key:
            log.error("dbt Cloud webhook refused: connection %r has no password", WEBHOOK_CONN_ID)
            return answer(
                503,
                detail=f"Receiver not configured: set the password of the Airflow connection "
                f"{WEBHOOK_CONN_ID!r} to the webhook subscription's hmac_secret.",
            )
        if not signature_ok(key, body, request.headers.get("authorization")):
            log.warning("dbt Cloud webhook refused: missing or wrong signature")
            return answer(401, detail="Missing or invalid signature (Authorization header).")
        try:
            event = parse_event(body)
        except BadEvent as exc:
            return answer(400, detail=f"Not a dbt Cloud job run event: {exc}.")
        if event.event_type not in RECORDED_EVENTS:
            return answer(200, status="ignored", event_id=event.event_id, event_type=event.event_type)
        created = await run_in_threadpool(trigger, event)
        log.info(
            "dbt Cloud webhook %s %s for run %s: %s",
            event.event_type,
            event.event_id,
            event.run_id,
            "DAG run queued" if created else "already recorded",
        )
        return answer(
            200,
            status="triggered" if created else "duplicate",
            event_id=event.event_id,
            dag_id=WEBHOOK_DAG_ID,
            dag_run_id=event.dag_run_id,
        )

    return app


def record_webhook_run(conf: dict[str, Any], outlet_events: Any) -> int:
    """The webhook DAG's task: record the run's per-model asset events; return how many."""
    from include.dbt_cloud.assets import record_model_assets
    from include.dbt_cloud.hook import dbt_cloud_hook
    from include.dbt_cloud.operator import RUN_TAG_PREFIX

    try:
        account_id = _positive_int(conf.get("account_id"), "conf.account_id")
        run_id = _positive_int(conf.get("run_id"), "conf.run_id")
    except BadEvent as exc:
        raise ValueError(
            f"{exc}. This DAG is triggered by dbt Cloud webhooks (conf account_id, run_id, job_id, "
            f"event_id); to record a run by hand, trigger it with that conf."
        ) from None
    hook = dbt_cloud_hook()
    cause = _run_cause(hook, account_id, run_id)
    if cause.startswith(RUN_TAG_PREFIX):
        # The eltml DAG's dbt task launched it, and its record_dbt_model_assets task records it:
        # recording it here too would schedule the model's consumers twice.
        log.info("dbt Cloud run %s was launched by %s, which records its assets: skipped", run_id, cause)
        return 0
    count = record_model_assets(hook, account_id, run_id, outlet_events)
    log.info("dbt Cloud run %s (account %s): %s asset event(s) recorded", run_id, account_id, count)
    return count


def _run_cause(hook: Any, account_id: int, run_id: int) -> str:
    """Who started the run, as its trigger says (``cause``); empty when it does not say."""
    run = hook.get_job_run(run_id=run_id, account_id=account_id, include_related=["trigger"]).json()["data"]
    return str((run.get("trigger") or {}).get("cause") or "")
