"""The trigger every node task of a dbt Cloud job waits with: one poller per run, however many tasks.

The provider's ``DbtCloudRunJobTrigger`` polls once per deferred task: 200 node tasks on one run would
send 200 requests per interval for the same answer. Here every :class:`DbtCloudNodeTrigger` waiting on
the same run (same event loop, connection, account and run id) subscribes to ONE poller:

- the poller (an asyncio task, created by the first subscriber, cancelled when the last one leaves:
  reference counted) GETs the run every ``poll_interval`` seconds; when the run is finished it GETs the
  run's steps and each dbt step's ``run_results.json`` once (steps are recognised by their name,
  ``Invoke dbt with `...` ``, never by position: dbt Cloud's own clone/profile/deps steps come first),
  turns them into each node's last outcome (``include.dbt_cloud.node_outcomes``) off the event loop,
  and wakes every subscriber;
- each trigger then ends its own task by its node's outcome (its tests folded in): success and skip
  end the task right here (``TaskSuccessEvent``, ``TaskSkippedEvent``: no worker resumes it, which
  saves a worker start per node and sidesteps an Airflow 3.3 race that fails a task resumed right
  after it deferred, see ``_not_too_soon``); a failure resumes the task on a worker with the outcome
  in the event payload (everything the task needs: ``airflow dags test`` drops the kwargs given to
  ``defer``), where it fails without a retry. The outcome's lines (each node and test, dbt's error
  line) are logged here, into the task's log;
- finished runs' outcomes are kept briefly (plain data, any event loop), so node tasks that defer
  after the run ended (downstream tasks start one scheduling round after their upstream) get their
  outcome without a request.

Requests per run: one per interval while it runs, then one for its steps and one per dbt step:
independent of the number of node tasks. Pollers are per event loop because asyncio tasks and events
belong to one loop: the triggerer runs every trigger in one loop (one poller per run per triggerer
process), while ``airflow dags test`` runs each trigger in a fresh loop (one poller per task there,
with the outcome cache serving all but the first).

Only the provider's async calls are used (``_resolve_connection_async``, ``get_headers_tenants_...``):
the poller runs in an asyncio task the triggerer did not create, where the synchronous connection
lookup fails (apache/airflow#70398). Secrets never leave the hook: events carry statuses and dbt's
error lines only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook, DbtCloudJobRunStatus
from airflow.triggers.base import BaseTrigger, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from include.dbt_cloud.job_manifest import is_node_step
from include.dbt_cloud.node_outcomes import (
    NodeRunResult,
    RunResultsSnapshot,
    node_task_outcome,
    run_results_by_node,
)
from include.dbt_cloud.results import StepOutcome, step_outcome

#: The least time between a trigger starting and it resuming a worker (see ``_not_too_soon``).
MIN_SECONDS_BEFORE_RESUME = 5.0
#: How long a finished run's outcomes are kept for node tasks that defer later, and how many runs.
OUTCOME_TTL_SECONDS = 30 * 60
MAX_CACHED_RUNS = 64
TERMINAL = frozenset(DbtCloudJobRunStatus.TERMINAL_STATUSES.value)

#: (conn_id, account_id or None, run_id): what one poller watches.
RunKey = tuple[str, int | None, int]


@dataclass
class _Poller:
    """One run, polled by one asyncio task for every subscriber in its event loop."""

    key: RunKey
    refs: int = 0
    snapshot: RunResultsSnapshot | None = None
    error: str | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def publish(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()  # each waiter wakes once per update, then waits on the new one


#: (id of the event loop, run key) -> its poller. Never awaited across loops (see the module docs).
_POLLERS: dict[tuple[int, RunKey], _Poller] = {}
#: run key -> (when stored, the finished run's snapshot): plain data, shared by every loop.
_FINISHED: OrderedDict[RunKey, tuple[float, RunResultsSnapshot]] = OrderedDict()
#: Requests sent and pollers started per run key, in this process (what the benchmark and the tests
#: read to prove that node tasks share the poller).
REQUESTS: dict[RunKey, int] = {}
POLLERS_STARTED: dict[RunKey, int] = {}


def finished_snapshot(key: RunKey) -> RunResultsSnapshot | None:
    """A finished run's outcomes if still cached."""
    entry = _FINISHED.get(key)
    if entry is None or time.monotonic() - entry[0] > OUTCOME_TTL_SECONDS:
        _FINISHED.pop(key, None)
        return None
    return entry[1]


