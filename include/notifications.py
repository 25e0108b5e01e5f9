"""Failure alerts by email, off until you add the ``alerts_smtp`` connection.

The guide's FAQ 6: Airflow can tell you when a dbt Cloud job fails (dbt Cloud can too). This wraps
the SMTP provider's notifier so that the DAGs can always carry the callback: with no ``alerts_smtp``
connection it only logs that alerts are off; add the connection (host, port, login, password, and
``{"to": "team@example.com"}`` in extra) and every failed task sends an email, with no code change.
"""

from __future__ import annotations

import html
import logging

from airflow.sdk import BaseHook, BaseNotifier

ALERTS_CONN_ID = "alerts_smtp"
log = logging.getLogger(__name__)


class FailureEmailNotifier(BaseNotifier):
    """Email a task failure through the ``alerts_smtp`` connection, when it exists."""

    def __init__(self, conn_id: str = ALERTS_CONN_ID):
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        try:
            conn = BaseHook.get_connection(self.conn_id)
        except Exception:  # the SDK raises a not-found error whose class moved between releases
            log.info("Failure alerts are off: add the %r connection to turn them on.", self.conn_id)
            return
        recipients = conn.extra_dejson.get("to")
        if not recipients:
            log.warning('Connection %r has no "to" in its extra: no alert sent.', self.conn_id)
            return
        ti = context["ti"]
        subject = f"[Airflow] {ti.dag_id}.{ti.task_id} failed (try {ti.try_number})"
        body = (
            f"<p>Task <b>{ti.task_id}</b> of DAG <b>{ti.dag_id}</b> failed in run {ti.run_id}.</p>"
            f"<p>Error: {html.escape(str(context.get('exception')))}</p>"
        )
        SmtpNotifier(
            to=recipients,
            from_email=conn.extra_dejson.get("from_email"),
            subject=subject,
            html_content=body,
            smtp_conn_id=self.conn_id,
        ).notify(context)
        log.info("Sent failure alert for %s.%s to %s", ti.dag_id, ti.task_id, recipients)
