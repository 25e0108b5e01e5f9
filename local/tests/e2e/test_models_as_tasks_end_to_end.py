"""Every dbt model a task, one dbt Cloud run: dbt_cloud_models_as_tasks end to end.

Real Airflow task execution (``dag.test()`` and the scheduler's loop of run_dag.py), the real provider
against the real HTTPS local dbt Cloud, real dbt Core on DuckDB. The stories:

- one model broken (``DBT_FAIL_MODEL``): its task fails with dbt's error line, what dbt skipped below
  it is ``upstream_failed``, the rest succeeds, and the DAG run made exactly one dbt Cloud run;
- the cause fixed, the failed task cleared with its downstream: one new run whose ``steps_override``
  selects exactly those nodes and their folded tests (checked against the nodes its run_results hold),
  then every task succeeds;
- two failed tasks cleared in one call: still one run, for both;
- the answer to the trigger lost, and the launcher's try lost with its worker: the launcher finds its
  run by its cause and never starts a second one;
- many node triggers on one run in one event loop, as in the triggerer: the requests to dbt Cloud do
  not grow with their number;
- ``make dbt-manifest``'s refresh reads the job's latest *full* successful run, not a partial rerun.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_harness import ERROR, PROJECT_ROOT, RUN_DAG, SUCCESS, Pipeline

from include.dbt_cloud.job_graph import JobGraph, build_job_graph, load_job_graph
from include.dbt_cloud.job_manifest import parse_stored_document

DAG_ID = "dbt_cloud_models_as_tasks"
GROUP = "eltml_build"
LAUNCH, FINALIZE = f"{GROUP}.launch", f"{GROUP}.finalize"
MANIFEST = PROJECT_ROOT / "include" / "dbt_manifests" / "eltml_build.json"
OK = {"success", "pass"}
STG_ORDERS_AND_BELOW = ("stg_orders", "orders", "customers", "customer_features")


@pytest.fixture(scope="module")
def graph() -> JobGraph:
    return load_job_graph(MANIFEST, ("launch", "finalize"))


def _date(day: int) -> dt.datetime:
    return dt.datetime(2025, 8, day, 6, 0)


def _task(name: str, graph: JobGraph) -> str:
    return f"{GROUP}.{graph.node(name).task_id}"


def _states(pipeline: Pipeline, run_id: str) -> dict[str, str]:
    return {task: state for task, (state, _) in pipeline.task_instances(DAG_ID, run_id).items()}


def _new_runs(pipeline: Pipeline, known: int) -> list[dict]:
    return [pipeline.run(run["id"]) for run in pipeline.runs()[known:]]


def _node_step(run: dict) -> int:
    """The run's one step that ran a ``dbt build`` (by name: dbt Cloud's own steps may come first)."""
    (index,) = [
        step["index"] for step in run["run_steps"] if step["name"].startswith("Invoke dbt with `dbt build")
    ]
    return index


def _clear(pipeline: Pipeline, day: int, *task_ids: str) -> list[str]:
    """Clear ``task_ids`` with their downstream in one call, as the UI's Clear does (run_dag.py)."""
    argv = [sys.executable, str(RUN_DAG), DAG_ID, _date(day).isoformat()]
    for task_id in task_ids:
        argv += ["--clear", task_id]
    result = subprocess.run(
        argv, cwd=PROJECT_ROOT, env=pipeline.env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("CLEARED "))
    return json.loads(line.split(" ", 1)[1])


