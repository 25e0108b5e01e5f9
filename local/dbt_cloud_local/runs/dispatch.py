"""
Which queued runs start, and when: run slots, one run per job, one writer per DuckDB file.

Rules (what dbt Cloud does, plus one local constraint):

* Runs of one job execute one at a time, in the order they were triggered (dbt Cloud queues them).
* Runs whose environments write the same DuckDB file are serialized too, because DuckDB allows a
  single writing process per database file. Whoever else writes that file (for example an Airflow
  task loading raw tables) must not overlap a run either.
* At most ``server.run_slots`` runs execute at once.
* A run that cannot start yet blocks every later run that needs one of its resources, so that a
  stream of later runs can never starve it; later runs needing other resources do start.

``select_runs_to_start`` is that policy as a pure function; ``Dispatcher`` applies it to the store's
queue from a background thread and hands each claimed run to a worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dbt_cloud_local.model.records import RunRecord
from dbt_cloud_local.model.statuses import QUEUED, STARTING
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.store.sqlite import utcnow

log = logging.getLogger(__name__)

#: The dispatcher re-reads the queue at least this often even if nobody wakes it.
IDLE_RECHECK_SECONDS = 1.0


def resources(job_id: int, warehouse: Path | None) -> frozenset[str]:
    """What a run holds exclusively while it executes: its job, and its warehouse file if it has one."""
    keys = {f"job:{job_id}"}
    if warehouse is not None:
        keys.add(f"warehouse:{warehouse}")
    return frozenset(keys)


@dataclass(frozen=True)
class QueuedRun:
    run_id: int
    resources: frozenset[str]


def select_runs_to_start(
    queued: Sequence[QueuedRun], executing: Iterable[frozenset[str]], slots: int
) -> list[QueuedRun]:
    """
    The queued runs that may start now, in queue order.

    ``queued`` is oldest first; ``executing`` holds the resources of each run already executing
    (each takes a slot).
    """
    held = [frozenset(keys) for keys in executing]
    busy: set[str] = set().union(*held)
    blocked: set[str] = set()
    free_slots = slots - len(held)
    chosen: list[QueuedRun] = []
    for run in queued:
        if len(chosen) >= free_slots:
            break
        if run.resources & (busy | blocked):
            blocked |= run.resources  # later runs needing these wait behind this one
            continue
        chosen.append(run)
        busy |= run.resources
    return chosen


@dataclass
class ActiveRun:
    """A run handed to a worker: its resources, and the event that tells the worker to stop it."""

    run_id: int
    resources: frozenset[str]
    interrupt: threading.Event = field(default_factory=threading.Event)
    #: Shared by all runs of one dispatcher; set when the server shuts down.
    shutdown: threading.Event = field(default_factory=threading.Event)

    @property
    def server_stopping(self) -> bool:
        """Whether an interrupt comes from the server shutting down rather than a user's cancel."""
        return self.shutdown.is_set()


class Dispatcher:
    """
    Starts queued runs on worker threads as the policy allows; the queue itself lives in the store.

    The store is the queue (so queued runs survive a restart); this class only keeps the runs it
    handed to workers, for the policy and for cancelling them.
    """

    def __init__(
        self,
        store: Store,
        slots: int,
        resources_of: Callable[[RunRecord], frozenset[str]],
        execute: Callable[[ActiveRun], None],
    ) -> None:
        self.store = store
        self.slots = slots
        self._resources_of = resources_of
        self._execute = execute
        self._workers = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="dbt-run")
        self._wake = threading.Condition(threading.Lock())
        self._active: dict[int, ActiveRun] = {}
        self._shutdown = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dbt-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Re-read the queue now (a run was queued, or one left the queue)."""
        with self._wake:
            self._wake.notify_all()

    def interrupt(self, run_id: int) -> bool:
        """Tell the worker executing ``run_id`` to stop it; False if no worker has it."""
        with self._wake:
            entry = self._active.get(run_id)
        if entry is None:
            return False
        entry.interrupt.set()
        return True

    def stop(self) -> None:
        """Start nothing more, interrupt every executing run and wait for the workers to finish."""
        with self._wake:
            self._shutdown.set()
            active = list(self._active.values())
            self._wake.notify_all()
        for entry in active:
            entry.interrupt.set()
        self._workers.shutdown(wait=True, cancel_futures=False)
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._shutdown.is_set():
                    return
                self._start_ready()
                self._wake.wait(timeout=IDLE_RECHECK_SECONDS)

    def _start_ready(self) -> None:
        """Claim and start what the policy allows (called with the lock held)."""
        while True:
            queued = [
                QueuedRun(run.id, self._resources_of(run))
                for run in self.store.run_records_with_status((QUEUED,))
            ]
            executing = [entry.resources for entry in self._active.values()]
            chosen = select_runs_to_start(queued, executing, self.slots)
            lost_a_claim = False
            for run in chosen:
                if self._claim(run.run_id):
                    entry = ActiveRun(run.run_id, run.resources, shutdown=self._shutdown)
                    self._active[run.run_id] = entry
                    self._workers.submit(self._work, entry)
                else:
                    lost_a_claim = True  # cancelled meanwhile: its slot and resources are free again
            if not lost_a_claim:
                return

    def _claim(self, run_id: int) -> bool:
        """Move the run from queued to starting, unless a cancel got there first."""
        return self.store.transition_run(
            run_id,
            (QUEUED,),
            status=STARTING,
            status_message="Preparing the run's working copy",
            dequeued_at=utcnow(),
        )

    def _work(self, entry: ActiveRun) -> None:
        try:
            self._execute(entry)
        except Exception:  # pragma: no cover - execute records its own failures
            log.exception("Run %s: the worker failed", entry.run_id)
        finally:
            with self._wake:
                self._active.pop(entry.run_id, None)
                self._wake.notify_all()
