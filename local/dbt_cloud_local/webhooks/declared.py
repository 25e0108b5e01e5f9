"""
The subscriptions config.yml's ``webhooks:`` declares, (re)created at every start with the secret
read from the environment variable each one names (never from the file).
"""

from __future__ import annotations

import hashlib
import logging
import os

from dbt_cloud_local.config.settings import Config
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.webhooks.sending import shown_url

log = logging.getLogger(__name__)


#: Ids of subscriptions declared in the config: stable across restarts, recognisable.
DECLARED_PREFIX = "wsu_cfg_"


def declared_id(account_id: int, name: str) -> str:
    return DECLARED_PREFIX + hashlib.sha256(f"{account_id}/{name}".encode()).hexdigest()[:23]


def seed_declared(config: Config, store: Store, environ: dict[str, str] | None = None) -> list[str]:
    """(Re)create the config's ``webhooks:`` subscriptions; return the ids now subscribed.

    The config wins at every start (an API edit of a declared subscription lasts until the restart);
    a declaration removed from the config is deleted. One whose secret variable is unset is skipped
    with a warning saying which variable to set (nothing is subscribed without a secret).
    """
    env = os.environ if environ is None else environ
    seeded: list[str] = []
    for declared in config.webhooks:
        secret = env.get(declared.hmac_secret_env, "").strip()
        if not secret:
            log.warning(
                "Webhook %r is declared in the config but %s is not set: not subscribed. Fix: set %s to "
                "the secret the receiver checks (Airflow: the password of connection dbt_cloud_webhook).",
                declared.name,
                declared.hmac_secret_env,
                declared.hmac_secret_env,
            )
            continue
        url = (env.get(declared.client_url_env or "", "") or declared.client_url).strip()
        fields = {
            "name": declared.name,
            "description": "Declared in the local dbt Cloud's config",
            "event_types": list(declared.event_types),
            "job_ids": list(declared.job_ids),
            "client_url": url,
            "active": declared.active,
            "hmac_secret": secret,
        }
        subscription_id = declared_id(declared.account_id, declared.name)
        if store.get_subscription(subscription_id) is None:
            store.create_subscription(subscription_id, declared.account_id, fields)
        else:
            store.update_subscription(subscription_id, **{**fields, "active": int(declared.active)})
        log.info(
            "Webhook %r (%s) sends %s to %s",
            declared.name,
            subscription_id,
            ", ".join(declared.event_types),
            shown_url(url),
        )
        seeded.append(subscription_id)
    for account_id in config.accounts:
        for row in store.list_subscriptions(account_id):
            if row["id"].startswith(DECLARED_PREFIX) and row["id"] not in seeded:
                store.delete_subscription(row["id"])
    return seeded
