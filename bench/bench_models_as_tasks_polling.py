"""Requests to dbt Cloud per minute while node tasks wait on one run, against the provider's operator.

    .venv/bin/python bench/bench_models_as_tasks_polling.py [--tasks 200] [--window 60] [--interval 10]

Counted where they land: at the local dbt Cloud (real HTTPS), from its access log (``serve
--access-log``: one line per request), so whatever the clients do, retries included, is counted.
For each scenario a run of job 1 is held in flight by the server (fault ``step_delay_ms``: a slow
warehouse) for ``--window`` seconds while the waiting side polls it, then released; the triggers run
as the triggerer runs them, all in one asyncio event loop of one process (``trigger.run()`` of each,
gathered), with the DAGs' connection and trust settings:

1. the provider's ``DbtCloudRunJobOperator`` waiting alone: one ``DbtCloudRunJobTrigger``;
2. ``--tasks`` node tasks of a models-as-tasks group on that one run: as many
   ``DbtCloudNodeTrigger``s, sharing one poller (include/dbt_cloud/node_trigger.py);
3. for scale, the same number of provider triggers (what ``--tasks`` provider operators would send).

Printed per scenario: requests during the window (per minute) and requests after the release until
every trigger fired (the finished run's steps and run_results, read once for all node tasks).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "local")]

from dbt_cloud_local.testing import run_local_dbt_cloud  # noqa: E402
from localdev.airflow_env import project_environment  # noqa: E402

API_REQUEST = re.compile(r'"(GET|POST|PUT|DELETE) /api/')

#: One scenario in a subprocess (aiohttp reads SSL_CERT_FILE at import): N triggers in one event loop.
WAITER = """
import asyncio, json, sys, time
from include.dbt_cloud.hook import HOOK_PARAMS
kind, count, run_id, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if kind == "provider":
    from airflow.providers.dbt.cloud.triggers.dbt import DbtCloudRunJobTrigger
    def make(i):
        return DbtCloudRunJobTrigger(conn_id="dbt_cloud", run_id=run_id, end_time=time.time() + 3600,
                                     poll_interval=interval, account_id=1, hook_params=HOOK_PARAMS)
else:
    from include.dbt_cloud.node_trigger import DbtCloudNodeTrigger
    seeds = ["seed.jaffle_shop.countries", "seed.jaffle_shop.payment_methods"]
    def make(i):
        return DbtCloudNodeTrigger(conn_id="dbt_cloud", account_id=1, run_id=run_id, unique_id=seeds[i % 2],
                                   poll_interval=interval, hook_params=HOOK_PARAMS)
async def wait(trigger):
    async for event in trigger.run():
        return event.payload
async def main():
    triggers = [make(i) for i in range(count)]
    print("WAITING", flush=True)
    return await asyncio.gather(*(wait(t) for t in triggers))
events = asyncio.run(main())
states = sorted({str(e.get("state") or e.get("status")) if isinstance(e, dict) else str(e) for e in events})
print("FIRED " + json.dumps({"events": len(events), "states": states}), flush=True)
"""


def count_requests(log: Path, start: int, end: int | None = None) -> int:
    data = log.read_bytes()[start:end]
    return sum(1 for line in data.decode(errors="replace").splitlines() if API_REQUEST.search(line))


def scenario(server, env: dict[str, str], kind: str, count: int, window: float, interval: float) -> dict:
    with server.client(timeout=30) as client:
        client.put("/_local/faults", json={"step_delay_ms": 600_000}).raise_for_status()
        run = client.post(
            "/api/v2/accounts/1/jobs/1/run/",
            json={"cause": f"bench {kind} x{count}", "steps_override": ["dbt seed"]},
        ).json()["data"]
        time.sleep(1)
        log = server.log_path
        waiter = subprocess.Popen(
            [sys.executable, "-c", WAITER, kind, str(count), str(run["id"]), str(interval)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiter.stdout is not None
        assert waiter.stdout.readline().strip() == "WAITING", (
            waiter.stderr.read()[-2000:] if waiter.stderr else ""
        )
        start = log.stat().st_size
        time.sleep(window)
        during = count_requests(log, start)
        released = log.stat().st_size
        client.delete("/_local/faults").raise_for_status()
        output, errors = waiter.communicate(timeout=600)
        if waiter.returncode != 0:
            raise SystemExit(f"{kind} waiters failed:\n{errors[-3000:]}")
        time.sleep(0.5)
        after = count_requests(log, released)
    fired = json.loads(
        next(line for line in output.splitlines() if line.startswith("FIRED ")).split(" ", 1)[1]
    )
    return {
        "kind": kind,
        "tasks": count,
        "during": during,
        "per_minute": during * 60 / window,
        "after": after,
        **fired,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--window", type=float, default=60, help="seconds the run is held in flight")
    parser.add_argument("--interval", type=float, default=10, help="poll interval of every trigger")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mat-poll-") as scratch:
        root = Path(scratch)
        paths = {"JAFFLE_SHOP_WAREHOUSE": str(root / "warehouse.duckdb")}
        with run_local_dbt_cloud(root / "dbt-cloud", env=paths, extra_args=("--access-log",)) as server:
            env = {**project_environment(root / "airflow-home"), **paths, **server.client_env("dbt_cloud")}
            env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
            results = [
                scenario(server, env, "provider", 1, args.window, args.interval),
                scenario(server, env, "node", args.tasks, args.window, args.interval),
                scenario(server, env, "provider", args.tasks, args.window, args.interval),
            ]
    print(
        f"A run of job 1 held in flight {args.window:.0f} s, every trigger polling each {args.interval:g} s:"
    )
    print(f"  {'who waits':<48} {'req. while waiting':>18} {'per minute':>10} {'after release':>13}")
    labels = {
        ("provider", 1): "the provider's operator, alone (1 trigger)",
        ("node", args.tasks): f"{args.tasks} node tasks of one group (shared poller)",
        ("provider", args.tasks): f"{args.tasks} provider operators (for scale)",
    }
    for result in results:
        label = labels[(result["kind"], result["tasks"])]
        print(f"  {label:<48} {result['during']:>18} {result['per_minute']:>10.1f} {result['after']:>13}")
        assert result["events"] == result["tasks"], result
    alone, shared = results[0]["per_minute"], results[1]["per_minute"]
    print(f"node tasks / provider alone, while waiting: {shared / alone:.2f}x (goal: the same order)")
    print(f"node task outcomes: {results[1]['states']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