def test_a_broken_model_fails_its_task_then_clearing_it_reruns_exactly_those_nodes(pipeline: Pipeline, graph):
    known = len(pipeline.runs())
    pipeline.set_environment_variable("DBT_FAIL_MODEL", "stg_orders")
    try:
        failed = pipeline.run_dag(_date(1), dag_id=DAG_ID)
    finally:
        pipeline.set_environment_variable("DBT_FAIL_MODEL", None)  # fix the cause

    # (a) the model's task failed, dbt's skips are upstream_failed, everything else succeeded ...
    assert failed.state == "failed", failed.output[-4000:]
    states = _states(pipeline, failed.run_id)
    below = {_task(name, graph) for name in STG_ORDERS_AND_BELOW[1:]}
    assert states[_task("stg_orders", graph)] == "failed"
    assert {task: states[task] for task in below} == dict.fromkeys(below, "upstream_failed")
    assert states["ml_training"] == "upstream_failed"
    others = {task for task in states if task not in below | {_task("stg_orders", graph), "ml_training"}}
    assert {task: states[task] for task in others} == dict.fromkeys(others, "success")
    assert len([task for task in states if task.startswith(f"{GROUP}.")]) == len(graph.nodes) + 2
    # ... with dbt's error line in its log, and node tasks that waited deferred ...
    assert "model jaffle_shop.stg_orders failed in dbt Cloud run " in failed.output
    assert "DBT_FAIL_MODEL asked jaffle_shop.stg_orders to fail (demo failure switch)" in failed.output
    assert failed.output.count("new_state=deferred") == len(graph.nodes) - len(below)
    # ... and exactly one dbt Cloud run, the job as configured, tagged with the launch's cause.
    (first,) = _new_runs(pipeline, known)
    assert first["status"] == ERROR
    assert first["trigger"]["steps_override"] is None
    assert first["trigger"]["cause"].startswith(f"Airflow task {DAG_ID}/{failed.run_id}/{LAUNCH}#c0-")
    assert pipeline.xcom(DAG_ID, failed.run_id, LAUNCH) == first["id"]

    # (b) clear the failed task with its downstream (the launcher and finalize come along) ...
    cleared = _clear(pipeline, 1, _task("stg_orders", graph))
    assert set(cleared) == {LAUNCH, FINALIZE, "ml_training", *(_task(n, graph) for n in STG_ORDERS_AND_BELOW)}
    resumed = pipeline.run_dag(_date(1), "--resume", dag_id=DAG_ID)

    assert resumed.state == "success", resumed.output[-4000:]
    states = pipeline.task_instances(DAG_ID, failed.run_id)
    assert {task: state for task, (state, _) in states.items()} == dict.fromkeys(states, "success")
    # The tasks that had run ran once more; those that were upstream_failed ran for the first time.
    assert {task for task, (_, tries) in states.items() if tries == 2} == {
        LAUNCH,
        FINALIZE,
        _task("stg_orders", graph),
    }
    # ... one new run, whose steps_override selects exactly the cleared nodes and their folded tests.
    (rerun,) = _new_runs(pipeline, known + 1)
    expected = graph.rerun_command(graph.node(name).unique_id for name in STG_ORDERS_AND_BELOW)
    assert rerun["trigger"]["steps_override"] == [str(expected.command)]
    assert rerun["trigger"]["steps_override"] == [
        "dbt build --select fqn:jaffle_shop.staging.stg_orders+ --indirect-selection empty"
    ]
    assert rerun["trigger"]["cause"].startswith(f"Airflow task {DAG_ID}/{failed.run_id}/{LAUNCH}#c1-")
    assert rerun["status"] == SUCCESS
    executed = pipeline.run_results(rerun["id"], _node_step(rerun))
    nodes_and_tests = {uid for name in STG_ORDERS_AND_BELOW for uid in graph.node(name).selected_ids}
    assert set(executed) == nodes_and_tests, "exactly the cleared nodes and their tests, nothing else"
    assert set(executed.values()) <= OK
    assert pipeline.xcom(DAG_ID, failed.run_id, LAUNCH) == rerun["id"]
    assert "Path: trigger a subset. 4 of 15 node tasks were cleared" in resumed.output


