"""The environment every stack component runs with: the Astro image's settings, without Docker.

One function builds it so that the api-server, scheduler, dag-processor, triggerer, Celery workers and
the local dbt Cloud can never disagree about the database, the shared JWT secret, the CA they trust or
where the DAGs are. The secrets are generated once and kept in ``<state>/secrets.json`` (mode 0600) so
that tokens and encrypted connections survive a restart; they are passed through the environment
only and never printed.

Precedence, lowest first: the caller's environment, then the env file (``.env``, as Astro's
``env_file``), then the stack's own settings. ``AIRFLOW_CONN_DBT_CLOUD`` is the exception: the stack
only supplies the local dbt Cloud one when neither the environment nor ``.env`` sets it, so a real
dbt Cloud account configured in ``.env`` wins (see ``.env.example``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from localdev.airflow_env import data_environment, project_environment
from localdev.metadata_db import MetadataDb
from localdev.stack_settings import StackError, StackSettings

#: Every process the stack starts carries this variable (value: the state folder), and so do their
#: children: ``down`` finds stragglers by it, even those that left their process group.
MEMBER_MARKER = "LOCALDEV_STACK_MEMBER"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def load_or_create_secrets(path: Path) -> dict[str, str]:
    """The JWT secret, API secret key and Fernet key shared by all components, created on first use.

    The name of the state folder's own PostgreSQL database is born with them: the Fernet key and the
    database it encrypts connections in never come apart (a second checkout, or a state folder made
    anew, gets a database of its own instead of one it cannot decrypt).
    """
    wanted = {
        "jwt_secret": lambda: secrets.token_urlsafe(48),
        "api_secret_key": lambda: secrets.token_urlsafe(48),
        "fernet_key": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "postgres_db": lambda: f"airflow_local_{secrets.token_hex(4)}",
    }
    stored: dict[str, str] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StackError(
                f"{path} is unreadable ({exc}). Delete it to generate new secrets (existing encrypted "
                "connections then need re-seeding: `make down && make up` does it)."
            ) from exc
    if all(isinstance(stored.get(key), str) and stored[key] for key in wanted):
        return {key: stored[key] for key in wanted}
    values = {key: stored.get(key) or make() for key, make in wanted.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    tmp.replace(path)
    return values


def read_env_file(path: Path | None) -> dict[str, str]:
    """Parse a docker-compose style env file: KEY=VALUE lines, ``#`` comments, optional quotes."""
    if path is None or not path.exists():
        return {}
    values = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise StackError(f"{path}, line {number}: expected KEY=VALUE (the value is not shown).")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def base_environment(settings: StackSettings) -> dict[str, str]:
    """The caller's environment with the env file applied (before the stack's own settings)."""
    env = dict(os.environ)
    env.update(read_env_file(settings.env_file))
    return env


def component_environment(
    settings: StackSettings, db: MetadataDb, stack_secrets: dict[str, str]
) -> dict[str, str]:
    env = base_environment(settings)
    dbt_cloud = settings.dbt_cloud_access(env)
    if not env.get("AIRFLOW_CONN_DBT_CLOUD"):
        env["AIRFLOW_CONN_DBT_CLOUD"] = dbt_cloud.connection_json()
    # Task data in the state folder unless the caller moved it (include/paths.py reads these).
    env.update(data_environment(settings.data_dir, env))
    env = project_environment(settings.state_dir, env)
    env.update(
        {
            MEMBER_MARKER: str(settings.state_dir),
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW__CORE__EXECUTOR": settings.airflow_executor,
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.api_url}/execution/",
            "AIRFLOW__CORE__FERNET_KEY": stack_secrets["fernet_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": stack_secrets["jwt_secret"],
            "AIRFLOW__API__SECRET_KEY": stack_secrets["api_secret_key"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db.sqlalchemy_url,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.log_server_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.log_server_port + 1),
            # The provider's sync hook (requests) and its triggerer path (aiohttp) each read one of these.
            "REQUESTS_CA_BUNDLE": str(dbt_cloud.ca_bundle),
            "SSL_CERT_FILE": str(dbt_cloud.ca_bundle),
        }
    )
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", None)  # derived from the sync URL
    if settings.executor == "celery":
        env.update(
            {
                "AIRFLOW__CELERY__BROKER_URL": settings.redis_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": db.celery_result_backend,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(settings.celery_concurrency),
            }
        )
    return env
