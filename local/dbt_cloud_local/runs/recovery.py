"""
After a server crash: runs it left starting or running become errors, and its dbt processes die.

A server killed with SIGKILL (or an OOM kill, or a power cut) cannot finish its runs, and their dbt
processes run on in their own sessions. Clients polling such a run must see it end, never "running"
forever, and the orphaned dbt must not keep writing the warehouse while the next run starts; so the
next server start marks those runs errored with ``SERVER_STOPPED_MESSAGE`` and kills their processes.
Queued runs are left alone: they never started and simply execute now.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dbt_cloud_local.model.statuses import ERROR, IN_FLIGHT, RUNNING, STARTING
from dbt_cloud_local.runs.supervisor import kill_leftover
from dbt_cloud_local.runs.workspace import RunWorkspace
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.store.sqlite import utcnow

log = logging.getLogger(__name__)

SERVER_STOPPED_MESSAGE = "the local dbt Cloud server stopped while this run was in progress"


def recover_interrupted_runs(store: Store, data_dir: Path) -> list[int]:
    """Mark runs left starting/running as errored, kill their leftover processes; return their ids."""
    interrupted = store.run_records_with_status((STARTING, RUNNING))
    now = utcnow()
    for run in interrupted:
        workspace = RunWorkspace(data_dir, run.id)
        for step in store.step_records(run.id):
            if step.status not in IN_FLIGHT:
                continue
            if step.pid and kill_leftover(step.pid, workspace.project):
                log.warning("Killed dbt process %s left over from run %s", step.pid, run.id)
            store.update_step(step.id, status=ERROR, finished_at=now)
        store.update_run(run.id, status=ERROR, status_message=SERVER_STOPPED_MESSAGE, finished_at=now)
        log.warning("Run %s: %s", run.id, SERVER_STOPPED_MESSAGE)
    return [run.id for run in interrupted]
