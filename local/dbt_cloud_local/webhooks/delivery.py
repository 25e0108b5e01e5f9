"""
Deliveries in the background: the executor only enqueues ``(run_id, phase)``; a thread builds the
payloads and a small pool of threads delivers them, each event retried up to 5 times with growing
delays (``DBT_CLOUD_LOCAL_WEBHOOK_RETRY_DELAYS``, seconds, comma-separated, for tests) until the
receiver answers 2xx. Retries of one event keep its ``eventId``, so a receiver can ignore replays by
``eventId``. Every attempt is logged (event, run, subscription, URL without its query, HTTP status);
secrets and bodies never are. Deliveries still pending when the server stops are dropped (dbt Cloud
keeps them; this local server does not).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dbt_cloud_local.config.settings import Config
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.webhooks.declared import seed_declared
from dbt_cloud_local.webhooks.payloads import events_for, payload, subscribed
from dbt_cloud_local.webhooks.sending import TIMEOUT_SECONDS, new_id, post, shown_url, sign

log = logging.getLogger(__name__)

#: dbt Cloud's documented number of retries.
MAX_RETRIES = 5
DEFAULT_RETRY_DELAYS = (2.0, 4.0, 8.0, 16.0, 32.0)
ENV_RETRY_DELAYS = "DBT_CLOUD_LOCAL_WEBHOOK_RETRY_DELAYS"


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
                shown_url(url),
                status or "no answer",
                attempt,
                attempts,
            )
            if 200 <= status < 300:
                return True
            if attempt == attempts or self._stopping.wait(self.delays[attempt - 1]):
                break
        log.warning(
            "Webhook %s %s for run %s to %s was not delivered", event_type, event_id, run_id, shown_url(url)
        )
        return False
