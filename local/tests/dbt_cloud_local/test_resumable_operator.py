"""The dbt task's decisions (include/dbt_cloud/operator.py, rerun.py, hook.py) against a real local dbt Cloud.

The end-to-end suites drive the same code through whole Airflow DAG runs (minutes each); here each path
of ``DbtCloudResumableRunJobOperator`` is taken directly, with the provider's real hook on a real server
and real dbt runs of the tiny project, in seconds:

- trigger, attach and done: one run per task, whatever the number of tries;
- dbt Cloud's run-level retry of the task's own failed run while it is the job's latest;
- the exact ``steps_override`` once the job ran elsewhere in between, planned from the run's artifacts;
- the hook's policy on injected 429/503 answers (``Retry-After`` honoured, a write repeated only after
  a 429), the faults the server injects because they cannot be caused for real.

What the expected nodes are comes from the server's own ``run_results.json``, not from the planner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import run_count, trigger, wait_for_status

from dbt_cloud_local.testing import CONN_ID, LocalDbtCloud
from include.dbt_cloud.hook import DbtCloudApiError, ResilientDbtCloudHook
from include.dbt_cloud.operator import DbtCloudResumableRunJobOperator, run_tag
from include.dbt_cloud.rerun import RerunRequest, plan_rerun

SUCCESS, ERROR = 10, 20
JOB_ID = 2  # the tiny project's "Hourly Run"
STEPS = ["dbt seed", "dbt build --select tag:hourly", "dbt run --select tag:daily"]
#: run_results statuses dbt retry reruns: what a resumed run must build again.
NOT_OK = {"error", "fail", "skipped", "runtime error"}


@pytest.fixture(scope="module")
def srv(make_server: Callable[..., LocalDbtCloud]) -> LocalDbtCloud:
    """A server of its own: these tests fail models and rely on which run is the job's latest."""
    return make_server("resumable_operator")


@pytest.fixture
def operator(srv: LocalDbtCloud, monkeypatch: pytest.MonkeyPatch) -> DbtCloudResumableRunJobOperator:
    for key, value in srv.client_env().items():
        monkeypatch.setenv(key, value)
    return DbtCloudResumableRunJobOperator(
        task_id="dbt",
        dbt_cloud_conn_id=CONN_ID,
        account_id=1,
        job_id=JOB_ID,
        steps_override=STEPS,
        hook_params={"retry_limit": 3, "retry_delay": 0.1},
    )


@pytest.fixture
def failing_model(srv: LocalDbtCloud) -> Iterator[Callable[[str | None], None]]:
    """Set or clear DBT_FAIL_MODEL for the jobs' environment, the way a user breaks and fixes a model."""

    def set_model(model: str | None) -> None:
        path = "/api/v3/accounts/1/projects/1/environment-variables/bulk/"
        with srv.client() as client:
            if model is None:
                response = client.request("DELETE", path, json={"env_var_names": ["DBT_FAIL_MODEL"]})
            else:
                response = client.post(
                    path, json={"env_var": [{"new_name": "DBT_FAIL_MODEL", "Production": model}]}
                )
        assert response.is_success, response.text

    yield set_model
    set_model(None)


def hold_runs(srv: LocalDbtCloud, hold: bool) -> None:
    """Hold every run before its steps (``step_delay_ms``), so a run is surely still in flight."""
    with srv.client() as client:
        response = (
            client.put("/_local/faults", json={"step_delay_ms": 300_000})
            if hold
            else client.delete("/_local/faults")
        )
    response.raise_for_status()


def node_statuses(srv: LocalDbtCloud, run: dict[str, Any], command: str) -> dict[str, str]:
    """``{unique_id: status}`` of the step that ran ``command``, from the server's run_results.json."""
    index = next(step["index"] for step in run["run_steps"] if step["name"] == f"Invoke dbt with `{command}`")
    with srv.client() as client:
        response = client.get(
            f"/api/v2/accounts/1/runs/{run['id']}/artifacts/run_results.json", params={"step": index}
        )
    response.raise_for_status()
    return {result["unique_id"]: result["status"] for result in response.json()["results"]}


def test_one_run_per_task_whatever_the_number_of_tries(srv, operator) -> None:
    tag = run_tag("dag", "manual__1", "dbt")
    before = run_count(srv)
    hold_runs(srv, True)
    try:
        first = operator._attach_or_start(tag, try_number=1)
        assert first["trigger"]["cause"] == tag
        attached = operator._attach_or_start(tag, try_number=2)  # a retry while the run is in flight
        assert attached["id"] == first["id"]
    finally:
        hold_runs(srv, False)
    assert wait_for_status(srv, first["id"])["status"] == SUCCESS
    done = operator._attach_or_start(tag, try_number=3)  # a Clear after success
    assert done["id"] == first["id"]
    assert run_count(srv) == before + 1


