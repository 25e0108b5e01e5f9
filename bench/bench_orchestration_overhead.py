"""Benchmark: how long the deferrable dbt Cloud task lags behind the dbt Cloud run it waits for.

    .venv/bin/python bench/bench_orchestration_overhead.py [--runs 2] [--check-intervals 1,5,10]

What is measured: for each sample, ``overhead = end_date - finished_at``, where ``finished_at`` is when
the dbt Cloud run reached a terminal state (the run's ``finished_at`` from the local dbt Cloud API,
written in the same update as its terminal status) and ``end_date`` is when the Airflow task instance
of ``trigger_dbt_cloud_job_run`` finished (from the Airflow metadata DB). Both clocks are this machine's.

Why: in deferrable mode the task does not watch the run; the trigger polls the run's status every
``check_interval`` seconds (``DbtCloudRunJobTrigger``'s ``poll_interval``), then the task resumes in
``execute_complete``. So the overhead should be about a uniformly distributed share of one
``check_interval`` (the time until the next poll) plus a fixed cost of resuming the task. The table
compares the overhead with ``check_interval``: a p50 near half an interval plus a small constant says
the interval is the whole story; a large constant would say the resume path costs more than polling.

How: everything is real and local: a temporary AIRFLOW_HOME (``airflow db migrate``, SQLite), a
temporary DuckDB warehouse, landing and models directories, the local dbt Cloud (HTTPS, dbt Core),
the eltml DAG unmodified except for ``check_interval``. The DAG runs once (``dag.test()``, with
ml_training marked successful), so extract and load are done; then each sample clears only the dbt
task of that DAG run (the function ``airflow tasks clear`` uses) and resumes the run with
``local/tests/e2e/run_dag.py``'s ``resume_cleared_run`` (scheduler loop plus in-process triggerer). The
cleared task's try number is above 1, so with ``retry_from_failure`` it calls dbt Cloud's ``/rerun/``,
which after a successful run is a normal full run. Samples interleave the intervals so drift in
machine load spreads evenly. Each sample costs one dbt build (about 20-25 s on 2 idle cores), so the
defaults (2 samples of 3 intervals) take about 3.5 minutes.

Scope: this is ``dag.test()``'s in-process path, i.e. the floor set by polling. A deployment adds the
triggerer writing the event, the scheduler's next loop, the executor's queueing and a worker process
starting the resumed task, none of which appear here. Task logs go to a file; the script prints
figures and only checks that every DAG run and dbt Cloud run succeeded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "local")]

from localdev.airflow_env import project_environment  # noqa: E402

DAG_ID = "dbt_cloud_provider_eltml"
DBT_TASK = "trigger_dbt_cloud_job_run"
LOGICAL_DATE = dt.datetime(2025, 9, 1, 6, 0, tzinfo=dt.UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=2, help="samples per check_interval")
    parser.add_argument("--check-intervals", default="1,5,10", help="comma-separated seconds")
    args = parser.parse_args()
    intervals = [int(value) for value in args.check_intervals.split(",")]

    with tempfile.TemporaryDirectory(prefix="bench-orchestration-") as tmp:
        root = Path(tmp)
        log_path = root / "tasks.log"
        try:
            samples = measure(root, intervals, args.runs, log_path)
        except Exception:
            tail = log_path.read_text(errors="replace")[-6000:] if log_path.exists() else ""
            print(f"--- last task log lines ---\n{tail}", file=sys.stderr)
            raise
    report(samples, intervals)
    return 0


def measure(root: Path, intervals: list[int], runs: int, log_path: Path) -> dict[int, list[float]]:
    paths = {
        "JAFFLE_SHOP_WAREHOUSE": str(root / "warehouse.duckdb"),
        "ELTML_LANDING_DIR": str(root / "landing"),
        "ELTML_MODELS_DIR": str(root / "ml_models"),
    }
    # Airflow reads its configuration (and aiohttp its CA trust) when first imported: all of this is
    # in the environment before any Airflow import, which happens only after the server is up.
    environment = {**project_environment(root / "airflow"), **paths}
    os.environ.clear()
    os.environ.update(environment)

    from dbt_cloud_local.testing import run_local_dbt_cloud

    started = time.monotonic()
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
    print(f"Airflow DB migrated ({time.monotonic() - started:.0f}s)", flush=True)

    with run_local_dbt_cloud(root / "dbt-cloud", env=paths) as server:
        os.environ.update(server.client_env("dbt_cloud"))

        started = time.monotonic()
        with output_to(log_path):
            from airflow.dag_processing.dagbag import DagBag

            dag = DagBag().get_dag(DAG_ID)
            task = dag.get_task(DBT_TASK)
            task.check_interval = min(intervals)
            # ml_training is marked successful rather than run: the samples never rerun it.
            dag_run = dag.test(logical_date=LOGICAL_DATE, mark_success_pattern="ml_training")
        check(str(dag_run.state) == "success", f"the first DAG run ended {dag_run.state}")
        print(f"First DAG run done: extract and load are in place ({time.monotonic() - started:.0f}s)")

        samples: dict[int, list[float]] = {interval: [] for interval in intervals}
        seen_runs: set[int] = set()
        for sample in range(1, runs + 1):
            for interval in intervals:
                task.check_interval = interval
                started = time.monotonic()
                overhead, dbt_run_id, dbt_seconds = one_sample(dag, server, log_path, seen_runs)
                seen_runs.add(dbt_run_id)
                samples[interval].append(overhead)
                print(
                    f"  sample {sample}/{runs}  check_interval {interval:>3}s  dbt Cloud run {dbt_run_id:>3}"
                    f" took {dbt_seconds:5.1f}s  overhead {overhead:6.2f}s"
                    f"  (sample {time.monotonic() - started:.0f}s)",
                    flush=True,
                )
    return samples


def one_sample(dag, server, log_path: Path, seen_runs: set[int]) -> tuple[float, int, float]:
    """Clear the dbt task and resume the DAG run: (overhead s, dbt Cloud run id, its duration s)."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.serialization.definitions.dag import SerializedDAG

    from tests.e2e.run_dag import resume_cleared_run

    # What `airflow tasks clear DAG -t trigger_dbt_cloud_job_run -s DAY -e DAY --yes` does, without
    # paying for a CLI process: only the dbt task; ml_training keeps its success.
    subset = SerializedDagModel.get_dag(DAG_ID).partial_subset(
        task_ids=[DBT_TASK], include_downstream=False, include_upstream=False
    )
    SerializedDAG.clear_dags([subset], start_date=LOGICAL_DATE, end_date=LOGICAL_DATE)

    with output_to(log_path):
        dag_run = resume_cleared_run(dag, LOGICAL_DATE)
    check(str(dag_run.state) == "success", f"the resumed DAG run ended {dag_run.state}")

    state, end_date, dbt_run_id = task_outcome(dag_run.run_id)
    check(state == "success", f"{DBT_TASK} ended {state}")
    check(dbt_run_id not in seen_runs, f"{DBT_TASK} did not start a new dbt Cloud run ({dbt_run_id})")
    with server.client(timeout=30) as client:
        response = client.get(f"/api/v2/accounts/{server.account_id}/runs/{dbt_run_id}/")
        response.raise_for_status()
        run = response.json()["data"]
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudJobRunStatus  # after AIRFLOW_HOME is set

    check(
        run["status"] == DbtCloudJobRunStatus.SUCCESS.value,
        f"dbt Cloud run {dbt_run_id} ended with status {run['status']}",
    )
    finished_at = dt.datetime.fromisoformat(run["finished_at"])
    duration = (finished_at - dt.datetime.fromisoformat(run["created_at"])).total_seconds()
    return (end_date - finished_at).total_seconds(), dbt_run_id, duration


