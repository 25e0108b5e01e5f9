"""One owner per local fact: the files that cannot import the owner say the same as it does.

Each fact lives in one Python place (the local dbt Cloud's port and CA files in ``dbt_cloud_local``, the
state layout in ``localdev.state``, the token in the local dbt Cloud's ``config.yml``, the venvs in the
Makefile). The Makefile, the compose override, ``airflow_settings.yaml``, the container entry point, the
image's ``include/paths.py``, ``.gitignore``/``.dockerignore`` and ruff's config are read here as text
and held to it, so none of them can drift on its own.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from dbt_cloud_local.client import DEFAULT_PORT, PORT_ENV, client_access
from localdev.state import DATA_DIR, DBT_CLOUD_DIR, DEFAULT_STATE_DIR, REHEARSAL_DIR, STATE_DIR_ENV

ROOT = Path(__file__).resolve().parents[2]
CONTAINER_PROJECT = PurePosixPath("/usr/local/airflow")


def text(name: str) -> str:
    return (ROOT / name).read_text()


@pytest.fixture(scope="module")
def override() -> dict[str, Any]:
    return yaml.safe_load(text("docker-compose.override.yml"))


@pytest.fixture(scope="module")
def dbt_cloud_connection() -> dict[str, Any]:
    settings = yaml.safe_load(text("airflow_settings.yaml"))
    return next(item for item in settings["airflow"]["connections"] if item["conn_id"] == "dbt_cloud")


def makefile_variable(name: str) -> str:
    match = re.search(rf"^(?:export )?{name} [:?]?= (.+)$", text("Makefile"), re.MULTILINE)
    assert match, f"Makefile defines no {name}"
    return match.group(1).strip()


# --- The local dbt Cloud's port -------------------------------------------------------------------
def test_every_path_publishes_the_local_dbt_cloud_on_the_same_port(override, dbt_cloud_connection) -> None:
    published = f"${{{PORT_ENV}:-{DEFAULT_PORT}}}"
    service = override["services"]["dbt-cloud-local"]
    assert service["ports"] == [f"127.0.0.1:{published}:{DEFAULT_PORT}"]
    assert service["environment"]["DBT_CLOUD_LOCAL_PUBLIC_URL"] == f"https://localhost:{published}"
    assert f"--port {DEFAULT_PORT} " in text("local/dbt_cloud_local/container-start.sh")
    assert dbt_cloud_connection["conn_host"] == f"dbt-cloud-local:{DEFAULT_PORT}"
    assert makefile_variable("LOCAL_DBT_CLOUD_URL") == f"https://localhost:$(or $({PORT_ENV}),{DEFAULT_PORT})"


# --- The state layout -----------------------------------------------------------------------------
def test_the_state_folder_is_the_same_everywhere() -> None:
    relative = DEFAULT_STATE_DIR.relative_to(ROOT).as_posix()
    assert makefile_variable(STATE_DIR_ENV) == f"$(CURDIR)/{relative}"
    for ignore_file in (".gitignore", ".dockerignore"):
        assert f"{relative}/" in text(ignore_file).splitlines(), ignore_file
    assert relative in tomllib.loads(text("pyproject.toml"))["tool"]["ruff"]["extend-exclude"]
    for target in ("break-model", "fix-model"):
        assert f"$({STATE_DIR_ENV})/{DBT_CLOUD_DIR}" in _recipe(target), target
    assert f"$({STATE_DIR_ENV})/{DBT_CLOUD_DIR}/tls/" in _recipe("jobs-plan jobs-sync")


def test_task_data_lives_in_the_same_folder_on_the_laptop_in_the_image_and_in_the_containers(
    override, monkeypatch
) -> None:
    from include import paths

    monkeypatch.delenv(paths.DATA_DIR_ENV, raising=False)
    data = DEFAULT_STATE_DIR / DATA_DIR
    assert paths.data_dir() == data
    in_containers = str(CONTAINER_PROJECT / data.relative_to(ROOT))
    for name in ("scheduler", "triggerer", "dag-processor", "api-server", "dbt-cloud-local"):
        assert f"eltml-data:{in_containers}" in override["services"][name]["volumes"], name
    assert f'ELTML_DATA_DIR:={in_containers}}}"' in text("local/dbt_cloud_local/container-start.sh")
    warehouse = override["services"]["dbt-cloud-local"]["environment"]["JAFFLE_SHOP_WAREHOUSE"]
    assert warehouse == str(CONTAINER_PROJECT / (data / paths.WAREHOUSE_FILE).relative_to(ROOT))


def test_the_local_dbt_cloud_and_the_rehearsal_keep_their_state_in_their_folders() -> None:
    from dbt_cloud_local import cli

    assert cli.DEFAULT_DATA_DIR == (DEFAULT_STATE_DIR / DBT_CLOUD_DIR).relative_to(ROOT).as_posix()
    config = yaml.safe_load(text("local/dbt_cloud_local/config.yml"))
    from include import paths

    warehouses = [env["env"][env["warehouse_env_var"]]["value"] for env in config["environments"]]

    expected = (DEFAULT_STATE_DIR / DATA_DIR / paths.WAREHOUSE_FILE).relative_to(ROOT).as_posix()
    assert set(warehouses) == {expected}
    assert REHEARSAL_DIR == "astro-rehearsal"  # the Makefile's `clean` removes it with the state folder


# --- The token and the CA bundle ------------------------------------------------------------------
def test_the_seeded_connection_and_the_makefile_use_the_local_dbt_clouds_token(
    dbt_cloud_connection, tmp_path
) -> None:
    access = client_access(tmp_path, DEFAULT_PORT, environ={})
    assert dbt_cloud_connection["conn_password"] == access.token
    assert int(dbt_cloud_connection["conn_login"]) == access.account_id
    assert f"$${{DBT_API_KEY:-{access.token}}}" in _recipe("jobs-plan jobs-sync")


def test_the_containers_trust_the_ca_bundle_the_server_writes(override, tmp_path) -> None:
    access = client_access(tmp_path, DEFAULT_PORT, environ={})
    bundle = access.ca_bundle.relative_to(tmp_path)  # tls/ca-bundle.pem in the data dir
    server = override["services"]["dbt-cloud-local"]
    data_dir = PurePosixPath(
        next(v.split(":")[1] for v in server["volumes"] if v.startswith("dbt-cloud-local-data:"))
    )
    tls_in_server = next(v.split(":")[1] for v in server["volumes"] if v.startswith("dbt-cloud-local-tls:"))
    assert PurePosixPath(tls_in_server) == data_dir / bundle.parent
    for name in ("scheduler", "triggerer", "dag-processor", "api-server"):
        service = override["services"][name]
        tls_in_client = next(
            v.split(":")[1] for v in service["volumes"] if v.startswith("dbt-cloud-local-tls:")
        )
        expected = str(PurePosixPath(tls_in_client) / bundle.name)
        assert (
            service["environment"]["REQUESTS_CA_BUNDLE"]
            == expected
            == service["environment"]["SSL_CERT_FILE"]
        )
    from astro_rehearsal.__main__ import DBT_CLOUD_CA

    assert PurePosixPath(DBT_CLOUD_CA) == data_dir / access.ca_cert.relative_to(tmp_path)


# --- The virtualenvs ------------------------------------------------------------------------------
def test_every_virtualenv_is_ignored_excluded_and_removed_by_distclean() -> None:
    makefile = text("Makefile")
    declared = set(re.findall(r"^(\w*VENV) := (\S+)$", makefile, re.MULTILINE))
    names = {value for _, value in declared}
    assert {f"$({name})" for name, _ in declared} == set(makefile_variable("VENVS").split())
    assert "\trm -rf $(VENVS)" in _recipe("distclean")
    excluded = tomllib.loads(text("pyproject.toml"))["tool"]["ruff"]["extend-exclude"]
    for name in names:
        assert _matched(name, _patterns(".gitignore")), f".gitignore misses {name}"
        assert _matched(name, _patterns(".dockerignore")), f".dockerignore misses {name}"
        assert _matched(name, excluded), f"ruff would scan {name}"


def _patterns(ignore_file: str) -> list[str]:
    lines = (line.strip() for line in text(ignore_file).splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith(("#", "!"))]


def _matched(name: str, patterns: list[str]) -> bool:
    return any(PurePosixPath(name).match(pattern) for pattern in patterns)


def _recipe(target: str) -> str:
    """The lines of a Makefile rule, from its target line to the next blank line."""
    match = re.search(rf"^{re.escape(target)}:.*?(?=^\s*$)", text("Makefile"), re.MULTILINE | re.DOTALL)
    assert match, f"Makefile has no rule {target}"
    return match.group(0)