def test_the_tasks_own_failed_run_is_retried_by_dbt_cloud_while_it_is_the_latest(
    srv, operator, failing_model
) -> None:
    tag = run_tag("dag", "manual__2", "dbt")
    failing_model("stg_orders")
    failed = wait_for_status(srv, operator._attach_or_start(tag, try_number=1)["id"])
    assert failed["status"] == ERROR
    failing_model(None)

    resumed = operator._attach_or_start(tag, try_number=2)
    assert resumed["retrying_run_id"] == failed["id"]
    resumed = wait_for_status(srv, resumed["id"])
    assert resumed["status"] == SUCCESS
    invoked = [step["name"] for step in resumed["run_steps"] if step["name"].startswith("Invoke dbt with")]
    assert "Invoke dbt with `dbt retry`" in invoked
    assert "Invoke dbt with `dbt seed`" not in invoked, "the steps before the failure do not run again"
    retried = node_statuses(srv, resumed, "dbt retry")
    failed_nodes = {uid for uid, status in node_statuses(srv, failed, STEPS[1]).items() if status in NOT_OK}
    assert set(retried) == failed_nodes, "dbt retry reruns exactly the failed and skipped nodes"

    assert operator._attach_or_start(tag, try_number=3)["id"] == resumed["id"], "a retry is the task's run"


def test_once_the_job_ran_elsewhere_the_run_resumes_with_exact_commands(srv, operator, failing_model) -> None:
    tag = run_tag("dag", "manual__3", "dbt")
    failing_model("stg_orders")
    failed = wait_for_status(srv, operator._attach_or_start(tag, try_number=1)["id"])
    failing_model(None)
    colleague = wait_for_status(srv, trigger(srv, JOB_ID, cause="a colleague")["id"])
    assert colleague["status"] == SUCCESS
    failed_nodes = {uid for uid, status in node_statuses(srv, failed, STEPS[1]).items() if status in NOT_OK}

    # The plan the task takes, read from the failed run's own steps and artifacts.
    plan = plan_rerun(operator.hook, 1, failed["id"], airflow_run_id=tag)
    assert isinstance(plan, RerunRequest)
    assert set(plan.rerun_unique_ids) == failed_nodes
    assert plan.steps_override[0].startswith("dbt build --select ")
    assert "--indirect-selection empty" in plan.steps_override[0]
    assert plan.steps_override[1:] == STEPS[2:], "the steps after the failed one run as they were"

    before = run_count(srv)
    resumed = wait_for_status(srv, operator._attach_or_start(tag, try_number=2)["id"])
    assert resumed["status"] == SUCCESS
    assert resumed["trigger"]["cause"] == tag
    assert resumed["trigger"]["steps_override"] == plan.steps_override
    rebuilt = set(node_statuses(srv, resumed, plan.steps_override[0]))
    assert rebuilt == failed_nodes, "the failed step's failed and skipped nodes, nothing else"
    assert run_count(srv) == before + 1


def test_the_hook_waits_out_retry_after_and_repeats_a_write_only_after_a_429(
    srv: LocalDbtCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read honours ``Retry-After``; a write answered 503 may have happened, so it is not repeated (the
    operator looks its run up first); a 429 comes before anything happens, so that write is repeated."""
    for key, value in srv.client_env().items():
        monkeypatch.setenv(key, value)
    hook = ResilientDbtCloudHook(CONN_ID, retry_limit=3, retry_delay=0.1)
    before = run_count(srv)

    def faults(**settings: Any) -> None:
        with srv.client() as client:
            (
                client.put("/_local/faults", json=settings) if settings else client.delete("/_local/faults")
            ).raise_for_status()

    try:
        faults(rules=[{"method": "GET", "path": "/runs/$", "status": 429, "times": 2}])
        started = time.monotonic()
        assert hook.get_job_runs(account_id=1, payload={"job_definition_id": JOB_ID}).json()["status"][
            "is_success"
        ]
        assert time.monotonic() - started >= 2, "two 429s with Retry-After: 1 (the backoff alone is 0.1 s)"

        faults(rules=[{"method": "POST", "path": f"/jobs/{JOB_ID}/run/$", "status": 503, "times": 1}])
        with pytest.raises(DbtCloudApiError) as error:
            hook.trigger_job_run(account_id=1, job_id=JOB_ID, cause="hook policy")
        assert error.value.status_code == 503
        assert run_count(srv) == before, "the write answered 503 was not repeated"

        faults(rules=[{"method": "POST", "path": f"/jobs/{JOB_ID}/run/$", "status": 429, "times": 1}])
        run = hook.trigger_job_run(account_id=1, job_id=JOB_ID, cause="hook policy").json()["data"]
    finally:
        faults()
    assert run_count(srv) == before + 1, "one run after the 429"
    wait_for_status(srv, run["id"])
