"""
Outbound webhooks, as dbt Cloud sends them: ``job.run.started``, ``job.run.completed``, ``job.run.errored``.

What a receiver sees is what dbt Cloud documents ("Webhooks for your jobs"):

* a ``POST`` of a JSON body ``{accountId, webhooksID, eventId, timestamp, eventType, webhookName,
  data: {jobId, jobName, runId, environmentId, environmentName, dbtVersion, projectName, projectId,
  runStatus, runStatusCode, runStatusMessage, runReason, runStartedAt, runFinishedAt | runErroredAt}}``
  (ids in ``data`` are strings, as dbt Cloud sends them);
* an ``Authorization`` header holding the hex HMAC-SHA256 of the raw body, keyed with the
  subscription's ``hmac_secret`` (no scheme prefix);
* a 10 second timeout per attempt; an attempt that does not answer 2xx is retried up to 5 times with
  growing delays (``DBT_CLOUD_LOCAL_WEBHOOK_RETRY_DELAYS``, seconds, comma-separated, for tests);
* ``job.run.errored`` fires as soon as a run errors, ``job.run.completed`` after it (for every finished
  run: success, error or cancel). Each subscription gets its own ``eventId`` per event; retries of one
  event keep it, so a receiver can ignore replays by ``eventId``.

Deliveries never hold up a run: the executor only enqueues ``(run_id, phase)``; a background thread
builds the payloads and a small pool of threads delivers them. Every attempt is logged (event, run,
subscription, URL without its query, HTTP status); secrets and bodies never are. Deliveries still
pending when the server stops are dropped (dbt Cloud keeps them; this local server does not).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import secrets
import string
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from dbt_cloud_local import __version__
from dbt_cloud_local.config import Config
from dbt_cloud_local.store import CANCELLED, ERROR, RUNNING, SUCCESS, TERMINAL, Store

log = logging.getLogger(__name__)

JOB_RUN_STARTED = "job.run.started"
JOB_RUN_COMPLETED = "job.run.completed"
JOB_RUN_ERRORED = "job.run.errored"
EVENT_TYPES = (JOB_RUN_STARTED, JOB_RUN_COMPLETED, JOB_RUN_ERRORED)

#: dbt Cloud's documented per-attempt timeout and number of retries.
TIMEOUT_SECONDS = 10.0
MAX_RETRIES = 5
DEFAULT_RETRY_DELAYS = (2.0, 4.0, 8.0, 16.0, 32.0)
ENV_RETRY_DELAYS = "DBT_CLOUD_LOCAL_WEBHOOK_RETRY_DELAYS"

#: ``runStatus`` as webhooks name it (the run API says "Error"; webhooks say "Errored").
_RUN_STATUS = {RUNNING: "Running", SUCCESS: "Success", ERROR: "Errored", CANCELLED: "Cancelled"}
_ID_ALPHABET = string.ascii_letters + string.digits

STARTED, FINISHED = "started", "finished"


def new_id(prefix: str) -> str:
    """A dbt Cloud-style identifier: ``wsu_`` (subscription) or ``wev_`` (event) and 27 characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(27))


def new_secret() -> str:
    """A subscription's ``hmac_secret``: 256 random bits, hex."""
    return secrets.token_hex(32)