def task_outcome(run_id: str) -> tuple[str, dt.datetime, int]:
    """(state, end_date, pushed dbt Cloud run id) of the dbt task instance, from the metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run_id)
            .filter(TaskInstance.task_id == DBT_TASK)
            .one()
        )
        xcom = (
            session.query(XComModel)
            .filter(XComModel.dag_id == DAG_ID, XComModel.run_id == run_id)
            .filter(XComModel.task_id == DBT_TASK, XComModel.key == "return_value")
            .one()
        )
        return str(ti.state), ti.end_date, int(XComModel.deserialize_value(xcom))


def report(samples: dict[int, list[float]], intervals: list[int]) -> None:
    header = (
        f"{'check_interval s':>16} {'runs':>5} {'overhead p50 s':>15} {'overhead max s':>15}"
        f" {'p50 / interval':>15} {'max / interval':>15}"
    )
    print()
    print(header)
    print("-" * len(header))
    for interval in intervals:
        values = samples[interval]
        p50, worst = statistics.median(values), max(values)
        print(
            f"{interval:>16} {len(values):>5} {p50:>15.2f} {worst:>15.2f}"
            f" {p50 / interval:>15.2f} {worst / interval:>15.2f}"
        )


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (the in-process task logs) to a file, at fd level."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


if __name__ == "__main__":
    sys.exit(main())