def _remember(key: RunKey, snapshot: RunResultsSnapshot) -> None:
    _FINISHED[key] = (time.monotonic(), snapshot)
    _FINISHED.move_to_end(key)
    while len(_FINISHED) > MAX_CACHED_RUNS:
        _FINISHED.popitem(last=False)


def _acquire(key: RunKey, hook_params: Mapping[str, Any], poll_interval: float) -> _Poller:
    loop = asyncio.get_running_loop()
    for (loop_id, other_key), poller in list(_POLLERS.items()):  # pollers of loops that are gone
        if poller.task is not None and poller.task.get_loop().is_closed():
            del _POLLERS[(loop_id, other_key)]
    poller = _POLLERS.get((id(loop), key))
    if poller is None or (poller.task is not None and poller.task.done() and poller.snapshot is None):
        poller = _Poller(key)
        poller.task = loop.create_task(_poll(poller, dict(hook_params), poll_interval))
        POLLERS_STARTED[key] = POLLERS_STARTED.get(key, 0) + 1
        _POLLERS[(id(loop), key)] = poller
    poller.refs += 1
    return poller


def _release(poller: _Poller) -> None:
    poller.refs -= 1
    if poller.refs <= 0 and poller.task is not None:
        poller.task.cancel()
        loop_id = id(poller.task.get_loop())
        if _POLLERS.get((loop_id, poller.key)) is poller:
            del _POLLERS[(loop_id, poller.key)]


async def _poll(poller: _Poller, hook_params: dict[str, Any], poll_interval: float) -> None:
    conn_id, account_id, run_id = poller.key
    client = _RunClient(DbtCloudHook(conn_id, **hook_params), account_id, poller.key)
    try:
        while True:
            run = await client.get(f"runs/{run_id}/")
            if run["status"] in TERMINAL:
                break
            await asyncio.sleep(poll_interval)
        poller.snapshot = await client.snapshot(run_id)
        _remember(poller.key, poller.snapshot)
    except asyncio.CancelledError:
        raise
    except Exception as error:  # every subscriber reports it; its task retries, with a fresh poller
        poller.error = f"{type(error).__name__}: {error}"
    poller.publish()


class _RunClient:
    """The few dbt Cloud API v2 GETs the poller needs, through the provider's async connection."""

    def __init__(self, hook: DbtCloudHook, account_id: int | None, key: RunKey) -> None:
        self.hook = hook
        self.account_id = account_id
        self.key = key

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        data = await self.get_raw(path, params)
        return json.loads(data)["data"] if data is not None else None

    async def get_raw(self, path: str, params: Mapping[str, str] | None = None) -> bytes | None:
        """The body of a GET, or None when it answers 404 (a step without run_results.json)."""
        hook = self.hook
        if self.account_id is None:
            self.account_id = await hook._resolve_account_id_async()
        headers, tenant = await hook.get_headers_tenants_from_connection()
        url, _ = hook.get_request_url_params(tenant, f"{self.account_id}/{path}")
        conn = await hook._resolve_connection_async()
        proxies = hook._get_proxies(conn) or {}
        proxy = proxies.get("https") if url.startswith("https") else proxies.get("http")
        timeout = aiohttp.ClientTimeout(total=hook.timeout_seconds) if hook.timeout_seconds else None
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            async for attempt in hook._a_get_retry_object():
                with attempt:
                    REQUESTS[self.key] = REQUESTS.get(self.key, 0) + 1
                    async with session.get(url, params=dict(params or {}), proxy=proxy) as response:
                        if response.status == 404 and "/artifacts/" in path:
                            return None
                        response.raise_for_status()
                        return await response.read()
        raise AssertionError("unreachable: the retry object reraises")  # pragma: no cover

    async def snapshot(self, run_id: int) -> RunResultsSnapshot:
        """The finished run's steps, then each dbt step's run_results.json, read once."""
        run = await self.get(f"runs/{run_id}/", {"include_related": '["run_steps"]'})
        documents: list[tuple[int, str, bytes | None]] = []
        for step in run.get("run_steps") or []:
            index, name = step.get("index"), step.get("name") or ""
            if isinstance(index, int) and is_node_step(name):
                body = await self.get_raw(f"runs/{run_id}/artifacts/run_results.json", {"step": str(index)})
                documents.append((index, name, body))
        # Parsing thousands of results is CPU work: off the triggerer's event loop.
        results, missing = await asyncio.to_thread(_parse_steps, documents)
        return RunResultsSnapshot(
            run_id=run_id,
            status=run["status"],
            status_humanized=run.get("status_humanized") or str(run["status"]),
            href=run.get("href"),
            results=results,
            steps_without_results=missing,
        )


