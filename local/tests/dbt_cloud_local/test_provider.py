"""
Conformance: the unmodified dbt Cloud provider against the local server, over HTTPS, with real dbt.

Operators run through ``operator.execute(context)`` with a minimal task instance (the provider only
reads ``try_number`` and pushes XComs), which exercises every call they make without a scheduler.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook, DbtCloudJobRunException, DbtCloudJobRunStatus
from airflow.providers.dbt.cloud.operators.dbt import (
    DbtCloudGetJobRunArtifactOperator,
    DbtCloudListJobRunsOperator,
    DbtCloudListJobsOperator,
    DbtCloudRunJobOperator,
)
from airflow.providers.dbt.cloud.sensors.dbt import DbtCloudJobRunSensor
from helpers import run_async_probe, trigger, wait_for_status

from dbt_cloud_local.testing import CONN_ID, LocalDbtCloud, processes_in

pytestmark = pytest.mark.usefixtures("airflow_client_env")


class MinimalTaskInstance:
    """What the operators read from ``context["ti"]``."""

    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def run_operator(operator: Any, try_number: int = 1) -> tuple[Any, MinimalTaskInstance]:
    ti = MinimalTaskInstance(try_number)
    return operator.execute({"ti": ti}), ti


@pytest.fixture
def hook() -> DbtCloudHook:
    return DbtCloudHook(CONN_ID)


def set_env_var(server: LocalDbtCloud, name: str, value: str | None, scope: str = "Production") -> None:
    """Set (or with ``None`` delete) an environment-level variable the dbt Cloud way (v3 bulk API)."""
    with server.client() as client:
        if value is None:
            response = client.put(
                "/api/v3/accounts/1/projects/1/environment-variables/bulk/",
                json={"env_vars": {"name": name, scope: None}},
            )
        else:
            response = client.post(
                "/api/v3/accounts/1/projects/1/environment-variables/bulk/",
                json={"env_var": [{"new_name": name, scope: value}]},
            )
    assert response.status_code == 200, response.text


def test_connection_account_and_name_lookup(hook: DbtCloudHook) -> None:
    assert hook.test_connection() == (True, "Successfully connected to dbt Cloud.")
    assert hook.get_account().json()["data"]["id"] == 1
    job = hook.get_job_by_name(
        project_name="jaffle_shop", environment_name="Production", job_name="Hourly Run"
    )
    assert (job["id"], job["environment_id"], job["project_id"]) == (2, 1, 1)
    assert hook.get_job(job_id=2).json()["data"]["execute_steps"] == ["dbt build --select tag:hourly"]
    assert hook.get_project(project_id=1).json()["data"]["name"] == "jaffle_shop"
    assert hook.get_environment(project_id=1, environment_id=2).json()["data"]["name"] == "Staging"


def test_list_jobs_paginates_over_several_pages(hook: DbtCloudHook) -> None:
    """The server pages by 2 here, so five jobs take three requests of the hook's paginator."""
    responses = hook.list_jobs(order_by="-id")
    assert [len(response.json()["data"]) for response in responses] == [2, 2, 1]
    operator = DbtCloudListJobsOperator(task_id="operator", dbt_cloud_conn_id=CONN_ID, project_id=1)
    assert run_operator(operator)[0] == [1, 2, 3, 4, 5]
    assert [job["id"] for r in hook.list_jobs(environment_id=2) for job in r.json()["data"]] == [4, 5]


