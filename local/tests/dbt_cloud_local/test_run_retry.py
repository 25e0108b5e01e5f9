"""
dbt Cloud's run-level retry (``POST/GET /api/v2/accounts/{a}/runs/{id}/retry/``) and the run fields
``can_retry``/``retry_not_supported_reason``/``retrying_run_id`` that announce it.

Only a failed run that is its job's most recent run and left run results can be retried; the new run
starts with ``dbt retry`` and reruns only the failed and skipped nodes. Every refusal is a 400 in the
status envelope naming why, and queues nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers import assert_error_envelope, run_count, trigger, wait_for_status

from dbt_cloud_local.testing import LocalDbtCloud

SUCCESS, ERROR, CANCELLED = 10, 20, 30
FAILING_STEPS = ["dbt seed", "dbt build --select tag:hourly", "dbt run --select tag:daily"]


@pytest.fixture(scope="module")
def srv(make_server: Callable[..., LocalDbtCloud]) -> LocalDbtCloud:
    """A server of its own: these tests set DBT_FAIL_MODEL and rely on which run is a job's latest."""
    return make_server("run_retry")


def set_fail_model(server: LocalDbtCloud, model: str | None) -> None:
    """Set (or with ``None`` delete) DBT_FAIL_MODEL for the Production environment (v3 bulk API)."""
    with server.client() as client:
        if model is None:
            response = client.put(
                "/api/v3/accounts/1/projects/1/environment-variables/bulk/",
                json={"env_vars": {"name": "DBT_FAIL_MODEL", "Production": None}},
            )
        else:
            response = client.post(
                "/api/v3/accounts/1/projects/1/environment-variables/bulk/",
                json={"env_var": [{"new_name": "DBT_FAIL_MODEL", "Production": model}]},
            )
    assert response.status_code == 200, response.text


def failed_run(server: LocalDbtCloud) -> dict[str, Any]:
    """A finished run of job 2 whose second command (step 5) failed on stg_orders; its third command
    (step 6) was skipped."""
    set_fail_model(server, "stg_orders")
    try:
        run = wait_for_status(server, trigger(server, 2, steps_override=FAILING_STEPS)["id"])
    finally:
        set_fail_model(server, None)
    assert run["status"] == ERROR, run["status_message"]
    return run


def get_run(server: LocalDbtCloud, run_id: int) -> dict[str, Any]:
    with server.client() as client:
        response = client.get(f"/api/v2/accounts/1/runs/{run_id}/")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def post_retry(server: LocalDbtCloud, run_id: int):
    with server.client() as client:
        return client.post(f"/api/v2/accounts/1/runs/{run_id}/retry/")


def assert_refused(server: LocalDbtCloud, run_id: int, reason: str, *mentions: str) -> None:
    """The run announces it cannot be retried, and a retry is refused with a 400 that queues nothing."""
    run = get_run(server, run_id)
    assert (run["can_retry"], run["retry_not_supported_reason"]) == (False, reason), run
    before = run_count(server)
    body = assert_error_envelope(post_retry(server, run_id), 400, f"Run {run_id}", reason, *mentions)
    assert body["status"]["developer_message"] == reason
    assert run_count(server) == before


