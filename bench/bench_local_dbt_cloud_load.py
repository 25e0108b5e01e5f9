"""
Load check for the local dbt Cloud: many concurrent pollers while a few real dbt runs execute.

Starts its own server (loopback, temporary data dir, the tests' tiny dbt project), triggers a few runs,
and has ``--threads`` pollers each send ``--requests`` GETs of a run (as Airflow sensors/triggers do).
Prints throughput and latency percentiles; exits non-zero if any request failed or the budget ran out.

    .venv/bin/python bench/bench_local_dbt_cloud_load.py [--threads 50] [--requests 40] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [
    str(REPO_ROOT),
    str(REPO_ROOT / "local"),
    str(REPO_ROOT / "local" / "tests" / "dbt_cloud_local"),
]

from helpers import TOKEN, trigger, wait_for_status, write_config  # noqa: E402

from dbt_cloud_local.testing import run_local_dbt_cloud  # noqa: E402


def poll(server, run_ids: list[int], count: int, latencies: list[float], failures: list[str]) -> None:
    with server.client(timeout=30) as client:
        for index in range(count):
            run_id = run_ids[index % len(run_ids)]
            started = time.perf_counter()
            try:
                response = client.get(f"/api/v2/accounts/1/runs/{run_id}/")
                if response.status_code != 200 or response.json()["data"]["id"] != run_id:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
            except Exception as exc:  # a failed request is a result, not a crash
                failures.append(repr(exc))
            latencies.append(time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="requests per thread")
    parser.add_argument("--runs", type=int, default=3, help="dbt runs triggered during the load")
    parser.add_argument("--budget", type=float, default=180, help="seconds before the bench fails")
    args = parser.parse_args()
    if not (1 <= args.threads <= 200 and 1 <= args.requests <= 1000 and 0 <= args.runs <= 10):
        parser.error("stay within 1-200 threads, 1-1000 requests per thread and 0-10 runs")

    with tempfile.TemporaryDirectory(prefix="dbt-cloud-local-bench-") as tmp:
        root = Path(tmp)
        with run_local_dbt_cloud(
            root / "data", config=write_config(root, page_size=100), token=TOKEN
        ) as server:
            runs = [trigger(server, 5, steps_override=["dbt parse"])["id"] for _ in range(max(args.runs, 1))]
            latencies: list[float] = []
            failures: list[str] = []
            threads = [
                threading.Thread(target=poll, args=(server, runs, args.requests, latencies, failures))
                for _ in range(args.threads)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=max(1.0, args.budget - (time.perf_counter() - started)))
            elapsed = time.perf_counter() - started
            finished = [wait_for_status(server, run_id, timeout=args.budget)["status"] for run_id in runs]

    total = args.threads * args.requests
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"requests: {len(latencies)}/{total} in {elapsed:.1f}s = {len(latencies) / elapsed:.0f} req/s")
    print(f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    print(f"dbt runs during the load: {len(runs)}, final statuses {finished}")
    assert not failures, f"{len(failures)} failed requests, e.g. {failures[:3]}"
    assert len(latencies) == total, "some pollers did not finish within the budget"
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudJobRunStatus

    assert all(status == DbtCloudJobRunStatus.SUCCESS.value for status in finished), (
        f"runs did not all succeed: {finished}"
    )
    assert elapsed < args.budget, f"the load took {elapsed:.0f}s, over the {args.budget:.0f}s budget"
    return 0


if __name__ == "__main__":
    sys.exit(main())
