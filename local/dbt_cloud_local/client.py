"""
What a client needs to reach a local dbt Cloud, asked of the server's own config and data dir.

The token and account come from the config (``DBT_CLOUD_LOCAL_API_TOKEN`` included, read from the
environment the server itself gets), the CA files from the data dir's TLS folder, and the Airflow
connection is built from those. ``localdev``, the tests and the benchmarks ask here instead of
re-encoding any of it, so a change to how the server authenticates or where it keeps its CA reaches
every client at once.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dbt_cloud_local.config.loader import load_config
from dbt_cloud_local.config.settings import env_tokens
from dbt_cloud_local.tls import tls_paths

#: The conn_id tests use; the project's DAGs use ``dbt_cloud`` (include/dbt_cloud/hook.py).
CONN_ID = "dbt_cloud_local"
#: The port the server listens on by default, and the host port every local path publishes it on
#: (``make demo``, ``make up``, ``astro dev start`` through docker-compose.override.yml, the rehearsal).
DEFAULT_PORT = 8443
#: The one variable that moves that host port, on every path.
PORT_ENV = "DBT_CLOUD_LOCAL_PORT"


def host_port(environ: Mapping[str, str] | None = None) -> int:
    """The host port the local dbt Cloud is published on: ``$DBT_CLOUD_LOCAL_PORT``, else 8443."""
    value = (os.environ if environ is None else environ).get(PORT_ENV, "").strip()
    if not value:
        return DEFAULT_PORT
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{PORT_ENV}={value!r} is not a port: set it to a number from 1 to 65535")
    return int(value)


def port_taken_message(port: int, what_runs: str) -> str:
    """The one line a user reads when the local dbt Cloud's host port is in use."""
    return (
        f"port {port} (the local dbt Cloud) is already in use: stop what listens there (`make down` if "
        f"it is a local stack), or pick another port, e.g. {PORT_ENV}={port + 1} {what_runs}"
    )


@dataclass(frozen=True)
class ClientAccess:
    port: int
    account_id: int
    token: str = field(repr=False)
    data_dir: Path

    @property
    def host(self) -> str:
        """The connection host (``localhost:PORT``), as the provider expects it."""
        return f"localhost:{self.port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    @property
    def ca_cert(self) -> Path:
        """The local CA alone: what a client that talks only to this server trusts."""
        return tls_paths(self.data_dir).ca_cert

    @property
    def ca_bundle(self) -> Path:
        """Public CAs plus the local CA: what REQUESTS_CA_BUNDLE/SSL_CERT_FILE point at, so a real dbt
        Cloud account keeps working with them set."""
        return tls_paths(self.data_dir).client_bundle

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def connection_json(self) -> str:
        """An ``AIRFLOW_CONN_…`` value for the provider's ``dbt_cloud`` connection type."""
        return json.dumps(
            {
                "conn_type": "dbt_cloud",
                "host": self.host,
                "login": str(self.account_id),
                "password": self.token,
            }
        )

    def airflow_env(self, conn_id: str = CONN_ID) -> dict[str, str]:
        """CA trust for requests (sync hook) and aiohttp (triggerer), plus the connection."""
        return {
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
            "SSL_CERT_FILE": str(self.ca_bundle),
            f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(),
        }


def client_access(
    data_dir: Path,
    port: int,
    *,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientAccess:
    """How to reach the server that serves ``data_dir`` on ``port`` with the config at ``config_path``.

    ``environ`` is the environment the server runs with (default: this process's); a token there
    replaces the config's, as it does for the server.
    """
    environ = os.environ if environ is None else environ
    config = load_config(config_path)
    from_env = env_tokens(environ)
    token = from_env[0] if from_env else config.api_tokens[0]
    scope = None if from_env else config.token_accounts.get(token)
    account_id = min(scope) if scope else min(config.accounts)
    return ClientAccess(port=port, account_id=account_id, token=token, data_dir=data_dir.resolve())