def sign(secret: str, body: bytes) -> str:
    """The ``Authorization`` header value: hex HMAC-SHA256 of the raw body keyed with the secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delays(environ: dict[str, str] | None = None) -> tuple[float, ...]:
    """Seconds to wait before each retry (at most ``MAX_RETRIES``)."""
    raw = (environ if environ is not None else os.environ).get(ENV_RETRY_DELAYS, "").strip()
    if not raw:
        return DEFAULT_RETRY_DELAYS
    try:
        delays = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ValueError(
            f"{ENV_RETRY_DELAYS}={raw!r} is not a comma-separated list of seconds; fix: e.g. 0.2,0.4"
        ) from None
    if not delays or any(delay < 0 for delay in delays):
        raise ValueError(f"{ENV_RETRY_DELAYS}={raw!r}: delays must be >= 0 seconds")
    return (delays * MAX_RETRIES)[:MAX_RETRIES]


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


def _shown_url(url: str) -> str:
    """The URL for logs: scheme, host and path only (a query may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def post(url: str, body: bytes, signature: str, timeout: float = TIMEOUT_SECONDS) -> int:
    """POST one attempt; the HTTP status, or 0 when there was no HTTP answer (refused, timed out)."""
    request = urllib.request.Request(  # noqa: S310 - the subscription's URL must be http(s), checked on save
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": signature,
            "User-Agent": f"dbt-cloud-local-webhooks/{__version__}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError) as exc:  # URLError, timeouts, TLS failures
        log.info("Webhook delivery to %s got no answer: %s", _shown_url(url), exc)
        return 0


#: Ids of subscriptions declared in the config: stable across restarts, recognisable.
DECLARED_PREFIX = "wsu_cfg_"


def declared_id(account_id: int, name: str) -> str:
    return DECLARED_PREFIX + hashlib.sha256(f"{account_id}/{name}".encode()).hexdigest()[:23]


def seed_declared(config: Config, store: Store, environ: dict[str, str] | None = None) -> list[str]:
    """(Re)create the config's ``webhooks:`` subscriptions; return the ids now subscribed.

    The config wins at every start (an API edit of a declared subscription lasts until the restart);
    a declaration removed from the config is deleted. One whose secret variable is unset is skipped
    with a warning saying which variable to set (nothing is subscribed without a secret).
    """
    env = os.environ if environ is None else environ
    seeded: list[str] = []
    for declared in config.webhooks:
        secret = env.get(declared.hmac_secret_env, "").strip()
        if not secret:
            log.warning(
                "Webhook %r is declared in the config but %s is not set: not subscribed. Fix: set %s to "
                "the secret the receiver checks (Airflow: the password of connection dbt_cloud_webhook).",
                declared.name,
                declared.hmac_secret_env,
                declared.hmac_secret_env,
            )
            continue
        url = (env.get(declared.client_url_env or "", "") or declared.client_url).strip()
        fields = {
            "name": declared.name,
            "description": "Declared in the local dbt Cloud's config",
            "event_types": list(declared.event_types),
            "job_ids": list(declared.job_ids),
            "client_url": url,
            "active": declared.active,
            "hmac_secret": secret,
        }
        subscription_id = declared_id(declared.account_id, declared.name)
        if store.get_subscription(subscription_id) is None:
            store.create_subscription(subscription_id, declared.account_id, fields)
        else:
            store.update_subscription(subscription_id, **{**fields, "active": int(declared.active)})
        log.info(
            "Webhook %r (%s) sends %s to %s",
            declared.name,
            subscription_id,
            ", ".join(declared.event_types),
            _shown_url(url),
        )
        seeded.append(subscription_id)
    for account_id in config.accounts:
        for row in store.list_subscriptions(account_id):
            if row["id"].startswith(DECLARED_PREFIX) and row["id"] not in seeded:
                store.delete_subscription(row["id"])
    return seeded


class WebhookDispatcher:
    """Turns run status changes into signed deliveries, in the background."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        delays: tuple[float, ...] | None = None,
        timeout: float = TIMEOUT_SECONDS,
        workers: int = 4,
    ) -> None:
        self.config = config
        self.store = store
        self.delays = delays if delays is not None else retry_delays()
        self.timeout = timeout
        self._queue: queue.Queue[tuple[int, str] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")
        self._thread = threading.Thread(target=self._loop, name="webhook-events", daemon=True)

    def start(self) -> None:
        seed_declared(self.config, self.store)
        self._thread.start()

    def stop(self) -> None:
        """Stop building events and retrying; an attempt in flight ends within its timeout."""
        self._stopping.set()
        self._queue.put(None)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run_changed(self, run_id: int, phase: str) -> None:
        """Called by the executor when a run starts or finishes; returns at once."""
        self._queue.put((run_id, phase))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            item = self._queue.get()
            if item is None:
                return
            try:
                self._announce(*item)
            except Exception:  # never let one bad event stop the others
                log.exception("Webhook events for run %s (%s) could not be built", *item)

    def _announce(self, run_id: int, phase: str) -> None:
        run = self.store.get_run(run_id)
        if run is None:
            return
        subscriptions = self.store.list_subscriptions(run["account_id"])
        for event_type in events_for(phase, run["status"]):
            for subscription in subscriptions:
                if not subscribed(subscription, event_type, run["job_id"]):
                    continue
                event_id = new_id("wev_")
                body = json.dumps(payload(self.config, subscription, run, event_type, event_id)).encode()
                try:
                    self._pool.submit(self._deliver, subscription, body, event_type, event_id, run_id)
                except RuntimeError:  # the pool shut down: the server is stopping
                    return

    def _deliver(
        self, subscription: dict[str, Any], body: bytes, event_type: str, event_id: str, run_id: int
    ) -> bool:
        """Send one event, retrying up to ``MAX_RETRIES`` times; True once the receiver answered 2xx."""
        signature = sign(subscription["hmac_secret"], body)
        url = subscription["client_url"]
        attempts = 1 + len(self.delays)
        for attempt in range(1, attempts + 1):
            status = post(url, body, signature, self.timeout)
            self.store.record_dispatch(subscription["id"], status)
            log.info(
                "Webhook %s %s for run %s to subscription %s (%s): HTTP %s (attempt %d of %d)",
                event_type,
                event_id,
                run_id,
                subscription["id"],
                _shown_url(url),
                status or "no answer",
                attempt,
                attempts,
            )
            if 200 <= status < 300:
                return True
            if attempt == attempts or self._stopping.wait(self.delays[attempt - 1]):
                break
        log.warning(
            "Webhook %s %s for run %s to %s was not delivered", event_type, event_id, run_id, _shown_url(url)
        )
        return False
