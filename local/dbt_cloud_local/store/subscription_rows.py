"""
The ``webhook_subscriptions`` table: dbt Cloud's v3 webhook subscriptions (see ``webhooks``), with
the latest delivery's status and time.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from dbt_cloud_local.store.sqlite import Database, utcnow


class SubscriptionRows(Database):
    """Webhook subscriptions; event types and job ids are stored as JSON."""

    def _subscription(self, row: sqlite3.Row | None) -> dict[str, Any] | None:
        if row is None:
            return None
        data = dict(row)
        data["event_types"] = json.loads(data["event_types"])
        data["job_ids"] = json.loads(data["job_ids"])
        data["active"] = bool(data["active"])
        return data

    def create_subscription(self, subscription_id: str, account_id: int, fields: dict[str, Any]) -> None:
        """Insert a subscription; ``fields`` holds name, description, event_types, job_ids,
        client_url, active and hmac_secret."""
        now = utcnow()
        with self._write() as conn:
            conn.execute(
                """INSERT INTO webhook_subscriptions (id, account_id, name, description, event_types,
                       job_ids, client_url, active, hmac_secret, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    subscription_id,
                    account_id,
                    fields["name"],
                    fields.get("description") or "",
                    json.dumps(fields["event_types"]),
                    json.dumps(fields["job_ids"]),
                    fields["client_url"],
                    int(fields["active"]),
                    fields["hmac_secret"],
                    now,
                    now,
                ),
            )

    def get_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM webhook_subscriptions WHERE id = ?", (subscription_id,))
        return self._subscription(row.fetchone())

    def list_subscriptions(self, account_id: int) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT * FROM webhook_subscriptions WHERE account_id = ? ORDER BY created_at, id", (account_id,)
        )
        return [self._subscription(row) for row in rows.fetchall()]  # type: ignore[misc]

    def update_subscription(self, subscription_id: str, **fields: Any) -> bool:
        """Change a subscription's columns (lists are stored as JSON); False if it does not exist."""
        encoded = {
            name: json.dumps(value) if name in ("event_types", "job_ids") else value
            for name, value in fields.items()
        }
        encoded["updated_at"] = utcnow()
        columns = ", ".join(f'"{name}" = ?' for name in encoded)
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE webhook_subscriptions SET {columns} WHERE id = ?",  # noqa: S608
                (*encoded.values(), subscription_id),
            )
            return cursor.rowcount == 1

    def record_dispatch(self, subscription_id: str, http_status_code: int) -> None:
        """Remember the latest delivery's HTTP status (0: no answer) and time, as dbt Cloud shows them."""
        with self._write() as conn:
            conn.execute(
                "UPDATE webhook_subscriptions SET http_status_code = ?, dispatched_at = ? WHERE id = ?",
                (str(http_status_code), utcnow(), subscription_id),
            )

    def delete_subscription(self, subscription_id: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM webhook_subscriptions WHERE id = ?", (subscription_id,))
            return cursor.rowcount == 1
