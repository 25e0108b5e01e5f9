"""
Webhooks, end to end over real HTTP: the local dbt Cloud's v3 subscription routes, and its signed
deliveries to the project's real receiver (``include/dbt_cloud/webhooks.py``, the app the Airflow
plugin mounts), served by uvicorn in this process.

The receiver's Airflow side (the DAG trigger) is replaced by a recorder here, so these tests need no
metadata database; local/tests/e2e/test_webhooks_reach_airflow.py covers the real trigger, replays and
the DAG run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from helpers import cli, trigger, validate_against_spec, wait_for_status, write_config

from dbt_cloud_local.testing import LocalDbtCloud, free_port
from dbt_cloud_local.webhooks.delivery import retry_delays
from dbt_cloud_local.webhooks.sending import sign
from include.dbt_cloud.webhooks import EVENTS_PATH, JobRunEvent, create_app

SUBSCRIPTIONS = "/api/v3/accounts/1/webhooks/subscriptions"
SUBSCRIPTION = "/api/v3/accounts/1/webhooks/subscription"


@dataclass
class Receiver:
    """The real receiver app on a real port; ``secret`` can be changed by a test."""

    url: str
    secret: str = ""
    recorded: list[JobRunEvent] = field(default_factory=list)
    answers: list[tuple[str, int]] = field(default_factory=list)  # (eventId or "?", HTTP status)

    def events_of_run(self, run_id: int) -> list[JobRunEvent]:
        return [event for event in self.recorded if event.run_id == run_id]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"receiver saw only {self.answers}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    port = free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}{EVENTS_PATH}")

    def record(event: JobRunEvent) -> bool:
        state.recorded.append(event)
        return True

    app = create_app(secret=lambda: state.secret, trigger=record)

    @app.middleware("http")
    async def count(request: Any, call_next: Any) -> Any:
        body = await request.body()
        response = await call_next(request)
        try:
            event_id = json.loads(body).get("eventId", "?")
        except ValueError:
            event_id = "?"
        state.answers.append((event_id, response.status_code))
        return response

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield state
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def dbt_cloud(make_server: Callable[..., LocalDbtCloud]) -> LocalDbtCloud:
    """Retries 0.2 s apart instead of dbt Cloud's growing delays, so the retry test takes a second."""
    return make_server("webhooks", env={"DBT_CLOUD_LOCAL_WEBHOOK_RETRY_DELAYS": "0.2"})


