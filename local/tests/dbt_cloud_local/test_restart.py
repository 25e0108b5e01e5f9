"""
Durability: kill -9 the server in the middle of a run, restart it, and the run is an error with a
clear message, never left "running"; the orphaned dbt process is killed by the restarted server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from helpers import trigger, wait_for_status

from dbt_cloud_local.runs.recovery import SERVER_STOPPED_MESSAGE
from dbt_cloud_local.testing import LocalDbtCloud, processes_in


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_kill_minus_nine_mid_run_then_restart(make_server: Callable[..., LocalDbtCloud]) -> None:
    first = make_server("restart")
    run = trigger(first, 4)  # sleeps DBT_SLOW_SECONDS=60 inside dbt
    wait_for_status(first, run["id"], statuses=(3,))
    run_dir = first.data_dir / "runs" / str(run["id"])
    deadline = time.monotonic() + 30
    while not processes_in(run_dir):
        assert time.monotonic() < deadline, "dbt never started"
        time.sleep(0.2)
    orphans = processes_in(run_dir)

    first.kill()
    assert all(_alive(pid) for pid in orphans), "dbt runs in its own session and survives the crash"

    second = make_server("restart-again", config=first.config_path, data_dir=first.data_dir)
    with second.client() as client:
        data = client.get(
            f"/api/v2/accounts/1/runs/{run['id']}/", params={"include_related": "run_steps"}
        ).json()
    recovered = data["data"]
    assert recovered["status"] == 20
    assert recovered["is_error"]
    assert not recovered["in_progress"]
    assert recovered["status_message"] == SERVER_STOPPED_MESSAGE
    assert recovered["run_steps"][-1]["status"] == 20, "the step in flight ended as an error"
    assert "finished_at" in recovered
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in orphans):
        assert time.monotonic() < deadline, "the restarted server did not kill the orphaned dbt process"
        time.sleep(0.1)