def test_retry_resumes_a_failed_latest_run_from_the_failed_step(srv: LocalDbtCloud) -> None:
    failed = failed_run(srv)
    assert (failed["can_retry"], failed["retry_not_supported_reason"]) == (True, None)
    with srv.client() as client:
        details = client.get(f"/api/v2/accounts/1/runs/{failed['id']}/retry/")
    assert details.status_code == 200, details.text
    assert details.json()["data"] == {
        "failed_step": "Invoke dbt with `dbt build --select tag:hourly`",
        "skipped_steps": ["Invoke dbt with `dbt run --select tag:daily`"],
    }

    before = run_count(srv)
    response = post_retry(srv, failed["id"])
    assert response.status_code == 200, response.text
    retry = response.json()["data"]
    assert retry["id"] != failed["id"]
    assert run_count(srv) == before + 1
    assert retry["trigger"]["cause_category"] == "rerun"
    assert f"Retry of run #{failed['id']}" in retry["trigger"]["cause"]
    assert retry["retrying_run_id"] == failed["id"]

    done = wait_for_status(srv, retry["id"])
    assert done["status"] == SUCCESS, done["status_message"]
    assert [(step["index"], step["name"]) for step in done["run_steps"]] == [
        (1, "Clone git repository"),
        (2, "Create profile from connection DuckDB"),
        (3, "Invoke dbt with `dbt deps`"),
        (4, "Invoke dbt with `dbt retry`"),
        (5, "Invoke dbt with `dbt run --select tag:daily`"),
    ]
    with srv.client() as client:
        results = client.get(
            f"/api/v2/accounts/1/runs/{retry['id']}/artifacts/run_results.json", params={"step": 4}
        ).json()
    nodes = {result["unique_id"] for result in results["results"]}
    # Only the failed model and what it had skipped; stg_customers and stg_payments had succeeded.
    assert "model.jaffle_shop.stg_orders" in nodes
    assert not nodes & {"model.jaffle_shop.stg_customers", "model.jaffle_shop.stg_payments"}, nodes

    # The original is no longer its job's latest run: announced, and a second retry is refused.
    assert_refused(
        srv, failed["id"], "RETRY_NOT_LATEST_RUN", "not the most recent run of job 2", f"run {retry['id']} is"
    )


def test_failed_run_that_is_not_the_latest_cannot_be_retried(srv: LocalDbtCloud) -> None:
    older = failed_run(srv)
    newer = failed_run(srv)
    assert_refused(
        srv, older["id"], "RETRY_NOT_LATEST_RUN", "not the most recent run of job 2", f"run {newer['id']} is"
    )
    assert get_run(srv, newer["id"])["can_retry"] is True


def test_successful_run_has_nothing_to_retry(srv: LocalDbtCloud) -> None:
    done = wait_for_status(srv, trigger(srv, 5)["id"])
    assert done["status"] == SUCCESS, done["status_message"]
    assert_refused(srv, done["id"], "RETRY_NOT_FAILED_RUN", "nothing to retry", "succeeded")
    with srv.client() as client:
        details = client.get(f"/api/v2/accounts/1/runs/{done['id']}/retry/")
    assert details.json()["data"] == {"failed_step": None, "skipped_steps": []}


def test_run_in_progress_has_nothing_to_retry_yet(srv: LocalDbtCloud) -> None:
    run = trigger(srv, 4)
    try:
        wait_for_status(srv, run["id"], statuses=(3,))
        assert_refused(srv, run["id"], "RETRY_NOT_FAILED_RUN", "nothing to retry yet", "running")
    finally:
        with srv.client() as client:
            client.post(f"/api/v2/accounts/1/runs/{run['id']}/cancel/")
        wait_for_status(srv, run["id"])


def test_cancelled_run_cannot_be_retried(srv: LocalDbtCloud) -> None:
    run = trigger(srv, 4)
    wait_for_status(srv, run["id"], statuses=(3,))
    with srv.client() as client:
        client.post(f"/api/v2/accounts/1/runs/{run['id']}/cancel/")
    cancelled = wait_for_status(srv, run["id"])
    assert cancelled["status"] == CANCELLED
    assert_refused(srv, run["id"], "RETRY_NOT_FAILED_RUN", "cannot be retried", "cancelled")


def test_run_lists_announce_retryability(srv: LocalDbtCloud) -> None:
    """Every serialization of a run carries the same answer: the list agrees with the single run."""
    with srv.client() as client:
        listed = client.get("/api/v2/accounts/1/runs/", params={"limit": 100}).json()["data"]
    assert listed
    for run in listed:
        single = get_run(srv, run["id"])
        assert (run["can_retry"], run["retry_not_supported_reason"]) == (
            single["can_retry"],
            single["retry_not_supported_reason"],
        )
        assert run["can_retry"] is (run["retry_not_supported_reason"] is None)


def test_unknown_run_is_404(srv: LocalDbtCloud) -> None:
    before = run_count(srv)
    assert_error_envelope(post_retry(srv, 987654), 404, "Run 987654")
    with srv.client() as client:
        assert_error_envelope(client.get("/api/v2/accounts/1/runs/987654/retry/"), 404, "Run 987654")
    assert run_count(srv) == before