def subscribe(server: LocalDbtCloud, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "airflow",
        "client_url": receiver.url,
        "event_types": ["job.run.started", "job.run.completed", "job.run.errored"],
        "active": True,
        **fields,
    }
    with server.client() as client:
        response = client.post(SUBSCRIPTIONS, json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def unsubscribe(server: LocalDbtCloud, subscription_id: str) -> None:
    with server.client() as client:
        client.delete(f"{SUBSCRIPTION}/{subscription_id}").raise_for_status()


def schema(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def test_subscription_routes_follow_dbt_clouds_v3_api(dbt_cloud: LocalDbtCloud) -> None:
    with dbt_cloud.client() as client:
        created = client.post(
            SUBSCRIPTIONS,
            json={
                "name": "crud",
                "client_url": "https://example.invalid/hook",
                "event_types": ["job.run.completed"],
                "active": True,
                "job_ids": [1, 3],
                "description": "spec check",
            },
        )
        assert created.status_code == 201, created.text
        validate_against_spec("v3", schema("CreateSubscriptionResponseEnvelope"), created.json())
        data = created.json()["data"]
        assert data["id"].startswith("wsu_")
        assert len(data["hmac_secret"]) == 64
        assert (data["job_ids"], data["active"], data["http_status_code"]) == ([1, 3], True, "0")

        listed = client.get(SUBSCRIPTIONS)
        validate_against_spec("v3", schema("PaginatedWebhooksSubscriptions"), listed.json())
        assert data["id"] in [item["id"] for item in listed.json()["data"]]
        fetched = client.get(f"{SUBSCRIPTION}/{data['id']}")
        validate_against_spec("v3", schema("SubscriptionResponseEnvelope"), fetched.json())
        assert "hmac_secret" not in fetched.json()["data"], "like dbt Cloud, the secret is shown once"

        updated = client.put(f"{SUBSCRIPTION}/{data['id']}", json={"active": False, "job_ids": []})
        validate_against_spec("v3", schema("UpdateSubscriptionResponseEnvelope"), updated.json())
        assert (updated.json()["data"]["active"], updated.json()["data"]["job_ids"]) == (False, [])
        assert updated.json()["data"]["name"] == "crud"

        deleted = client.delete(f"{SUBSCRIPTION}/{data['id']}/")  # with or without the slash
        validate_against_spec("v3", schema("DeleteSubscriptionResponseEnvelope"), deleted.json())
        assert client.get(f"{SUBSCRIPTION}/{data['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "mention"),
    [
        ({"client_url": "https://x.invalid", "event_types": ["job.run.completed"], "active": True}, "name"),
        (
            {"name": "n", "client_url": "ftp://x", "event_types": ["job.run.completed"], "active": True},
            "http",
        ),
        ({"name": "n", "client_url": "https://x.invalid", "event_types": [], "active": True}, "event_types"),
        (
            {"name": "n", "client_url": "https://x.invalid", "event_types": ["run.done"], "active": True},
            "run.done",
        ),
        ({"name": "n", "client_url": "https://x.invalid", "event_types": ["job.run.completed"]}, "active"),
        (
            {
                "name": "n",
                "client_url": "https://x.invalid",
                "event_types": ["job.run.started"],
                "active": True,
                "job_ids": ["one"],
            },
            "job_ids",
        ),
    ],
)
def test_bad_subscriptions_are_refused_naming_the_field(
    dbt_cloud: LocalDbtCloud, body: dict[str, Any], mention: str
) -> None:
    with dbt_cloud.client() as client:
        before = len(client.get(SUBSCRIPTIONS).json()["data"])
        response = client.post(SUBSCRIPTIONS, json=body)
        assert response.status_code == 400, response.text
        status = response.json()["status"]
        assert mention in f"{status['user_message']} {status['developer_message']}"
        assert len(client.get(SUBSCRIPTIONS).json()["data"]) == before


def test_runs_send_signed_events_the_receiver_verifies(dbt_cloud: LocalDbtCloud, receiver: Receiver) -> None:
    """A good run: started, then completed, each signed with the subscription's secret."""
    subscription = subscribe(dbt_cloud, receiver, job_ids=[5])
    receiver.secret = subscription["hmac_secret"]
    try:
        run = trigger(dbt_cloud, 5, steps_override=["dbt parse"])
        assert wait_for_status(dbt_cloud, run["id"])["status"] == 10
        receiver.wait_for(lambda: len([a for a in receiver.answers if a[1] == 200]) >= 2)
        recorded = receiver.events_of_run(run["id"])
        assert [event.event_type for event in recorded] == ["job.run.completed"]  # started is ignored
        assert (recorded[0].account_id, recorded[0].job_id) == (1, 5)
        assert recorded[0].event_id.startswith("wev_")
        with dbt_cloud.client() as client:
            shown = client.get(f"{SUBSCRIPTION}/{subscription['id']}").json()["data"]
        assert shown["http_status_code"] == "200"
        assert shown["dispatched_at"]
    finally:
        unsubscribe(dbt_cloud, subscription["id"])


def test_payload_matches_dbt_clouds_documented_shape(dbt_cloud: LocalDbtCloud) -> None:
    """Capture a raw delivery (no receiver logic) and check body, header and signature byte for byte."""
    seen: list[tuple[bytes, dict[str, str]]] = []
    port = free_port()

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append((body, {k.decode(): v.decode() for k, v in scope["headers"]}))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    subscription = subscribe(
        dbt_cloud,
        Receiver(url=f"http://127.0.0.1:{port}/raw"),
        event_types=["job.run.errored", "job.run.completed"],
        job_ids=[5],
    )
    try:
        run = trigger(dbt_cloud, 5, steps_override=["dbt run-operation no_such_macro"])
        assert wait_for_status(dbt_cloud, run["id"])["status"] == 20
        deadline = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        unsubscribe(dbt_cloud, subscription["id"])
        server.should_exit = True
        thread.join(timeout=10)
    # Sent errored first, but delivered concurrently (as by dbt Cloud): arrival order is not promised.
    seen.sort(key=lambda delivery: json.loads(delivery[0])["eventType"] != "job.run.errored")
    documents = [json.loads(body) for body, _ in seen]
    assert [doc["eventType"] for doc in documents] == ["job.run.errored", "job.run.completed"]
    for body, headers in seen:
        expected = hmac.new(subscription["hmac_secret"].encode(), body, hashlib.sha256).hexdigest()
        assert headers["authorization"] == expected
        assert headers["content-type"] == "application/json"
    errored = documents[0]
    assert set(errored) == {
        "accountId",
        "webhooksID",
        "eventId",
        "timestamp",
        "eventType",
        "webhookName",
        "data",
    }
    assert (errored["accountId"], errored["webhooksID"], errored["webhookName"]) == (
        1,
        subscription["id"],
        "airflow",
    )
    data = errored["data"]
    assert (data["runId"], data["jobId"], data["jobName"]) == (str(run["id"]), "5", "Staging Seed")
    assert (data["runStatus"], data["runStatusCode"]) == ("Errored", 20)
    assert (data["environmentName"], data["projectName"]) == ("Staging", "jaffle_shop")
    assert data["runErroredAt"].endswith("Z")
    assert data["runStartedAt"].endswith("Z")
    assert documents[1]["data"]["runFinishedAt"].endswith("Z")
    assert documents[0]["eventId"] != documents[1]["eventId"]


def test_wrong_secret_is_refused_and_retried_five_times(dbt_cloud: LocalDbtCloud, receiver: Receiver) -> None:
    """The receiver answers 401 and records nothing; dbt Cloud's rule: up to 5 retries per event."""
    subscription = subscribe(dbt_cloud, receiver, event_types=["job.run.completed"], job_ids=[5])
    receiver.secret = "not-the-subscriptions-secret"
    recorded_before = len(receiver.recorded)
    try:
        run = trigger(dbt_cloud, 5, steps_override=["dbt parse"])
        wait_for_status(dbt_cloud, run["id"])
        refused = lambda: [a for a in receiver.answers if a[1] == 401]  # noqa: E731
        receiver.wait_for(lambda: len(refused()) >= 6)
        # The server's own word that it gave up, rather than a pause: then no seventh attempt came.
        gave_up = f"for run {run['id']} to {receiver.url} was not delivered"
        receiver.wait_for(lambda: gave_up in dbt_cloud.log_tail(400))
        assert len(refused()) == 6
        assert len({event_id for event_id, _ in refused()}) == 1, "retries resend the same event"
        assert len(receiver.recorded) == recorded_before
        with dbt_cloud.client() as client:
            shown = client.get(f"{SUBSCRIPTION}/{subscription['id']}").json()["data"]
        assert shown["http_status_code"] == "401"
    finally:
        unsubscribe(dbt_cloud, subscription["id"])


def test_inactive_and_other_job_subscriptions_get_nothing(
    dbt_cloud: LocalDbtCloud, receiver: Receiver
) -> None:
    inactive = subscribe(dbt_cloud, receiver, active=False)
    other_job = subscribe(dbt_cloud, receiver, job_ids=[2])
    # Created last, so dispatched after the other two: once it has its event, theirs would have gone too.
    control = subscribe(dbt_cloud, receiver, event_types=["job.run.completed"], job_ids=[5])
    try:
        run = trigger(dbt_cloud, 5, steps_override=["dbt parse"])
        wait_for_status(dbt_cloud, run["id"])
        delivered = f"for run {run['id']} to subscription {{}}"
        receiver.wait_for(lambda: delivered.format(control["id"]) in dbt_cloud.log_tail(400))
        log = dbt_cloud.log_tail(400)
        assert delivered.format(inactive["id"]) not in log
        assert delivered.format(other_job["id"]) not in log
    finally:
        for subscription in (inactive, other_job, control):
            unsubscribe(dbt_cloud, subscription["id"])


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        (lambda body, sig: (body, None), 401),  # no signature
        (lambda body, sig: (body.replace(b'"runId": "7"', b'"runId": "8"'), sig), 401),  # body changed
        (lambda body, sig: (body, sig[:-1] + ("0" if sig[-1] != "0" else "1")), 401),  # signature changed
        (lambda body, sig: (body, "sha256=" + sig), 401),  # another provider's header format
        (lambda body, sig: (body, sig), 200),
    ],
)
def test_receiver_verifies_the_signature_over_the_raw_body(
    receiver: Receiver, tamper: Callable[[bytes, str], tuple[bytes, str | None]], status: int
) -> None:
    receiver.secret = "s3cret"
    event = {
        "accountId": 1,
        "eventId": f"wev_tamper{status}",
        "eventType": "job.run.completed",
        "data": {"jobId": "1", "runId": "7", "runStartedAt": "2026-01-01T00:00:00Z"},
    }
    body = json.dumps(event).encode()
    sent_body, header = tamper(body, sign("s3cret", body))
    before = len(receiver.recorded)
    headers = {"Content-Type": "application/json", **({"Authorization": header} if header else {})}
    response = httpx.post(receiver.url, content=sent_body, headers=headers)
    assert response.status_code == status, response.text
    assert len(receiver.recorded) == before + (1 if status == 200 else 0)