def test_trigger_and_wait_then_artifacts_per_step(
    server: LocalDbtCloud, hook: DbtCloudHook, tmp_path: Path
) -> None:
    operator = DbtCloudRunJobOperator(
        task_id="operator",
        dbt_cloud_conn_id=CONN_ID,
        job_name="eltml build",
        project_name="jaffle_shop",
        environment_name="Production",
        trigger_reason="conformance test",
        check_interval=1,
        timeout=300,
    )
    run_id, ti = run_operator(operator)
    assert ti.xcom["job_run_id"] == run_id
    assert ti.xcom["job_run_url"] == f"https://{server.host}/deploy/1/projects/1/runs/{run_id}/"

    run = hook.get_job_run(run_id=run_id, include_related=["run_steps", "trigger", "job"]).json()["data"]
    assert run["status"] == DbtCloudJobRunStatus.SUCCESS.value
    assert run["is_complete"]
    assert run["is_success"]
    assert run["has_docs_generated"]
    assert run["trigger"]["cause"] == "conformance test"
    # dbt Cloud's steps: clone, profile, deps, then the job's commands from step 4, docs last.
    assert [(step["index"], step["name"]) for step in run["run_steps"]] == [
        (1, "Clone git repository"),
        (2, "Create profile from connection DuckDB"),
        (3, "Invoke dbt with `dbt deps`"),
        (4, "Invoke dbt with `dbt seed`"),
        (5, "Invoke dbt with `dbt build --exclude tag:slow`"),
        (6, "Invoke dbt with `dbt docs generate`"),
    ]
    assert "Completed successfully" in run["run_steps"][4]["logs"]

    # Artifacts are per step; the default is the last step (docs generate: catalog.json).
    assert "catalog.json" in hook.list_job_run_artifacts(run_id=run_id).json()["data"]
    seed_results = hook.get_job_run_artifact(run_id=run_id, path="run_results.json", step=4).json()
    assert {result["unique_id"].split(".")[0] for result in seed_results["results"]} == {"seed"}
    build_results = hook.get_job_run_artifact(run_id=run_id, path="run_results.json", step=5).json()
    assert "model.jaffle_shop.customers" in {result["unique_id"] for result in build_results["results"]}
    assert "catalog.json" not in hook.list_job_run_artifacts(run_id=run_id, step=5).json()["data"]

    artifact_operator = DbtCloudGetJobRunArtifactOperator(
        task_id="artifact_operator",
        dbt_cloud_conn_id=CONN_ID,
        run_id=run_id,
        path="manifest.json",
        step=5,
        output_file_name=str(tmp_path / "manifest.json"),
    )
    written, _ = run_operator(artifact_operator)
    manifest = json.loads(Path(written).read_text())
    assert "model.jaffle_shop.orders" in manifest["nodes"]

    sensor = DbtCloudJobRunSensor(task_id="sensor", dbt_cloud_conn_id=CONN_ID, run_id=run_id, poke_interval=1)
    assert sensor.poke({}) is True


def test_failure_logs_failed_step_then_rerun_from_failure(
    server: LocalDbtCloud, hook: DbtCloudHook, capsys: pytest.CaptureFixture[str]
) -> None:
    """DBT_FAIL_MODEL set at environment level fails the run; a retry reruns only what failed."""
    set_env_var(server, "DBT_FAIL_MODEL", "stg_orders")
    operator = DbtCloudRunJobOperator(
        task_id="operator",
        dbt_cloud_conn_id=CONN_ID,
        job_id=2,
        trigger_reason="fail on purpose",
        check_interval=1,
        timeout=300,
        retry_from_failure=True,
    )
    capsys.readouterr()
    with pytest.raises(DbtCloudJobRunException, match="reached terminal status ERROR"):
        run_operator(operator)
    failed_run_id = operator.run_id
    # Airflow 3 logs through structlog to the console, so read the hook's log from the captured output.
    hook_log = "".join(capsys.readouterr())
    assert "dbt Cloud failed step — step 4: Invoke dbt with `dbt build --select tag:hourly`" in hook_log
    assert "DBT_FAIL_MODEL asked model stg_orders to fail" in hook_log
    failed = hook.get_job_run(run_id=failed_run_id, include_related=["run_steps"]).json()["data"]
    assert failed["is_error"]
    assert "model.jaffle_shop.stg_orders" in failed["status_message"]

    # The Airflow retry (try 2) of the same task: the hook sees the error and calls /rerun/.
    set_env_var(server, "DBT_FAIL_MODEL", None)
    retried_run_id, _ = run_operator(operator, try_number=2)
    assert retried_run_id != failed_run_id
    retried = hook.get_job_run(run_id=retried_run_id, include_related=["run_steps", "trigger"]).json()["data"]
    assert retried["status"] == DbtCloudJobRunStatus.SUCCESS.value
    assert retried["retrying_run_id"] == failed_run_id
    assert retried["trigger"]["cause_category"] == "rerun"
    assert [step["name"] for step in retried["run_steps"]] == [
        "Clone git repository",
        "Create profile from connection DuckDB",
        "Invoke dbt with `dbt deps`",
        "Invoke dbt with `dbt retry`",
    ]
    results = hook.get_job_run_artifact(run_id=retried_run_id, path="run_results.json").json()
    rerun_nodes = {result["unique_id"] for result in results["results"]}
    # Only the failed model and what it had skipped; stg_customers and stg_payments had succeeded.
    assert rerun_nodes == {
        "model.jaffle_shop.stg_orders",
        "test.jaffle_shop.not_null_stg_orders_order_id.81cfe2fe64",
    }
    assert results["args"]["select"] == ["tag:hourly"]

    # Nothing failed any more: a third try triggers a normal run (the hook uses /run/).
    assert (
        hook.get_job_runs(payload={"job_definition_id": 2, "order_by": "-id", "limit": 1}).json()["data"][0][
            "id"
        ]
        == retried_run_id
    )


