"""
Fault injection, and the provider's retry behaviour it makes visible.

The async path (the triggerer's ``get_job_status``/``get_job_details``) retries 5xx/429 with tenacity.
The sync path does not, although the hook configures the same retry arguments: ``HttpHook.check_response``
turns an HTTP error into ``AirflowException`` before the hook's retry predicate (which only knows
``requests`` and ``aiohttp`` exceptions) sees it. ``test_sync_path_does_not_retry`` pins that defect.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from airflow.providers.common.compat.sdk import AirflowException
from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook
from helpers import run_async_probe, trigger, wait_for_status

from dbt_cloud_local.testing import CONN_ID, LocalDbtCloud

RUN_PATH = r"^/api/v2/accounts/\d+/runs/\d+/$"


@pytest.fixture(scope="module")
def faulty(make_server: Callable[..., LocalDbtCloud]) -> LocalDbtCloud:
    return make_server("faults")


@pytest.fixture(scope="module")
def finished_run(faulty: LocalDbtCloud) -> int:
    """A terminal run obtained without executing dbt: queued, then cancelled."""
    run = trigger(faulty, 5, steps_override=["dbt parse"])
    with faulty.client() as client:
        client.post(f"/api/v2/accounts/1/runs/{run['id']}/cancel/").raise_for_status()
    return wait_for_status(faulty, run["id"], timeout=60)["id"]


def set_faults(server: LocalDbtCloud, settings: dict[str, object]) -> None:
    with server.client() as client:
        response = client.put("/_local/faults", json=settings)
    assert response.status_code == 200, response.text


def injected(server: LocalDbtCloud) -> int:
    with server.client() as client:
        return client.get("/_local/faults").json()["injected"]


def test_async_path_retries_targeted_5xx(faulty: LocalDbtCloud, finished_run: int) -> None:
    set_faults(faulty, {"rules": [{"method": "GET", "path": RUN_PATH, "status": 503, "times": 2}]})
    result = run_async_probe(faulty, finished_run, retry_limit=4)
    assert result["events"][0]["status"] in ("cancelled", "success", "error")
    assert result["events"][0]["run_id"] == finished_run
    assert result["status"] in (10, 20, 30)
    assert injected(faulty) == 2, "both injected 503s were absorbed by the hook's retries"


def test_async_path_retries_a_fraction_of_errors(faulty: LocalDbtCloud, finished_run: int) -> None:
    set_faults(faulty, {"error_rate": 0.3, "error_statuses": [500, 502, 503, 429], "seed": 7})
    result = run_async_probe(faulty, finished_run, retry_limit=8)
    assert result["details"]["data"]["id"] == finished_run
    assert injected(faulty) >= 1
    set_faults(faulty, {})


def test_async_path_gives_up_after_its_retry_limit(faulty: LocalDbtCloud, finished_run: int) -> None:
    """With every request failing, the trigger reports the error instead of hanging."""
    set_faults(faulty, {"rules": [{"path": RUN_PATH, "status": 502}]})
    with pytest.raises(AssertionError, match="502"):
        run_async_probe(faulty, finished_run, retry_limit=2)
    set_faults(faulty, {})


def test_sync_path_does_not_retry(
    faulty: LocalDbtCloud, finished_run: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in faulty.client_env().items():
        monkeypatch.setenv(key, value)
    set_faults(faulty, {"rules": [{"method": "GET", "path": RUN_PATH, "status": 503, "times": 1}]})
    hook = DbtCloudHook(CONN_ID, retry_limit=5, retry_delay=0.1)
    with pytest.raises(AirflowException, match="503"):
        hook.get_job_run_status(run_id=finished_run)
    assert injected(faulty) == 1, "one failure, no retry: the known provider defect"
    assert hook.get_job_run_status(run_id=finished_run) == 30  # the next call goes through


def test_latency_and_runtime_toggle(faulty: LocalDbtCloud) -> None:
    set_faults(faulty, {"latency_ms": 400})
    with faulty.client() as client:
        started = time.monotonic()
        assert client.get("/api/v2/accounts/1/").status_code == 200
        assert time.monotonic() - started >= 0.4
        assert client.get("/_local/health").status_code == 200  # never delayed or failed
        assert client.delete("/_local/faults").json()["data"]["latency_ms"] == 0
        bad = client.put("/_local/faults", json={"rules": [{"path": "(", "status": 503}]})
        assert bad.status_code == 400
        assert "regular expression" in bad.json()["status"]["user_message"]


def test_cli_flags_inject_faults(make_server: Callable[..., LocalDbtCloud]) -> None:
    server = make_server(
        "faults-cli", extra_args=("--fault-error-rate", "1.0", "--fault-error-status", "429")
    )
    response = httpx.get(
        f"{server.base_url}/api/v2/accounts/1/",
        headers={"Authorization": f"Token {server.token}"},
        verify=server.trust,
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"


def test_a_fault_after_the_request_carries_out_the_write_and_loses_the_answer(faulty: LocalDbtCloud) -> None:
    """``after: true``: what a client sees when dbt Cloud made the run but the answer never arrived."""
    set_faults(
        faulty, {"rules": [{"method": "POST", "path": r"/jobs/5/run/$", "status": 503, "after": True}]}
    )
    try:
        with faulty.client() as client:
            before = client.get("/api/v2/accounts/1/runs/", params={"job_definition_id": 5}).json()
            lost = client.post(
                "/api/v2/accounts/1/jobs/5/run/", json={"cause": "answer lost after the write"}
            )
            after = client.get(
                "/api/v2/accounts/1/runs/",
                params={"job_definition_id": 5, "order_by": "-id", "include_related": '["trigger"]'},
            ).json()
    finally:
        set_faults(faulty, {})
    assert lost.status_code == 503
    assert after["extra"]["pagination"]["total_count"] == before["extra"]["pagination"]["total_count"] + 1
    newest = after["data"][0]
    assert newest["trigger"]["cause"] == "answer lost after the write"
    with faulty.client() as client:  # leave no run in flight for the other tests
        client.post(f"/api/v2/accounts/1/runs/{newest['id']}/cancel/")
    wait_for_status(faulty, newest["id"], timeout=60)


def test_after_must_be_a_boolean(faulty: LocalDbtCloud) -> None:
    with faulty.client() as client:
        bad = client.put("/_local/faults", json={"rules": [{"path": "x", "status": 503, "after": "yes"}]})
    assert bad.status_code == 400
    assert "rules[0].after must be true or false" in bad.json()["status"]["user_message"]