def test_receiver_without_a_secret_refuses_everything(receiver: Receiver) -> None:
    receiver.secret = ""
    body = b'{"eventId": "wev_x", "eventType": "job.run.completed"}'
    response = httpx.post(receiver.url, content=body, headers={"Authorization": sign("", body)})
    assert response.status_code == 503
    assert "dbt_cloud_webhook" in response.json()["detail"]


def test_signed_garbage_is_a_400_naming_the_field(receiver: Receiver) -> None:
    receiver.secret = "s3cret"
    body = json.dumps({"eventId": "wev_y", "eventType": "job.run.completed", "data": {"runId": "x"}}).encode()
    response = httpx.post(receiver.url, content=body, headers={"Authorization": sign("s3cret", body)})
    assert response.status_code == 400
    assert "accountId" in response.json()["detail"]


def test_retry_delays_setting_is_checked() -> None:
    assert retry_delays({}) == (2.0, 4.0, 8.0, 16.0, 32.0)
    assert retry_delays({"DBT_CLOUD_LOCAL_WEBHOOK_RETRY_DELAYS": "0.5"}) == (0.5,) * 5
    with pytest.raises(ValueError, match="comma-separated"):
        retry_delays({"DBT_CLOUD_LOCAL_WEBHOOK_RETRY_DELAYS": "soon"})


