"""The command line: client trust settings and offline environment variable edits."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import httpx
from helpers import cli, trigger

from dbt_cloud_local.testing import LocalDbtCloud, free_port


def test_env_prints_the_two_exports(server: LocalDbtCloud) -> None:
    result = cli("env", "--data-dir", str(server.data_dir), "--config", str(server.config_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"export REQUESTS_CA_BUNDLE={server.client_bundle}",
        f"export SSL_CERT_FILE={server.client_bundle}",
    ]


def test_client_bundle_trusts_the_local_server_and_the_public_cas(server: LocalDbtCloud) -> None:
    """Clients keep reaching real dbt Cloud (public CAs) while they trust the local server."""
    bundle = server.client_bundle.read_text()
    assert server.ca_path.read_text().strip() in bundle
    assert Path(certifi.where()).read_text().strip() in bundle
    trust = ssl.create_default_context(cafile=str(server.client_bundle))
    assert httpx.get(f"{server.base_url}/_local/health", verify=trust).status_code == 200


def test_env_var_set_and_unset_offline_are_seen_by_the_api(server: LocalDbtCloud) -> None:
    common = ("--data-dir", str(server.data_dir), "--config", str(server.config_path))
    result = cli("env-var", "set", "DBT_CLI_CHECK", "stg_orders", "--environment", "Staging", *common)
    assert result.returncode == 0, result.stderr
    url = "/api/v3/accounts/1/projects/1/environment-variables/environment/"
    with server.client() as client:
        variables = client.get(url).json()["data"]["variables"]
        assert variables["DBT_CLI_CHECK"]["Staging"]["value"] == "stg_orders"
        assert cli("env-var", "unset", "DBT_CLI_CHECK", *common).returncode == 0
        assert "DBT_CLI_CHECK" not in client.get(url).json()["data"]["variables"]


def test_invalid_input_is_reported_clearly(server: LocalDbtCloud, tmp_path) -> None:
    common = ("--data-dir", str(server.data_dir), "--config", str(server.config_path))
    bad_name = cli("env-var", "set", "PATH", "/tmp", *common)
    assert bad_name.returncode == 2
    assert "start it with DBT_" in bad_name.stderr
    bad_env = cli("env-var", "set", "DBT_X", "1", "--environment", "Nope", *common)
    assert bad_env.returncode == 2
    assert "unknown environment 'Nope'" in bad_env.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("accounts: []\n")
    result = cli("serve", "--config", str(broken), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2
    assert "config key `accounts`" in result.stderr


def test_public_url_is_where_run_links_point_whatever_name_the_client_used(make_server) -> None:
    """In containers Airflow calls dbt-cloud-local:8443 while a person opens links on localhost."""
    server = make_server("public-url", extra_args=("--public-url", "https://localhost:18443/"))
    run = trigger(server, 1)
    assert run["href"] == f"https://localhost:18443/deploy/1/projects/1/runs/{run['id']}/"
    with server.client() as client:
        listed = client.get("/api/v2/accounts/1/runs/", params={"job_definition_id": 1}).json()["data"]
    assert {item["href"] for item in listed} == {
        f"https://localhost:18443/deploy/1/projects/1/runs/{item['id']}/" for item in listed
    }


def test_a_public_url_with_a_path_is_refused_with_an_example(tmp_path) -> None:
    result = cli("serve", "--public-url", "localhost:8443/deploy", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "give scheme and host only, e.g. https://localhost:8443" in result.stderr


def test_health_answers_zero_for_a_running_server_and_one_otherwise(server: LocalDbtCloud, tmp_path) -> None:
    healthy = cli("health", "--port", str(server.port), "--data-dir", str(server.data_dir))
    assert healthy.returncode == 0, healthy.stderr
    assert "HTTP 200" in healthy.stdout
    down = cli("health", "--port", str(free_port()), "--data-dir", str(server.data_dir))
    assert down.returncode == 1
    no_ca = cli("health", "--port", str(server.port), "--data-dir", str(tmp_path))
    assert no_ca.returncode == 1