def _parse_steps(
    documents: Sequence[tuple[int, str, bytes | None]],
) -> tuple[dict[str, NodeRunResult], tuple[tuple[int, str], ...]]:
    steps: list[StepOutcome] = []
    missing = []
    for index, name, body in documents:
        if body is None:
            missing.append((index, name))
            continue
        steps.append(step_outcome(index, name, json.loads(body)))
    return run_results_by_node(steps), tuple(missing)


class DbtCloudNodeTrigger(BaseTrigger):
    """Wait until dbt Cloud run ``run_id`` is finished; fire with the outcome of one node task.

    :param unique_id: the task's node (a source's unique_id for a task of source tests).
    :param tests: the unique_ids of the tests folded into the task.
    """

    def __init__(
        self,
        *,
        conn_id: str,
        account_id: int | None,
        run_id: int,
        unique_id: str,
        tests: Sequence[str] = (),
        is_source: bool = False,
        poll_interval: float = 10.0,
        hook_params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.account_id = account_id
        self.run_id = int(run_id)
        self.unique_id = unique_id
        self.tests = list(tests)
        self.is_source = is_source
        self.poll_interval = poll_interval
        self.hook_params = dict(hook_params or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "account_id": self.account_id,
                "run_id": self.run_id,
                "unique_id": self.unique_id,
                "tests": self.tests,
                "is_source": self.is_source,
                "poll_interval": self.poll_interval,
                "hook_params": self.hook_params,
            },
        )

    @property
    def key(self) -> RunKey:
        return (self.conn_id, self.account_id, self.run_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = asyncio.get_running_loop().time()
        snapshot = finished_snapshot(self.key)
        if snapshot is None:
            poller = _acquire(self.key, self.hook_params, self.poll_interval)
            try:
                while poller.snapshot is None and poller.error is None:
                    await poller.changed.wait()
                snapshot, error = poller.snapshot, poller.error
            finally:
                _release(poller)
            if snapshot is None:
                await _not_too_soon(started)
                yield TriggerEvent(
                    {"status": "error", "run_id": self.run_id, "unique_id": self.unique_id, "message": error}
                )
                return
        outcome = node_task_outcome(self.unique_id, self.tests, snapshot, is_source=self.is_source)
        self.log.info("%s ended %s: %s", snapshot.title, snapshot.status_humanized, snapshot.href)
        for line in outcome.lines:
            self.log.info("  %s", line)
        # Success and skip end the task here, in the triggerer (no worker resumes it; see the module).
        if outcome.state == "success":
            self.log.info(outcome.message)
            yield TaskSuccessEvent()
            return
        if outcome.state == "skipped":
            self.log.info(outcome.message)
            yield TaskSkippedEvent()
            return
        # Failed (or missing): a worker resumes the task, which fails it without a retry.
        self.log.error(outcome.message)
        await _not_too_soon(started)
        yield TriggerEvent(
            {
                "status": "finished",
                "run_id": self.run_id,
                "run_status": snapshot.status_humanized,
                "href": snapshot.href,
                "unique_id": self.unique_id,
                "state": outcome.state,
                "message": outcome.message,
                "lines": list(outcome.lines),
            }
        )


async def _not_too_soon(started: float) -> None:
    """Resume a worker no sooner than ``MIN_SECONDS_BEFORE_RESUME`` after the trigger started.

    Airflow 3.3 fails a task that a worker resumed before the scheduler processed the executor's
    "success" of the try's defer exit (apache/airflow#71580, #72716; fixes open): a trigger that fires
    at once, as one reading a cached outcome does, invites exactly that race.
    """
    wait = MIN_SECONDS_BEFORE_RESUME - (asyncio.get_running_loop().time() - started)
    if wait > 0:
        await asyncio.sleep(wait)