def test_config_declared_webhook_is_subscribed_at_start_with_its_secret_from_the_environment(
    make_server: Callable[..., LocalDbtCloud], receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("declared")
    declared = {
        "name": "Airflow",
        "client_url": "http://127.0.0.1:9/not-this-one",
        "client_url_env": "TEST_WEBHOOK_URL",
        "hmac_secret_env": "TEST_WEBHOOK_SECRET",
        "event_types": ["job.run.completed"],
        "job_ids": [5],
    }
    unset = {**declared, "name": "No secret", "hmac_secret_env": "TEST_WEBHOOK_SECRET_UNSET"}
    config = write_config(root, webhooks=[declared, unset])
    env = {"TEST_WEBHOOK_URL": receiver.url, "TEST_WEBHOOK_SECRET": "declared-secret"}
    server = make_server("declared", config=config, env=env)
    with server.client() as client:
        listed = client.get(SUBSCRIPTIONS).json()["data"]
    assert [(item["name"], item["client_url"]) for item in listed] == [("Airflow", receiver.url)]
    assert listed[0]["id"].startswith("wsu_cfg_")
    assert "TEST_WEBHOOK_SECRET_UNSET" in server.log_tail(200), "the skipped one says which variable to set"
    assert "declared-secret" not in server.log_tail(200)

    receiver.secret = "declared-secret"
    before = len(receiver.recorded)
    run = trigger(server, 5, steps_override=["dbt parse"])
    wait_for_status(server, run["id"])
    receiver.wait_for(lambda: len(receiver.recorded) > before)
    assert receiver.recorded[-1].run_id == run["id"]


def test_a_bad_webhook_declaration_stops_the_server_naming_the_key(tmp_path) -> None:
    bad = {"name": "x", "client_url": "http://x.invalid", "hmac_secret_env": "S", "event_types": ["job.done"]}
    config = write_config(tmp_path, webhooks=[bad])
    result = cli("serve", "--config", str(config), "--data-dir", str(tmp_path / "data"), "--port", "0")
    assert result.returncode == 2, result.stderr
    assert "webhooks[0].event_types" in result.stderr