def test_clearing_several_failed_tasks_at_once_starts_one_run(pipeline: Pipeline, graph):
    known = len(pipeline.runs())
    pipeline.set_environment_variable("DBT_FAIL_MODEL", "stg_orders,dim_customers.v1")
    try:
        failed = pipeline.run_dag(_date(2), dag_id=DAG_ID)
    finally:
        pipeline.set_environment_variable("DBT_FAIL_MODEL", None)
    assert failed.state == "failed", failed.output[-4000:]
    states = _states(pipeline, failed.run_id)
    assert states[_task("stg_orders", graph)] == "failed"
    assert states[_task("dim_customers.v1", graph)] == "failed"
    assert len(_new_runs(pipeline, known)) == 1

    cleared = _clear(pipeline, 2, _task("stg_orders", graph), _task("dim_customers.v1", graph))
    assert cleared.count(LAUNCH) == 1
    resumed = pipeline.run_dag(_date(2), "--resume", dag_id=DAG_ID)

    assert resumed.state == "success", resumed.output[-4000:]
    (rerun,) = _new_runs(pipeline, known + 1)
    names = (*STG_ORDERS_AND_BELOW, "dim_customers.v1")
    executed = pipeline.run_results(rerun["id"], _node_step(rerun))
    assert set(executed) == {uid for name in names for uid in graph.node(name).selected_ids}
    assert rerun["trigger"]["steps_override"] == [
        str(graph.rerun_command(graph.node(name).unique_id for name in names).command)
    ]


def test_a_lost_answer_to_the_trigger_is_found_by_its_cause_not_repeated(pipeline: Pipeline):
    known = len(pipeline.runs())
    # dbt Cloud starts the run, but the launcher never hears back (a proxy timeout, a reset).
    pipeline.set_faults(
        rules=[{"method": "POST", "path": "/jobs/1/run/$", "status": 502, "times": 1, "after": True}]
    )
    try:
        outcome = pipeline.run_dag(_date(3), dag_id=DAG_ID)
    finally:
        pipeline.set_faults()

    assert outcome.state == "success", outcome.output[-4000:]
    (run,) = _new_runs(pipeline, known)
    assert "dbt Cloud API call failed (attempt 1 of" in outcome.output
    assert "Path: attach. Run" in outcome.output
    assert pipeline.xcom(DAG_ID, outcome.run_id, LAUNCH) == run["id"]


def test_a_launcher_retried_after_its_worker_died_attaches_to_its_run(pipeline: Pipeline, graph):
    known = len(pipeline.runs())
    pipeline.set_faults(step_delay_ms=300_000)  # hold the run in flight
    try:
        worker = pipeline.start_dag(_date(4), dag_id=DAG_ID)
        run_id = _wait_for_new_run(pipeline, known)
        os.killpg(worker.pid, signal.SIGKILL)  # the worker dies right after the launcher triggered
        worker.wait(timeout=30)
        # What the scheduler does with the lost try: the launcher is up for retry (its try number
        # stays; the DAG run's clear_number too: a retry is not a clear); node tasks never ran.
        dag_run_id = pipeline.dag_run_id(DAG_ID, _date(4))
        _lose_tries(dag_run_id, LAUNCH)
    finally:
        pipeline.set_faults()
    retried = pipeline.run_dag(_date(4), "--resume", "--set", f"{LAUNCH}.retry_delay=0", dag_id=DAG_ID)

    assert retried.state == "success", retried.output[-4000:]
    assert [run["id"] for run in _new_runs(pipeline, known)] == [run_id], "no second run"
    assert f"Path: attach. Run {run_id} already carries this launch's cause" in retried.output
    assert pipeline.task_instances(DAG_ID, dag_run_id)[LAUNCH] == ("success", 2)
    assert pipeline.xcom(DAG_ID, dag_run_id, LAUNCH) == run_id


def test_node_triggers_on_one_run_share_one_poller(pipeline: Pipeline, graph):
    """As the triggerer runs them: 60 triggers on one run in one event loop start one poller, whose
    requests (each a real HTTPS request to the local dbt Cloud) are one per interval while the run
    runs, then one for its steps and one per dbt step: what one trigger alone would send. The
    provider's trigger sends one request per task per interval. Each trigger fires with its own
    node's outcome."""
    with pipeline.server.client(timeout=30) as client:
        run = client.post(
            f"/api/v2/accounts/{pipeline.server.account_id}/jobs/1/run/",
            json={"cause": "trigger sharing test", "steps_override": ["dbt seed"]},
        ).json()["data"]
    seeds = [graph.node(name).unique_id for name in ("countries", "payment_methods")]
    code = _SHARED_POLLER_PROBE.format(run_id=run["id"], seeds=json.dumps(seeds))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["states"] == {"success": 60}
    assert report["pollers"] == 1
    polls_at_most = report["elapsed"] / report["interval"] + 2
    assert report["requests"] <= polls_at_most + 1 + report["node_steps"], report
    assert report["requests"] < 60, "fewer requests than tasks: the provider's trigger would send >= 60"


