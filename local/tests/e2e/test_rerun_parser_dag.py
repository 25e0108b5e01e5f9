"""The rerun-parser DAG against the local dbt Cloud: a failed run is rerun with exactly its retry set."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pipeline_harness import ERROR, NOT_OK, SUCCESS, Pipeline

from include.dbt_cloud.rerun import RerunRequest, trigger_once
from include.eltml.load import load_raw_tables

DAG_ID = "dbt_cloud_rerun_parser"
#: The job's first command is step 4: dbt Cloud starts every run with its clone, profile and deps steps.
FIRST_COMMAND = 4


@pytest.fixture(scope="module")
def failed_run(pipeline: Pipeline) -> dict:
    """A run of the eltml job that failed in its `dbt build` step (stg_orders broken)."""
    load_raw_tables(pipeline.warehouse)
    pipeline.set_environment_variable("DBT_FAIL_MODEL", "stg_orders")
    try:
        run_id = pipeline.api("POST", "/jobs/1/run/", json={"cause": "rerun-parser test: failing run"})[
            "data"
        ]["id"]
        run = pipeline.wait_until_complete(run_id)
    finally:
        pipeline.set_environment_variable("DBT_FAIL_MODEL", None)
    assert run["status"] == ERROR
    return run


def test_dag_reruns_exactly_the_failed_and_skipped_nodes(pipeline: Pipeline, failed_run: dict):
    build_step = next(s["index"] for s in failed_run["run_steps"] if "dbt build" in s["name"])
    expected = {
        uid for uid, status in pipeline.run_results(failed_run["id"], build_step).items() if status in NOT_OK
    }
    known_runs = len(pipeline.runs())

    outcome = pipeline.run_dag(
        dt.datetime(2025, 9, 1, 6, 0), "--conf", json.dumps({"run_id": failed_run["id"]}), dag_id=DAG_ID
    )

    assert outcome.state == "success", outcome.output[-4000:]
    (rerun,) = pipeline.runs()[known_runs:]
    rerun = pipeline.run(rerun["id"])
    assert rerun["status"] == SUCCESS
    (command,) = rerun["trigger"]["steps_override"]
    assert command.startswith("dbt build --select ")
    assert command.endswith("--indirect-selection empty")
    step = rerun["run_steps"][FIRST_COMMAND - 1]
    assert (step["index"], step["name"]) == (FIRST_COMMAND, f"Invoke dbt with `{command}`")
    assert set(pipeline.run_results(rerun["id"], FIRST_COMMAND)) == expected, "no extra node, no missing node"
    assert "model.jaffle_shop.stg_orders" in outcome.output, "the log lists the nodes it reruns"
    assert pipeline.task_instances(DAG_ID, outcome.run_id)["wait_for_rerun"][0] == "success"


def test_dag_reruns_a_run_that_had_its_own_steps_override(pipeline: Pipeline):
    """A run started with steps_override (e.g. by this DAG) is planned from its own commands."""
    pipeline.set_environment_variable("DBT_FAIL_MODEL", "orders")
    try:
        override = ["dbt build --select stg_orders+"]
        body = {"cause": "rerun-parser test: override run", "steps_override": override}
        failed = pipeline.wait_until_complete(pipeline.api("POST", "/jobs/1/run/", json=body)["data"]["id"])
    finally:
        pipeline.set_environment_variable("DBT_FAIL_MODEL", None)
    assert failed["status"] == ERROR
    failed_results = pipeline.run_results(failed["id"], FIRST_COMMAND)
    expected = {uid for uid, status in failed_results.items() if status in NOT_OK}
    assert "model.jaffle_shop.orders" in expected
    assert "model.jaffle_shop.stg_orders" not in expected, "stg_orders succeeded before orders failed"
    known_runs = len(pipeline.runs())

    outcome = pipeline.run_dag(
        dt.datetime(2025, 9, 3, 6, 0), "--conf", json.dumps({"run_id": failed["id"]}), dag_id=DAG_ID
    )

    assert outcome.state == "success", outcome.output[-4000:]
    (rerun,) = pipeline.runs()[known_runs:]
    assert set(pipeline.run_results(rerun["id"], FIRST_COMMAND)) == expected


def test_dag_skips_with_a_reason_when_the_run_did_not_fail(pipeline: Pipeline, failed_run: dict):
    succeeded = pipeline.runs()[-1]
    assert succeeded["status"] == SUCCESS, "the previous test's rerun succeeded"
    known_runs = len(pipeline.runs())

    outcome = pipeline.run_dag(
        dt.datetime(2025, 9, 2, 6, 0), "--conf", json.dumps({"run_id": succeeded["id"]}), dag_id=DAG_ID
    )

    states = pipeline.task_instances(DAG_ID, outcome.run_id)
    assert states["plan_rerun"][0] == "skipped"
    assert states["trigger_rerun"][0] == "skipped"
    assert f"Nothing to rerun: run {succeeded['id']} did not fail" in outcome.output
    assert len(pipeline.runs()) == known_runs, "nothing was triggered"


def test_retrying_the_trigger_attaches_instead_of_duplicating(pipeline: Pipeline, monkeypatch):
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook

    for name, value in pipeline.server.client_env("dbt_cloud").items():
        monkeypatch.setenv(name, value)
    hook = DbtCloudHook("dbt_cloud")
    request = RerunRequest(
        job_id=2,
        steps_override=["dbt build --select tag:hourly"],
        cause="idempotency test 1",
        rerun_unique_ids=[],
    )
    known_runs = len(pipeline.runs(job_id=2))

    first = trigger_once(hook, 1, request)
    second = trigger_once(hook, 1, request)  # the task retried after the POST had already succeeded

    assert first == second
    assert len(pipeline.runs(job_id=2)) == known_runs + 1
    pipeline.wait_until_complete(first)
