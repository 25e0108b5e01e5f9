"""dbt Cloud runs started outside Airflow reach Airflow through signed webhooks.

Real pieces only: the local dbt Cloud (HTTPS, dbt on DuckDB) with a v3 webhook subscription; Airflow's
own api-server (``airflow api-server``) with the project's plugin mounting the receiver at
``/dbt-cloud-webhooks``, its secret in the ``dbt_cloud_webhook`` connection; the session's metadata DB.
The story: a run triggered directly on the local dbt Cloud (no DAG involved) is delivered, signed, to
Airflow, which queues the webhook DAG; running that DAG run records the run's per-model asset events
and queues the DAG scheduled on ``customer_features``. A tampered event is refused with nothing
recorded, and a replayed one records nothing new.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pipeline_harness import PROJECT_ROOT, RUN_DAG

from dbt_cloud_local.testing import LocalDbtCloud, free_port, run_local_dbt_cloud
from dbt_cloud_local.webhooks.sending import sign
from include.assets import CUSTOMER_FEATURES
from include.dbt_cloud.operator import run_tag
from include.dbt_cloud.webhooks import EVENTS_PATH, URL_PREFIX, WEBHOOK_DAG_ID
from localdev.airflow_env import project_environment

CONSUMER = "dbt_cloud_model_consumer"
RECORD_TASK = "record_model_assets"
JOB_ID = 1  # "eltml build", run here with a steps override: only what customer_features needs


@dataclass
class Stack:
    dbt_cloud: LocalDbtCloud
    api_url: str
    secret: str
    env: dict[str, str]

    @property
    def events_url(self) -> str:
        return f"{self.api_url}{URL_PREFIX}{EVENTS_PATH}"


def _airflow(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"api-server exited:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"api-server not healthy in {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path) -> Iterator[Stack]:
    from include.eltml.load import load_raw_tables

    root = tmp_path_factory.mktemp("webhooks")
    # Named like the demo's warehouse, so asset URIs are the demo's (duckdb://jaffle_shop/main/...).
    warehouse = root / "warehouse" / "jaffle_shop.duckdb"
    warehouse.parent.mkdir()
    load_raw_tables(warehouse, n_customers=100)  # what the eltml DAG's load task lands
    paths = {"JAFFLE_SHOP_WAREHOUSE": str(warehouse)}
    with run_local_dbt_cloud(root / "dbt-cloud", env=paths) as dbt_cloud:
        env = {**project_environment(), **paths, **dbt_cloud.client_env("dbt_cloud")}
        port = free_port()
        api_url = f"http://127.0.0.1:{port}"
        with dbt_cloud.client() as client:
            created = client.post(
                f"/api/v3/accounts/{dbt_cloud.account_id}/webhooks/subscriptions",
                json={
                    "name": "Airflow",
                    "client_url": f"{api_url}{URL_PREFIX}{EVENTS_PATH}",
                    "event_types": ["job.run.started", "job.run.completed", "job.run.errored"],
                    "active": True,
                    "job_ids": [JOB_ID],
                },
            )
        assert created.status_code == 201, created.text
        secret = created.json()["data"]["hmac_secret"]
        # The secret goes where the README says: the password of the dbt_cloud_webhook connection.
        server_env = {
            **env,
            "AIRFLOW_CONN_DBT_CLOUD_WEBHOOK": json.dumps({"conn_type": "generic", "password": secret}),
        }
        log = root / "api-server.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
                cwd=PROJECT_ROOT,
                env=server_env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            # Meanwhile, what the dag-processor and a user do: DAGs in the DB, the consumer unpaused.
            _airflow(env, "dags", "reserialize")
            _airflow(env, "dags", "unpause", CONSUMER)
            _wait_until_healthy(api_url, process, log)
            yield Stack(dbt_cloud=dbt_cloud, api_url=api_url, secret=secret, env=env)
        finally:
            os.killpg(process.pid, 15)
            process.wait(timeout=30)
            assert secret not in log.read_text(errors="replace"), "the secret must never be logged"


def _webhook_runs() -> dict[str, dict[str, Any]]:
    """``{dag run id: conf}`` of the webhook DAG's runs in the metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(DagRun).filter(DagRun.dag_id == WEBHOOK_DAG_ID).all()
        return {row.run_id: dict(row.conf or {}) for row in rows}


def _recorded(dag_run_id: str) -> dict[str, str]:
    """``{unique_id: asset uri}`` of the asset events the webhook DAG run recorded."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent, AssetModel.uri)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetEvent.source_dag_id == WEBHOOK_DAG_ID, AssetEvent.source_run_id == dag_run_id)
            .all()
        )
        return {event.extra["unique_id"]: uri for event, uri in rows}


def _consumer_queued() -> int:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == CONSUMER).count()


def _clear_consumer_queue() -> None:
    """What the scheduler does when it creates the consumer's run (another module may have queued it)."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == CONSUMER).delete()


