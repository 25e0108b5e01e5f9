"""Failure alerts end to end: a real dbt Cloud run fails, and an email reaches a real SMTP server.

The eltml DAG carries ``FailureEmailNotifier`` (``include/notifications.py``) as every task's
``on_failure_callback``. In Airflow 3.3.2, ``dag.test()`` runs each task through the Task SDK's task
runner in-process (``run_task_in_process``), and the task runner's ``finalize()`` calls the task's
``on_failure_callback`` when the try ends in ``failed``, as it does on a worker. So these DAG runs
exercise the same callback path as production: the deferred dbt task resumes, ``execute_complete``
raises on the failed dbt Cloud run, and the notifier sends the email through the ``alerts_smtp``
connection, here an aiosmtpd server on loopback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from pipeline_harness import DBT_TASK, ELTML, ERROR, Pipeline

from dbt_cloud_local.testing import free_port

ALERTS_TO = "data-team@example.com"
ALERTS_FROM = "airflow@example.com"
NO_RETRIES = ("--set", f"{DBT_TASK}.retries=0", "--set", f"{DBT_TASK}.check_interval=2")


def _date(day: int) -> dt.datetime:
    return dt.datetime(2025, 8, day, 6, 0)


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts, with its SMTP envelope."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclasses.dataclass
class SmtpServer:
    port: int
    inbox: Inbox

    def connection_json(self) -> str:
        """An Airflow SMTP connection to this server: plain SMTP, no STARTTLS, no login."""
        extra = {"to": ALERTS_TO, "from_email": ALERTS_FROM, "disable_tls": True, "disable_ssl": True}
        extra |= {"timeout": 10, "retry_limit": 0}
        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.port, "extra": extra})


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer(port=controller.port, inbox=inbox)
    finally:
        controller.stop()


def _with_env(pipeline: Pipeline, **changes: str | None) -> Pipeline:
    """The same pipeline, its DAG runs started with some environment variables set or removed."""
    env = {key: value for key, value in pipeline.env.items() if key not in changes}
    env |= {key: value for key, value in changes.items() if value is not None}
    return dataclasses.replace(pipeline, env=env)


def _run_with_failing_model(pipeline: Pipeline, logical_date: dt.datetime):
    first_new_run = len(pipeline.runs())
    pipeline.set_environment_variable("DBT_FAIL_MODEL", "stg_orders")
    try:
        outcome = pipeline.run_dag(logical_date, *NO_RETRIES)
    finally:
        pipeline.set_environment_variable("DBT_FAIL_MODEL", None)
    return outcome, pipeline.runs()[first_new_run:]


def test_failed_dbt_task_emails_the_team(pipeline: Pipeline, smtp_server: SmtpServer):
    alerting = _with_env(pipeline, AIRFLOW_CONN_ALERTS_SMTP=smtp_server.connection_json())

    outcome, dbt_runs = _run_with_failing_model(alerting, _date(1))

    assert outcome.state == "failed", outcome.output[-4000:]
    states = pipeline.task_instances(ELTML, outcome.run_id)
    assert states[DBT_TASK] == ("failed", 1), "one try, no retries"
    assert [run["status"] for run in dbt_runs] == [ERROR], "the dbt Cloud run really failed"
    assert "DBT_FAIL_MODEL asked jaffle_shop.stg_orders to fail" in outcome.output

    assert len(smtp_server.inbox.messages) == 1, "one failed task, one email"
    mail_from, rcpt_tos, message = smtp_server.inbox.messages[0]
    assert mail_from == ALERTS_FROM
    assert rcpt_tos == [ALERTS_TO]
    assert message["To"] == ALERTS_TO
    assert message["Subject"] == f"[Airflow] {ELTML}.{DBT_TASK} failed (try 1)"
    body = message.get_body(preferencelist=("html",)).get_content()
    assert f"<b>{DBT_TASK}</b>" in body
    assert f"<b>{ELTML}</b>" in body
    assert outcome.run_id in body
    assert f"Job run {dbt_runs[0]['id']} has failed" in body, "the error names the dbt Cloud run"
    assert f"Sent failure alert for {ELTML}.{DBT_TASK} to {ALERTS_TO}" in outcome.output


def test_without_an_alerts_connection_a_failure_only_logs_that_alerts_are_off(
    pipeline: Pipeline, smtp_server: SmtpServer
):
    # No alerts_smtp connection. The default SMTP connection points at the inbox, so an alert that
    # fell back to it (instead of staying off) would be caught.
    silent = _with_env(
        pipeline,
        AIRFLOW_CONN_ALERTS_SMTP=None,
        AIRFLOW_CONN_SMTP_DEFAULT=smtp_server.connection_json(),
    )

    outcome, dbt_runs = _run_with_failing_model(silent, _date(2))

    assert outcome.state == "failed", outcome.output[-4000:]
    assert pipeline.task_instances(ELTML, outcome.run_id)[DBT_TASK] == ("failed", 1)
    assert [run["status"] for run in dbt_runs] == [ERROR]
    assert outcome.output.count("Failure alerts are off") == 1, outcome.output[-4000:]
    assert "add the 'alerts_smtp' connection to turn them on" in outcome.output
    assert "Sent failure alert" not in outcome.output
    assert "Failed to run task callback" not in outcome.output
    assert smtp_server.inbox.messages == []