def test_deferrable_path_trigger_and_async_hook(server: LocalDbtCloud) -> None:
    """The triggerer's path (aiohttp + SSL_CERT_FILE) polls until the run ends; the operator resumes."""
    run = trigger(server, 3)
    result = run_async_probe(server, run["id"])
    payload = result["events"][0]
    assert payload == {
        "status": "success",
        "message": f"Job run {run['id']} has completed successfully.",
        "run_id": run["id"],
    }
    assert result["status"] == 10
    assert result["details"]["data"]["job"]["name"] == "Daily Run"
    assert result["details"]["data"]["run_steps"][0]["status_humanized"] == "Success"
    operator = DbtCloudRunJobOperator(task_id="operator", dbt_cloud_conn_id=CONN_ID, job_id=3)
    assert operator.execute_complete({}, payload) == run["id"]


def test_reuse_in_flight_run_then_cancel(server: LocalDbtCloud, hook: DbtCloudHook) -> None:
    """reuse_existing_run attaches to the newest non-terminal run; cancel kills its dbt process."""
    first = trigger(server, 4)
    wait_for_status(server, first["id"], statuses=(3,))
    operator = DbtCloudRunJobOperator(
        task_id="operator",
        dbt_cloud_conn_id=CONN_ID,
        job_id=4,
        trigger_reason="reuse test",
        reuse_existing_run=True,
        wait_for_termination=False,
    )
    reused_id, ti = run_operator(operator)
    assert reused_id == first["id"]
    assert ti.xcom["job_run_url"] == first["href"]

    in_flight = hook.get_job_runs(payload={"job_definition_id": 4, "status__in": "[1, 2, 3]"}).json()["data"]
    assert [run["id"] for run in in_flight] == [first["id"]]
    deadline = time.monotonic() + 30
    while not processes_in(server.data_dir / "runs" / str(first["id"])):
        assert time.monotonic() < deadline, "the dbt process never started"
        time.sleep(0.2)

    hook.cancel_job_run(run_id=first["id"])
    cancelled = wait_for_status(server, first["id"], timeout=30)
    assert cancelled["status"] == 30
    assert cancelled["is_cancelled"]
    assert cancelled["run_steps"][-1]["status"] == 30
    assert processes_in(server.data_dir / "runs" / str(first["id"])) == []
    sensor = DbtCloudJobRunSensor(task_id="sensor", dbt_cloud_conn_id=CONN_ID, run_id=first["id"])
    with pytest.raises(DbtCloudJobRunException, match="has been cancelled"):
        sensor.poke({})


def test_queued_runs_of_one_job_wait_and_can_be_cancelled(server: LocalDbtCloud, hook: DbtCloudHook) -> None:
    """A second run of a busy job stays queued (one at a time per job) and cancels without dbt."""
    first = trigger(server, 4)
    second = trigger(server, 4)
    wait_for_status(server, first["id"], statuses=(3,))
    assert hook.get_job_run_status(run_id=second["id"]) == 1
    hook.cancel_job_run(run_id=second["id"])
    assert hook.get_job_run_status(run_id=second["id"]) == 30
    hook.cancel_job_run(run_id=first["id"])
    assert wait_for_status(server, first["id"], timeout=30)["status"] == 30


def test_list_runs_every_include_related_encoding_and_pagination(
    server: LocalDbtCloud, hook: DbtCloudHook
) -> None:
    responses = hook.list_job_runs(include_related=["run_steps", "job"], order_by="-created_at")
    runs = [run for response in responses for run in response.json()["data"]]
    assert len(responses) > 1
    assert len(runs) == responses[0].json()["extra"]["pagination"]["total_count"]
    assert [run["id"] for run in runs] == sorted((run["id"] for run in runs), reverse=True)
    assert all("run_steps" in run and "job" in run for run in runs)

    with server.client() as client:
        for params in (
            [("include_related", "run_steps"), ("include_related", "job")],
            [("include_related", "run_steps,job")],
            [("include_related", '["run_steps", "job"]')],
        ):
            data = client.get(
                "/api/v2/accounts/1/runs/", params=[*params, ("limit", "1"), ("order_by", "-id")]
            )
            run = data.json()["data"][0]
            assert "run_steps" in run, params
            assert "job" in run, params
        ordered = client.get("/api/v2/accounts/1/runs/", params={"order_by": "id", "limit": 100}).json()[
            "data"
        ]
        assert [run["id"] for run in ordered] == sorted(run["id"] for run in ordered)
        finished = client.get("/api/v2/accounts/1/runs/", params={"status__in": "[10]", "limit": 100}).json()
        assert finished["data"]
        assert all(run["status"] == 10 for run in finished["data"])
        assert client.get("/api/v2/accounts/1/runs/", params={"status__in": "[7]"}).status_code == 400
        assert client.get("/api/v2/accounts/1/runs/", params={"order_by": "secret"}).status_code == 400

    operator = DbtCloudListJobRunsOperator(
        task_id="operator", dbt_cloud_conn_id=CONN_ID, job_id=2, latest_only=True
    )
    latest, _ = run_operator(operator)
    assert latest["job_definition_id"] == 2
    assert latest["status"] == 10
