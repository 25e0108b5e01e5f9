"""
Start the HTTPS server: configuration, TLS material, state, the run manager and uvicorn.

On shutdown (SIGINT/SIGTERM) uvicorn stops accepting requests first; then the run manager terminates
running dbt processes and marks their runs errored, so no dbt process outlives the server. After a
hard kill the next start does the same for whatever the dead server left behind.

The store is a ``store.env_vars.RunEnvStore``: runs never see a reserved environment variable (one
that steers dbt's own paths or behaviour), even one written into the state before the name was
reserved. Webhooks hear of runs through the run manager's ``on_run_change``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import uvicorn

from dbt_cloud_local.api.dependencies import ServerContext
from dbt_cloud_local.app import create_app
from dbt_cloud_local.config.settings import ENV_API_TOKEN, Config
from dbt_cloud_local.faults import FaultInjector, FaultSettings
from dbt_cloud_local.runs.manager import RunManager
from dbt_cloud_local.store import jobs
from dbt_cloud_local.store.env_vars import RunEnvStore, reserved_in_state
from dbt_cloud_local.tls import client_env_lines, ensure_certificates
from dbt_cloud_local.webhooks.delivery import WebhookDispatcher

log = logging.getLogger("dbt_cloud_local")


def state_path(data_dir: Path) -> Path:
    return data_dir / "state.sqlite3"


def banner(config: Config, host: str, port: int, client_bundle: Path) -> str:
    shown_host = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host  # noqa: S104
    names = ", ".join(("localhost", *config.server.extra_hostnames))
    token_source = (
        f"${ENV_API_TOKEN}" if config.api_tokens and _token_from_env() else f"api_tokens in {config.path}"
    )
    lines = [
        f"Local dbt Cloud listening on https://{shown_host}:{port} (certificate names: {names})",
        f"Airflow connection: conn_type=dbt_cloud host={shown_host}:{port} login=<account id> "
        f"password=<API token from {token_source}>",
        "Clients must trust the local CA (requests: sync hook; aiohttp: triggerer):",
        *(f"  {line}" for line in client_env_lines(client_bundle)),
        f"Runs: https://{shown_host}:{port}/deploy/",
    ]
    return "\n".join(lines)


def warn_about_reserved_variables(config: Config, store: RunEnvStore) -> None:
    """Say which stored variables runs ignore (written before their names were reserved)."""
    for project_id, name in reserved_in_state(config, store):
        log.warning(
            "Project %s holds environment variable %s, which runs ignore because it steers dbt itself; "
            "remove it with: python -m dbt_cloud_local env-var unset %s --project %s",
            project_id,
            name,
            name,
            project_id,
        )


def _token_from_env() -> bool:
    return bool(os.environ.get(ENV_API_TOKEN, "").strip())


def serve(
    config: Config,
    data_dir: Path,
    *,
    host: str,
    port: int,
    faults: FaultSettings,
    log_level: str = "info",
    access_log: bool = False,
    public_url: str | None = None,
) -> None:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    tls = ensure_certificates(data_dir, config.server.extra_hostnames)
    store = RunEnvStore(state_path(data_dir))
    config = jobs.attach(config, store)  # jobs now live in the store: declared ones seeded, API ones kept
    warn_about_reserved_variables(config, store)
    injector = FaultInjector(faults)
    webhooks = WebhookDispatcher(config, store)
    runner = RunManager(config, store, data_dir, faults=injector, on_run_change=webhooks.run_changed)
    webhooks.start()  # declared subscriptions are in place before a run can start
    runner.start()
    app = create_app(
        ServerContext(config=config, store=store, runner=runner, data_dir=data_dir, public_url=public_url),
        injector,
    )
    print(banner(config, host, port, tls.client_bundle), file=sys.stderr, flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=str(tls.server_cert),
            ssl_keyfile=str(tls.server_key),
            log_level=log_level,
            access_log=access_log,
            timeout_graceful_shutdown=5,
        )
    )
    try:
        server.run()
    finally:
        log.info("Stopping: terminating running dbt processes")
        runner.stop()
        webhooks.stop()
        store.close()