def test_the_refresh_reads_the_latest_full_run_not_a_partial_rerun(pipeline: Pipeline, graph, tmp_path: Path):
    runs = [pipeline.run(run["id"]) for run in pipeline.runs()]
    latest_success = max((run for run in runs if run["status"] == SUCCESS), key=lambda run: run["id"])
    assert latest_success["trigger"]["steps_override"], (
        "the newest success is the shared-poller test's seed run"
    )
    out = tmp_path / "eltml_build.json"
    env = {**pipeline.env, "DBT_API_KEY": pipeline.server.token}
    result = subprocess.run(
        [sys.executable, "-m", "include.dbt_cloud.manifest_refresh", "--job-id", "1", "--account-id", "1",
         "--out", str(out), "--base-url", pipeline.server.base_url],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    refreshed = build_job_graph(
        parse_stored_document(json.loads(out.read_text()), str(out)), ("launch", "finalize")
    )
    full_runs = [run for run in runs if run["status"] == SUCCESS and not run["trigger"]["steps_override"]]
    assert refreshed.stored.source_run_id == max(run["id"] for run in full_runs)
    assert [(n.task_id, n.parents, n.tests) for n in refreshed.nodes] == [
        (n.task_id, n.parents, n.tests) for n in graph.nodes
    ], "the same graph as the committed manifest"
    # CI's check: the committed file still matches what the job runs (exit 0, nothing written).
    check = subprocess.run(
        [sys.executable, "-m", "include.dbt_cloud.manifest_refresh", "--check", "--job-id", "1",
         "--out", str(MANIFEST), "--base-url", pipeline.server.base_url],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "unchanged" in check.stdout
    assert pipeline.server.token not in out.read_text()


def _wait_for_new_run(pipeline: Pipeline, known: int, timeout: float = 180) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = pipeline.runs()[known:]
        if runs:
            return runs[0]["id"]
        time.sleep(0.3)
    raise AssertionError(f"no dbt Cloud run started within {timeout}s")


def _lose_tries(dag_run_id: str, launcher: str) -> None:
    """The scheduler's handling of tasks whose worker died: the running launcher's try failed and it is
    up for retry; tasks that were waiting for it go back to no state. No clear, no clear_number bump."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        for ti in session.query(TaskInstance).filter(
            TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == dag_run_id
        ):
            if ti.task_id == launcher:
                ti.state = TaskInstanceState.UP_FOR_RETRY
                ti.end_date = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
            elif ti.task_id.startswith(f"{GROUP}.") and ti.state not in (None, TaskInstanceState.SUCCESS):
                ti.state = None
        session.commit()


#: Runs in a subprocess with the DAG runs' environment (trust, connection): 60 node triggers for the
#: seeds of one run, in one event loop, as the triggerer runs them.
_SHARED_POLLER_PROBE = """
import asyncio, json, time
from collections import Counter
from include.dbt_cloud import node_trigger
from include.dbt_cloud.hook import HOOK_PARAMS
seeds = {seeds}
async def one(uid):
    trigger = node_trigger.DbtCloudNodeTrigger(conn_id="dbt_cloud", account_id=1, run_id={run_id},
                                               unique_id=uid, poll_interval=1.0, hook_params=HOOK_PARAMS)
    async for event in trigger.run():
        return event.payload
async def many():
    return await asyncio.gather(*(one(seeds[i % 2]) for i in range(60)))
started = time.monotonic()
events = asyncio.run(many())
key = ("dbt_cloud", 1, {run_id})
states = dict(Counter(str(e) if not isinstance(e, dict) else e["state"] for e in events))
print(json.dumps({{"states": states, "requests": node_trigger.REQUESTS[key], "interval": 1.0, "node_steps": 1,
                  "pollers": node_trigger.POLLERS_STARTED[key], "elapsed": time.monotonic() - started}}))
"""
