"""`make up` / `make down` / `make up-celery`: the full local Airflow stack, real processes, no mocks.

Each test runs its own stack (see localdev/testing.py), so a developer's `make up` on :8080 is never
touched, and always stops it, even when an assertion fails.
"""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.testing import IsolatedStack, postgres_reachable

DAG_ID = "dbt_cloud_provider_eltml"
ELTML_TASKS = {"extract", "load", "trigger_dbt_cloud_job_run", "ml_training", "record_dbt_model_assets"}


def _ok(result, what: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{what} failed (exit {result.returncode}):\n{output[-4000:]}"
    return output


def _assert_nothing_left(stack: IsolatedStack) -> None:
    deadline = time.monotonic() + 5  # the kernel may need a moment to release a closing socket
    while True:
        leftovers, ports = stack.leftovers(), stack.listening_ports()
        if (not leftovers and not ports) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not leftovers, "processes left behind after make down:\n" + "\n".join(leftovers)
    assert not ports, f"ports still listening after make down: {ports}"


@pytest.fixture
def stack(tmp_path) -> Iterator[IsolatedStack]:
    stack = IsolatedStack(tmp_path)
    try:
        yield stack
    finally:
        stack.make("down", timeout=120)
        stack.drop_database()


@pytest.fixture
def celery_stack(tmp_path) -> Iterator[IsolatedStack]:
    try:
        import redis
    except ImportError:
        pytest.fail("make up-celery needs celery[redis] and apache-airflow-providers-celery in .venv")
    # An empty Redis database of our own, so no other stack's worker can take our tasks (or we theirs).
    redis_db = next(
        (db for db in range(15, 7, -1) if redis.Redis(host="127.0.0.1", port=6379, db=db).dbsize() == 0), None
    )
    assert redis_db is not None, "no empty Redis database among 8-15 on 127.0.0.1:6379 for the test stack"
    # Only the manual run under test: unpausing must not add the @daily run of the latest interval.
    stack = IsolatedStack(
        tmp_path, redis_db=redis_db, extra_env={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
    )
    try:
        yield stack
    finally:
        stack.make("down", timeout=120)
        stack.drop_database()
        redis.Redis(host="127.0.0.1", port=6379, db=redis_db).flushdb()


@pytest.mark.timeout(300)
def test_up_then_down_leaves_no_process_and_no_port(stack):
    output = _ok(stack.make("up", timeout=240), "make up")
    assert f"Airflow UI      {stack.api_url}" in output
    assert "no login" in output

    records = {record["name"]: record for record in stack.records()}
    assert set(records) == {"api-server", "scheduler", "dag-processor", "triggerer", "dbt-cloud-local"}
    health = stack.api("GET", "/api/v2/monitor/health")
    for section in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[section]["status"] == "healthy", health
    assert "<html" in stack.api("GET", "/").lower()  # the UI, without logging in

    # Every component got the settings the Astro image would give it.
    secrets = json.loads((stack.state_dir / "secrets.json").read_text())
    assert stat.S_IMODE((stack.state_dir / "secrets.json").stat().st_mode) == 0o600
    ca_file = str(stack.state_dir / "dbt-cloud-local" / "tls" / "ca-bundle.pem")
    # The api-server renames itself with setproctitle, which hides its environment from /proc; it is
    # checked by behaviour instead (it answers, and serves tokens the others accept).
    for name, record in records.items():
        if name == "api-server":
            continue
        environ = dict(
            entry.split("=", 1)
            for entry in Path(f"/proc/{record['pid']}/environ").read_text().split("\0")
            if "=" in entry
        )
        assert environ["REQUESTS_CA_BUNDLE"] == ca_file == environ["SSL_CERT_FILE"], name
        assert environ["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True", name
        assert environ["AIRFLOW__API_AUTH__JWT_SECRET"] == secrets["jwt_secret"], name
        assert environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{stack.api_url}/execution/", name
        assert (
            json.loads(environ["AIRFLOW_CONN_DBT_CLOUD"])["host"] == f"localhost:{stack.ports['dbt_cloud']}"
        )
        # Postgres (a database of the test's own) when one answers, else SQLite in the state folder.
        expected_db = f"/{stack.database}" if "PostgreSQL" in output else str(stack.state_dir)
        assert expected_db in environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name

    # Secrets never reach a log or the console.
    logs = "".join(
        path.read_text(errors="replace") for path in (stack.state_dir / "logs" / "stack").glob("*.log")
    )
    for value in secrets.values():
        assert value not in logs
        assert value not in output

    assert "already running" in _ok(stack.make("up", timeout=60), "second make up")
    assert stack.make("status", timeout=60).returncode == 0

    assert stack.snapshot_tree() > len(records)  # e.g. the LocalExecutor's workers, log servers
    down = _ok(stack.make("down", timeout=120), "make down")
    assert "ports are free" in down
    _assert_nothing_left(stack)
    assert "Nothing is running" in _ok(stack.make("down", timeout=60), "second make down")
    stopped = stack.make("status", timeout=60)
    assert stopped.returncode != 0  # python -m localdev.stack status exits 3 (make reports it as 2)
    assert "Not running" in stopped.stdout


@pytest.mark.timeout(60)
def test_up_refuses_a_taken_port_and_names_the_process(stack):
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", stack.ports["api"]))
        squatter.listen()
        result = stack.make("up", timeout=60)
    message = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"port {stack.ports['api']} (api-server (UI)) is in use by pid " in message
    assert "LOCALDEV_API_PORT" in message
    assert not stack.records()
    _assert_nothing_left(stack)


@pytest.mark.timeout(480)
def test_eltml_dag_succeeds_on_celery_executor(celery_stack):
    stack = celery_stack
    output = _ok(stack.make("up-celery", timeout=240), "make up-celery")
    assert "CeleryExecutor" in output
    records = {record["name"] for record in stack.records()}
    assert {"celery-worker-1", "celery-worker-2"} <= records

    token = stack.token()
    stack.api("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False}, token)
    run = stack.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None}, token)
    run_id = run["dag_run_id"]

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", token=token)["state"]
        if state in ("success", "failed"):
            break
        time.sleep(5)
    instances = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", token=token)
    states = {ti["task_id"]: ti["state"] for ti in instances["task_instances"]}
    if state != "success" or any(value != "success" for value in states.values()):
        details = []
        for ti in instances["task_instances"]:
            if ti["state"] != "success" and ti["try_number"]:
                log = stack.api(
                    "GET",
                    f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}",
                    token=token,
                )
                events = [
                    str(line.get("event", ""))
                    for line in (log.get("content") or [])
                    if isinstance(line, dict)
                ]
                details.append(f"--- {ti['task_id']} (try {ti['try_number']}):\n" + "\n".join(events[-15:]))
        pytest.fail(f"DAG run {run_id} ended {state!r}; task states {states}\n" + "\n".join(details))
    assert set(states) == ELTML_TASKS

    # The tasks ran on the Celery workers, not in the scheduler.
    received = sum(
        (stack.state_dir / "logs" / "stack" / f"celery-worker-{n}.log").read_text().count("] received")
        for n in (1, 2)
    )
    assert received >= len(ELTML_TASKS), f"only {received} task messages reached the Celery workers"

    stack.snapshot_tree()
    _ok(stack.make("down", timeout=120), "make down")
    _assert_nothing_left(stack)


@pytest.mark.timeout(900)
def test_two_state_homes_share_one_postgres_without_sharing_a_database(tmp_path):
    """Two checkouts (or a state folder made anew) on one PostgreSQL both come up, one after the other:
    each state folder owns its database, so none reads connections encrypted with another Fernet key.
    A database that does belong to another folder is refused with one line, and its fix works."""
    assert postgres_reachable(), "this test needs the PostgreSQL on 127.0.0.1:5432 (`make up` uses it)"
    first = IsolatedStack(tmp_path / "first", own_database=True)
    second = IsolatedStack(tmp_path / "second", own_database=True)
    borrower = IsolatedStack(tmp_path / "third")
    try:
        _ok(first.make("up", timeout=240), "make up (first state folder)")
        _ok(first.make("down", timeout=120), "make down (first)")
        _ok(second.make("up", timeout=240), "make up (second state folder, same PostgreSQL)")
        _ok(second.make("down", timeout=120), "make down (second)")
        assert first.database_name() != second.database_name()

        # A third folder pointed at the first one's database cannot decrypt its connections.
        borrower.database = first.database_name()
        borrower.env["LOCALDEV_POSTGRES_DB"] = borrower.database
        refused = borrower.make("up", timeout=240)
        message = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert refused.returncode != 0
        assert len(message) == 1, refused.stderr[-3000:]
        assert "encrypted with another Fernet key" in message[0]
        fix = f"python -m localdev.stack clean --state-dir {borrower.state_dir}"
        assert fix in message[0]

        cleaned = subprocess.run(
            [sys.executable, *fix.split()[1:]], env=borrower.env, capture_output=True, text=True, check=False
        )
        assert cleaned.returncode == 0, cleaned.stderr
        assert f"Dropped PostgreSQL database {borrower.database}" in cleaned.stdout
        _ok(borrower.make("up", timeout=240), "make up after the fix")
    finally:
        for stack in (first, second, borrower):
            stack.make("down", timeout=120)
            stack.drop_database()
