"""
Fixtures: a real local dbt Cloud server (HTTPS subprocess) running real dbt on a tiny DuckDB project.

One server is shared by the whole package (``server``); tests that kill or reconfigure a server start
their own with ``make_server``. Clients reach it exactly like Airflow does: the connection comes from
``AIRFLOW_CONN_DBT_CLOUD_LOCAL`` and the CA from ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_cloud_local.config.settings import ENV_API_TOKEN
from dbt_cloud_local.testing import LocalDbtCloud, start_local_dbt_cloud

sys.path.insert(0, str(Path(__file__).parent))
from helpers import TOKEN, write_config


@pytest.fixture(scope="session")
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalDbtCloud]]:
    """Start extra servers (own data dir and config); all are stopped at the end of the session."""
    started: list[LocalDbtCloud] = []

    def make(
        name: str,
        *,
        config: Path | None = None,
        data_dir: Path | None = None,
        token: str | None = TOKEN,
        **kwargs: Any,
    ) -> LocalDbtCloud:
        """``token=None`` serves the config's own ``api_tokens`` (TOKEN replaces them otherwise)."""
        root = tmp_path_factory.mktemp(name)
        config = config or write_config(root)
        if token is None:
            kwargs["env"] = {ENV_API_TOKEN: "", **kwargs.get("env", {})}
        server = start_local_dbt_cloud(data_dir or root / "data", config=config, token=token, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(make_server: Callable[..., LocalDbtCloud]) -> LocalDbtCloud:
    return make_server("shared")


@pytest.fixture
def airflow_client_env(server: LocalDbtCloud, monkeypatch: pytest.MonkeyPatch) -> LocalDbtCloud:
    """Point Airflow's dbt Cloud connection and CA trust at the shared server."""
    for key, value in server.client_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    return server


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback traffic must never go through a proxy configured on the machine."""
    for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
