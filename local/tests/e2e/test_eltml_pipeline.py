"""The eltml DAG end to end: real provider, real local dbt Cloud over HTTPS, real dbt Core, real DuckDB.

Each test is one story a user lives through: the pipeline succeeds; a model breaks, the task fails
naming it, the cause is fixed and the cleared task reruns only what failed; a worker dies mid-run and
the retry attaches to the run in flight; the task times out and the dbt Cloud run is cancelled.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import duckdb
import httpx
from pipeline_harness import CANCELLED, DBT_TASK, ELTML, ERROR, NOT_OK, SUCCESS, Pipeline

from dbt_cloud_local.testing import processes_in

FAST_RETRIES = ("--set", f"{DBT_TASK}.retry_delay=1")
ALL_TASKS = {"extract", "load", DBT_TASK, "ml_training", "record_dbt_model_assets"}


def _date(day: int) -> dt.datetime:
    return dt.datetime(2025, 7, day, 6, 0)


def _build_step(run: dict) -> int:
    return next(step["index"] for step in run["run_steps"] if "dbt build" in step["name"])


def test_pipeline_succeeds_with_data_in_the_mart_and_a_trained_model(pipeline: Pipeline):
    outcome = pipeline.run_dag(_date(1))

    assert outcome.state == "success", outcome.output[-4000:]
    states = pipeline.task_instances(ELTML, outcome.run_id)
    assert {task: state for task, (state, _) in states.items()} == dict.fromkeys(ALL_TASKS, "success")
    assert "new_state=deferred" in outcome.output, "the dbt task waited in the triggerer (deferrable)"

    dbt_run_id = pipeline.xcom(ELTML, outcome.run_id, DBT_TASK)
    run = pipeline.run(dbt_run_id)
    assert run["status"] == SUCCESS
    assert pipeline.xcom(ELTML, outcome.run_id, DBT_TASK, key="job_run_url") == run["href"]
    page = httpx.get(run["href"], verify=pipeline.server.trust, timeout=10)
    assert page.status_code == 200
    assert "dbt build" in page.text
    built = pipeline.run_results(dbt_run_id, _build_step(run))
    assert set(built.values()) <= {"success", "pass"}
    assert sum(uid.startswith("model.") for uid in built) >= 8

    with duckdb.connect(str(pipeline.warehouse), read_only=True) as con:
        customers = con.execute("SELECT count(*) FROM main.customers").fetchone()[0]
        features = con.execute("SELECT count(*) FROM main.customer_features").fetchone()[0]
    assert customers > 0
    assert features == 1000

    metrics = pipeline.xcom(ELTML, outcome.run_id, "ml_training")
    assert metrics["accuracy"] > metrics["baseline_accuracy"], "the model beats always-guess-majority"
    assert metrics["roc_auc"] > 0.6
    model_files = sorted(p.name for p in pipeline.models_dir.rglob("*") if p.is_file())
    assert model_files == ["metrics.json", "model.joblib"]


def test_failed_model_is_named_then_clearing_the_task_reruns_only_failed_and_skipped(pipeline: Pipeline):
    first_new_run = len(pipeline.runs())
    pipeline.set_environment_variable("DBT_FAIL_MODEL", "stg_orders")
    try:
        failed = pipeline.run_dag(_date(2), *FAST_RETRIES)
    finally:
        pipeline.set_environment_variable("DBT_FAIL_MODEL", None)  # "fix the cause"

    assert failed.state == "failed", failed.output[-4000:]
    states = pipeline.task_instances(ELTML, failed.run_id)
    assert states[DBT_TASK] == ("failed", 3), "first try plus the DAG's two retries"
    assert states["ml_training"][0] == "upstream_failed"
    assert "DBT_FAIL_MODEL asked jaffle_shop.stg_orders to fail" in failed.output
    assert "(`dbt build`) failed" in failed.output, "the task log names the failed step"

    attempts = pipeline.runs()[first_new_run:]
    assert [run["status"] for run in attempts] == [ERROR, ERROR, ERROR]
    assert [run["trigger"]["cause_category"] for run in attempts] == ["api", "rerun", "rerun"]
    original = pipeline.run(attempts[0]["id"])
    original_results = pipeline.run_results(original["id"], _build_step(original))
    expected = {uid for uid, status in original_results.items() if status in NOT_OK}
    assert "model.jaffle_shop.stg_orders" in expected
    assert any(status in {"success", "pass"} for status in original_results.values())

    # Clear trigger_dbt_cloud_job_run (and downstream) in the failed DAG run: extract and load keep
    # their success, the dbt task's next try asks dbt Cloud to rerun from the point of failure.
    pipeline.clear_task(_date(2), DBT_TASK)
    cleared = pipeline.run_dag(_date(2), "--resume")

    assert cleared.state == "success", cleared.output[-4000:]
    states = pipeline.task_instances(ELTML, cleared.run_id)
    assert states[DBT_TASK] == ("success", 4)
    assert states["ml_training"][0] == "success"
    rerun = pipeline.run(pipeline.xcom(ELTML, cleared.run_id, DBT_TASK))
    assert rerun["trigger"]["cause_category"] == "rerun"
    # dbt Cloud's steps 1 to 3 (clone, profile, deps), then the retry as the first command: step 4.
    retry_step = rerun["run_steps"][3]
    assert (retry_step["index"], retry_step["name"]) == (4, "Invoke dbt with `dbt retry`"), rerun["run_steps"]
    executed = pipeline.run_results(rerun["id"], retry_step["index"])
    assert set(executed) == expected, "exactly the failed and skipped nodes, nothing else"
    assert set(executed.values()) <= {"success", "pass"}


def test_worker_death_retry_attaches_to_the_run_in_flight(pipeline: Pipeline):
    first_new_run = len(pipeline.runs())
    # Hold dbt Cloud runs before their first step, so the run is surely still in flight when the retry
    # comes (on a fast machine the whole dbt job could otherwise finish first).
    pipeline.set_faults(step_delay_ms=300_000)
    try:
        worker = pipeline.start_dag(_date(3), *FAST_RETRIES)
        in_flight = _wait_for_new_run(pipeline, first_new_run, timeout=180)
        time.sleep(2)  # the task is now waiting on the run
        os.killpg(worker.pid, signal.SIGKILL)  # the worker (and its in-process triggerer) dies
        worker.wait(timeout=30)

        # The lost task instance is retried (here cleared, as the scheduler's zombie handling would).
        pipeline.clear_task(_date(3), DBT_TASK)
        retry = pipeline.start_dag(_date(3), "--resume")
        _wait_for_retry_to_pick_a_run(pipeline, _date(3), try_number=2)
        assert pipeline.run(in_flight)["is_complete"] is False, "the dbt Cloud run outlived the worker"
    finally:
        pipeline.set_faults()  # let the run go on
    output, _ = retry.communicate(timeout=400)

    assert '"state": "success"' in output, output[-4000:]
    assert [run["id"] for run in pipeline.runs()[first_new_run:]] == [in_flight], "no second run"
    dag_run_id = pipeline.dag_run_id(ELTML, _date(3))
    assert pipeline.xcom(ELTML, dag_run_id, DBT_TASK) == in_flight
    assert pipeline.task_instances(ELTML, dag_run_id)[DBT_TASK] == ("success", 2)


def test_task_timeout_cancels_the_dbt_cloud_run(pipeline: Pipeline):
    first_new_run = len(pipeline.runs())
    pipeline.set_faults(step_delay_ms=300_000)  # a dbt job that takes far longer than the timeout
    try:
        outcome = pipeline.run_dag(
            _date(4),
            "--set",
            f"{DBT_TASK}.execution_timeout=3",
            "--set",
            f"{DBT_TASK}.check_interval=1",
            "--set",
            f"{DBT_TASK}.retries=0",
        )
    finally:
        pipeline.set_faults()

    assert outcome.state == "failed", outcome.output[-4000:]
    assert pipeline.task_instances(ELTML, outcome.run_id)[DBT_TASK][0] == "failed"
    (run,) = pipeline.runs()[first_new_run:]
    run = pipeline.wait_until_complete(run["id"])
    assert run["status"] == CANCELLED, "the run was cancelled, not leaked"
    assert processes_in(pipeline.server.data_dir / "runs" / str(run["id"])) == [], "dbt was stopped"


def _wait_for_retry_to_pick_a_run(pipeline: Pipeline, logical_date: dt.datetime, try_number: int) -> None:
    """Until the dbt task's try ``try_number`` has chosen its dbt Cloud run (the job_run_id XCom)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        run_id = pipeline.dag_run_id(ELTML, logical_date)
        state = pipeline.task_instances(ELTML, run_id).get(DBT_TASK) if run_id else None
        if state and state[1] == try_number and pipeline.xcom(ELTML, run_id, DBT_TASK, key="job_run_id"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{DBT_TASK} try {try_number} did not pick a dbt Cloud run; last seen {state}")


def _wait_for_new_run(pipeline: Pipeline, known: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = pipeline.runs()[known:]
        if runs and runs[0]["status"] in (2, 3):
            return runs[0]["id"]
        time.sleep(0.5)
    raise AssertionError(f"no dbt Cloud run started within {timeout}s")
