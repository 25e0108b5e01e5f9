"""The eltml dbt task resumes the dbt Cloud run it launched: real local dbt Cloud, dbt, Airflow.

Each test is one story: the job ran elsewhere after our run failed, and clearing the task still
reruns only what *our* run left undone (steps_override from its artifacts); a cancelled run resumes
at the step it stopped in, and a worker dying during that resumed run does not start a second one;
a dbt Cloud answering 30 % of requests with 429/503 does not fail the task.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

from pipeline_harness import CANCELLED, DBT_TASK, ELTML, ELTML_JOB_ID, NOT_OK, SUCCESS, Pipeline

FAST_RETRY = ("--set", f"{DBT_TASK}.retry_delay=1", "--set", f"{DBT_TASK}.check_interval=2")
HOLD = 300_000  # step_delay_ms: holds dbt Cloud runs before their next step until lifted


def _date(day: int) -> dt.datetime:
    return dt.datetime(2025, 8, day, 6, 0)


def _step(run: dict, command: str) -> dict:
    return next(step for step in run["run_steps"] if step["name"] == f"Invoke dbt with `{command}`")


def _commands(run: dict) -> list[str]:
    return [step["name"].removeprefix("Invoke dbt with `").removesuffix("`") for step in run["run_steps"]]


def test_cleared_task_resumes_its_own_failed_run_after_the_job_ran_elsewhere(pipeline: Pipeline):
    known = len(pipeline.runs())
    pipeline.set_environment_variable("DBT_FAIL_MODEL", "stg_orders")
    try:  # try 1 triggers the job, try 2 resumes that run with dbt Cloud's retry: both fail
        failed = pipeline.run_dag(_date(1), *FAST_RETRY, "--set", f"{DBT_TASK}.retries=1")
    finally:
        pipeline.set_environment_variable("DBT_FAIL_MODEL", None)  # "fix the cause"
    assert failed.state == "failed", failed.output[-4000:]
    first, retried = pipeline.runs()[known:]
    assert retried["retrying_run_id"] == first["id"], "try 2 used dbt Cloud's run-level retry"
    assert "Path: dbt Cloud retry" in failed.output
    assert pipeline.xcom(ELTML, failed.run_id, DBT_TASK, key="dbt_cloud_run_id") == retried["id"]
    first = pipeline.run(first["id"])
    first_results = pipeline.run_results(first["id"], _step(first, "dbt build")["index"])
    expected = {uid for uid, status in first_results.items() if status in NOT_OK}
    assert "model.jaffle_shop.stg_orders" in expected
    assert any(status in {"success", "pass"} for status in first_results.values())

    # Someone runs the job outside Airflow, and it succeeds: the job's latest run is not ours now.
    colleague = pipeline.api("POST", f"/jobs/{ELTML_JOB_ID}/run/", json={"cause": "A colleague's run"})
    assert pipeline.wait_until_complete(colleague["data"]["id"])["status"] == SUCCESS

    pipeline.clear_task(_date(1), DBT_TASK)
    cleared = pipeline.run_dag(_date(1), "--resume", *FAST_RETRY)

    assert cleared.state == "success", cleared.output[-4000:]
    assert (
        f"Run {retried['id']} (Error) cannot be retried by dbt Cloud: RETRY_NOT_LATEST_RUN" in cleared.output
    )
    assert "Path: steps_override" in cleared.output
    assert "rerun model.jaffle_shop.stg_orders" in cleared.output, "the log names each node and why"
    resumed = pipeline.run(pipeline.xcom(ELTML, cleared.run_id, DBT_TASK))
    assert [run["id"] for run in pipeline.runs()[known:]][-1] == resumed["id"] > colleague["data"]["id"]
    assert resumed["trigger"]["cause"] == first["trigger"]["cause"], "the same tag: the chain goes on"
    assert "dbt seed" not in _commands(resumed), "the step that succeeded does not run again"
    build = next(
        step for step in resumed["run_steps"] if step["name"].startswith("Invoke dbt with `dbt build")
    )
    executed = pipeline.run_results(resumed["id"], build["index"])
    assert set(executed) == expected, "exactly the failed and skipped nodes of the first run"
    assert set(executed.values()) <= {"success", "pass"}
    assert pipeline.task_instances(ELTML, cleared.run_id)[DBT_TASK] == ("success", 3)


def test_cancelled_run_resumes_at_its_step_and_a_dead_worker_does_not_start_a_second_run(pipeline: Pipeline):
    known = len(pipeline.runs())
    pipeline.set_faults(step_delay_ms=HOLD)
    try:
        worker = pipeline.start_dag(_date(2), *FAST_RETRY, "--set", f"{DBT_TASK}.retries=0")
        run_id = _wait_for_runs(pipeline, known, 1)[0]["id"]
        pipeline.set_faults()  # let the run through `dbt seed`, and hold it again before `dbt build`
        _wait_until(lambda: _seed_started(pipeline, run_id), "dbt seed to start")
        pipeline.set_faults(step_delay_ms=HOLD)
        _wait_until(lambda: _has_step(pipeline.run(run_id), "dbt build"), "the run to reach dbt build")
        pipeline.api("POST", f"/runs/{run_id}/cancel/")  # what a timeout does too (on_kill / timeout)
        output, _ = worker.communicate(timeout=300)
        cancelled = pipeline.wait_until_complete(run_id)
        assert cancelled["status"] == CANCELLED, output[-4000:]
        assert _step(cancelled, "dbt seed")["status"] == SUCCESS

        # Cleared, the task resumes the cancelled run at `dbt build`; its worker dies mid-run.
        pipeline.clear_task(_date(2), DBT_TASK)
        worker = pipeline.start_dag(_date(2), "--resume", *FAST_RETRY)
        resumed_id = _wait_for_runs(pipeline, known, 2)[1]["id"]
        _wait_until(lambda: _run_id_pushed(pipeline, _date(2)), "the task to push dbt_cloud_run_id")
        os.killpg(worker.pid, signal.SIGKILL)
        resume_output, _ = worker.communicate(timeout=30)

        pipeline.clear_task(_date(2), DBT_TASK)
        retry = pipeline.start_dag(_date(2), "--resume", *FAST_RETRY)
        _wait_until(lambda: _run_id_pushed(pipeline, _date(2), try_number=3), "try 3 to pick a run", retry)
    finally:
        pipeline.set_faults()
    output, _ = retry.communicate(timeout=300)

    assert '"state": "success"' in output, output[-4000:]
    assert f"Path: attach. Run {resumed_id} " in output
    assert "left no run_results.json to plan from" in resume_output
    assert [run["id"] for run in pipeline.runs()[known:]] == [run_id, resumed_id], "no second resumed run"
    resumed = pipeline.run(resumed_id)
    assert resumed["status"] == SUCCESS
    assert resumed["trigger"]["steps_override"] == ["dbt build"], "resumed at the step it stopped in"
    assert "dbt seed" not in _commands(resumed)
    dag_run_id = pipeline.dag_run_id(ELTML, _date(2))
    assert pipeline.xcom(ELTML, dag_run_id, DBT_TASK) == resumed_id


def test_dag_succeeds_first_try_with_30_percent_of_api_answers_failing(pipeline: Pipeline):
    known = len(pipeline.runs())
    # 30 % of all answers, plus one sure fault on each synchronous call the task makes: the lookup,
    # the trigger (a 503 on a write: looked up again before the next POST), the trigger again with the
    # run made but its answer lost (`after`: the lookup finds it, no second POST), the status read.
    sure = [
        {"method": "GET", "path": "/runs/$", "status": 429, "times": 1},
        {"method": "POST", "path": r"/jobs/\d+/run/$", "status": 503, "times": 1},
        {"method": "POST", "path": r"/jobs/\d+/run/$", "status": 503, "times": 1, "after": True},
        {"method": "GET", "path": r"/runs/\d+/$", "status": 503, "times": 1},
    ]
    pipeline.set_faults(error_rate=0.3, error_statuses=[429, 503], seed=11, rules=sure)
    try:
        outcome = pipeline.run_dag(_date(3), *FAST_RETRY)
        with pipeline.server.client(timeout=30) as client:
            injected = client.get("/_local/faults").json()["injected"]
    finally:
        pipeline.set_faults()

    assert outcome.state == "success", outcome.output[-4000:]
    assert pipeline.task_instances(ELTML, outcome.run_id)[DBT_TASK] == ("success", 1)
    assert injected >= 4, f"only {injected} faults were injected: the test proves nothing"
    assert "dbt Cloud API call failed (attempt 1 of 8): 503" in outcome.output
    assert len(pipeline.runs()[known:]) == 1, "retried calls did not trigger a second run"


# --- helpers ----------------------------------------------------------------------------------------
def _wait_until(condition, what: str, process=None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the DAG run ended before {what}:\n{process.stdout.read()[-4000:]}")
        time.sleep(0.3)
    output = ""
    if process is not None:  # what the DAG run was doing is the diagnosis
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate(timeout=30)[0][-6000:]
    raise AssertionError(f"timed out waiting for {what}\n{output}")


def _wait_for_runs(pipeline: Pipeline, known: int, count: int) -> list[dict]:
    _wait_until(lambda: len(pipeline.runs()[known:]) >= count, f"{count} new dbt Cloud run(s)")
    return pipeline.runs()[known:]


def _has_step(run: dict, command: str) -> bool:
    return any(step["name"] == f"Invoke dbt with `{command}`" for step in run["run_steps"])


def _seed_started(pipeline: Pipeline, run_id: int) -> bool:
    """dbt seed has printed its first line: past its hold, still seconds from finishing."""
    run = pipeline.run(run_id)
    return _has_step(run, "dbt seed") and bool(_step(run, "dbt seed")["logs"].strip())


def _run_id_pushed(pipeline: Pipeline, logical_date: dt.datetime, try_number: int = 2) -> bool:
    """The dbt task's try ``try_number`` has chosen its dbt Cloud run (clearing wipes the XCom)."""
    run_id = pipeline.dag_run_id(ELTML, logical_date)
    state = pipeline.task_instances(ELTML, run_id).get(DBT_TASK) if run_id else None
    pushed = (
        state and state[1] == try_number and pipeline.xcom(ELTML, run_id, DBT_TASK, key="dbt_cloud_run_id")
    )
    return bool(pushed)