def _wait_for(predicate: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def delivered(stack: Stack) -> Iterator[dict[str, Any]]:
    """A run started on the local dbt Cloud, no Airflow involved, and the DAG run its webhook queued."""
    _clear_consumer_queue()
    before = set(_webhook_runs())
    with stack.dbt_cloud.client() as client:
        response = client.post(
            f"/api/v2/accounts/{stack.dbt_cloud.account_id}/jobs/{JOB_ID}/run/",
            json={
                "cause": "Kicked off from the dbt Cloud UI",
                "steps_override": ["dbt build --select +customer_features"],
            },
        )
    assert response.status_code == 200, response.text
    dbt_run_id = response.json()["data"]["id"]
    new = _wait_for(lambda: set(_webhook_runs()) - before, "the webhook DAG run", timeout=180)
    assert len(new) == 1, new
    dag_run_id = new.pop()
    yield {"dbt_run_id": dbt_run_id, "dag_run_id": dag_run_id, "conf": _webhook_runs()[dag_run_id]}
    _clear_consumer_queue()  # leave the session's scheduler queue as other modules expect it


def test_a_run_started_in_dbt_cloud_triggers_the_webhook_dag_and_the_model_consumer(
    stack: Stack, delivered: dict[str, Any]
) -> None:
    conf = delivered["conf"]
    assert conf["run_id"] == delivered["dbt_run_id"]
    assert (conf["account_id"], conf["job_id"]) == (stack.dbt_cloud.account_id, JOB_ID)
    assert conf["event_id"].startswith("wev_")

    _run_webhook_dag(stack, delivered["dag_run_id"])
    recorded = _recorded(delivered["dag_run_id"])
    assert recorded["model.jaffle_shop.customer_features"] == CUSTOMER_FEATURES.uri
    assert "model.jaffle_shop.stg_orders" in recorded
    assert not any(uid.startswith("test.") for uid in recorded), "tests are not assets"
    assert _consumer_queued() == 1, "the DAG scheduled on customer_features is queued"


def _run_webhook_dag(stack: Stack, dag_run_id: str) -> None:
    result = subprocess.run(
        [sys.executable, str(RUN_DAG), WEBHOOK_DAG_ID, "--run-id", dag_run_id],
        cwd=PROJECT_ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert '"state": "success"' in result.stdout, (result.stdout + result.stderr)[-4000:]


def test_a_run_an_airflow_task_launched_is_left_to_that_task(stack: Stack, delivered: dict[str, Any]) -> None:
    """The eltml DAG records its own runs (record_dbt_model_assets): the webhook adds no second event."""
    _clear_consumer_queue()
    before = set(_webhook_runs())
    cause = run_tag("dbt_cloud_provider_eltml", "manual__2026-01-01", "trigger_dbt_cloud_job_run")
    with stack.dbt_cloud.client() as client:
        response = client.post(
            f"/api/v2/accounts/{stack.dbt_cloud.account_id}/jobs/{JOB_ID}/run/",
            json={"cause": cause, "steps_override": ["dbt build --select +customer_features"]},
        )
    assert response.status_code == 200, response.text
    new = _wait_for(lambda: set(_webhook_runs()) - before, "the webhook DAG run", timeout=180)
    dag_run_id = new.pop()
    _run_webhook_dag(stack, dag_run_id)
    assert _recorded(dag_run_id) == {}
    assert _consumer_queued() == 0


def _signed_completed_event(stack: Stack, run_id: int, event_id: str) -> bytes:
    return json.dumps(
        {
            "accountId": stack.dbt_cloud.account_id,
            "webhooksID": "wsu_test",
            "eventId": event_id,
            "timestamp": "2026-01-01T00:00:00.000000Z",
            "eventType": "job.run.completed",
            "webhookName": "Airflow",
            "data": {"jobId": str(JOB_ID), "runId": str(run_id), "runStartedAt": "2026-01-01T00:00:00Z"},
        }
    ).encode()


def test_a_tampered_event_is_refused_and_records_nothing(stack: Stack) -> None:
    before = _webhook_runs()
    body = _signed_completed_event(stack, 424242, "wev_tampered")
    signature = sign(stack.secret, body)
    tampered = body.replace(b"424242", b"424243")
    for sent, header in ((tampered, signature), (body, None), (body, sign("guessed", body))):
        headers = {"Authorization": header} if header else {}
        response = httpx.post(stack.events_url, content=sent, headers=headers, timeout=30)
        assert response.status_code == 401, response.text
    assert _webhook_runs() == before


def test_a_replayed_event_records_nothing_new(stack: Stack, delivered: dict[str, Any]) -> None:
    """The same delivery twice, and a second event about an already recorded run: one DAG run."""
    body = _signed_completed_event(stack, 515151, "wev_replayed")
    headers = {"Authorization": sign(stack.secret, body)}
    first = httpx.post(stack.events_url, content=body, headers=headers, timeout=30)
    assert (first.status_code, first.json()["status"]) == (200, "triggered")
    runs = _webhook_runs()
    replay = httpx.post(stack.events_url, content=body, headers=headers, timeout=30)
    assert (replay.status_code, replay.json()["status"]) == (200, "duplicate")
    assert _webhook_runs() == runs
    assert runs[first.json()["dag_run_id"]]["event_id"] == "wev_replayed"
    other = _signed_completed_event(stack, 515151, "wev_errored_then_completed")
    again = httpx.post(stack.events_url, content=other, headers={"Authorization": sign(stack.secret, other)})
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert _webhook_runs() == runs
