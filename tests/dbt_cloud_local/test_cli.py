"""The command line: client trust settings and offline environment variable edits."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import certifi
import httpx

from dbt_cloud_local.testing import REPO_ROOT, LocalDbtCloud


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbt_cloud_local", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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
