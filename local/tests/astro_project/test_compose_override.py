"""docker-compose.override.yml must be something `astro dev start` can start as it is.

The Astro CLI runs compose `up` without building, and writes `env_file: .env` only into its own
Airflow services. So every service the override adds must run from an image that exists without a
build (the Runtime image the Dockerfile starts from, which the CLI has just pulled), read `.env` itself
(optional: a fresh clone has none), answer a healthcheck (the Airflow services wait for it) and sit on
the CLI's network; and everything it mounts from the project must exist. The container rehearsal
(`make astro-rehearsal`) proves the same by starting it; this check fails in a second.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbt_cloud_local.client import DEFAULT_PORT, PORT_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[3]
OVERRIDE = PROJECT_ROOT / "docker-compose.override.yml"
#: The services the Astro CLI's compose file for Airflow 3 defines.
CLI_AIRFLOW_SERVICES = ("scheduler", "dag-processor", "api-server", "triggerer")
CLI_SERVICES = frozenset({"postgres", "db-migration", *CLI_AIRFLOW_SERVICES})


def dockerfile_base_image(root: Path = PROJECT_ROOT) -> str:
    lines = (root / "Dockerfile").read_text().splitlines()
    return next(line.split()[1] for line in lines if line.strip().upper().startswith("FROM "))


def _reads_dot_env(service: dict[str, Any]) -> bool:
    entries = service.get("env_file") or []
    entries = [entries] if isinstance(entries, str | dict) else entries
    for entry in entries:
        path = entry if isinstance(entry, str) else entry.get("path")
        if path in (".env", "./.env"):
            return True
    return False


def _env_file_optional(service: dict[str, Any]) -> bool:
    entries = service.get("env_file") or []
    entries = [entries] if isinstance(entries, str | dict) else entries
    return all(isinstance(entry, dict) and entry.get("required") is False for entry in entries)


def override_problems(document: dict[str, Any], root: Path = PROJECT_ROOT) -> list[str]:
    """Everything that would stop `astro dev start` from starting this override, one line each."""
    problems = []
    base_image = dockerfile_base_image(root)
    for name, service in (document.get("services") or {}).items():
        if name in CLI_SERVICES:
            continue
        if "build" in service:
            problems.append(f"{name}: has `build:`, which the Astro CLI never runs")
        if service.get("image") != base_image:
            problems.append(
                f"{name}: image {service.get('image')!r} is not the Dockerfile's FROM {base_image!r}, "
                "the one image the CLI is sure to have"
            )
        if not _reads_dot_env(service):
            problems.append(f"{name}: no `env_file: .env` (the CLI adds it to its own services only)")
        elif not _env_file_optional(service):
            problems.append(f"{name}: `.env` must be optional (`required: false`): a fresh clone has none")
        if not (service.get("healthcheck") or {}).get("test"):
            problems.append(f"{name}: no healthcheck, so `condition: service_healthy` can never be met")
        if "airflow" not in (service.get("networks") or []):
            problems.append(f"{name}: not on the CLI's `airflow` network")
        for volume in service.get("volumes") or []:
            source, _, rest = volume.partition(":")
            if not source.startswith("."):
                continue
            if not (root / source).exists():
                problems.append(f"{name}: mounts {source}, which does not exist in the project")
            options = rest.partition(":")[2].split("#")[0].strip().split(",")
            if not {"z", "Z"} & set(options):
                problems.append(f"{name}: bind mount {source} without `z`, which SELinux hosts refuse")
    return problems


@pytest.fixture(scope="module")
def override() -> dict[str, Any]:
    return yaml.safe_load(OVERRIDE.read_text())


def test_every_added_service_starts_without_a_build_and_reads_dot_env(override: dict[str, Any]) -> None:
    assert override_problems(override) == []


def test_the_check_names_each_problem_of_a_service_that_needs_a_build() -> None:
    broken = {
        "services": {"dbt-cloud-local": {"build": ".", "volumes": ["./no-such-folder:/x", "./local:/y:ro"]}}
    }

    problems = "\n".join(override_problems(broken))

    for expected in ("has `build:`", "is not the Dockerfile's FROM", "no `env_file: .env`", "no healthcheck",
                     "`airflow` network", "mounts ./no-such-folder",
                     "bind mount ./local without `z`"):  # fmt: skip
        assert expected in problems


def test_a_required_env_file_is_flagged_because_a_fresh_clone_has_no_dot_env(override: dict) -> None:
    service = dict(override["services"]["dbt-cloud-local"], env_file=".env")

    assert override_problems({"services": {"dbt-cloud-local": service}}) == [
        "dbt-cloud-local: `.env` must be optional (`required: false`): a fresh clone has none"
    ]


def test_airflow_services_trust_the_local_dbt_cloud_and_wait_for_it(override: dict[str, Any]) -> None:
    for name in CLI_AIRFLOW_SERVICES:
        service = override["services"][name]
        bundle = service["environment"]["REQUESTS_CA_BUNDLE"]
        assert service["environment"]["SSL_CERT_FILE"] == bundle  # aiohttp (triggerer) and requests alike
        assert any(bundle.startswith(volume.split(":")[1]) for volume in service["volumes"])
    for name in set(CLI_AIRFLOW_SERVICES) - {"api-server"}:
        assert override["services"][name]["depends_on"]["dbt-cloud-local"]["condition"] == "service_healthy"


def test_the_api_server_does_not_wait_for_the_dbt_install(override: dict[str, Any]) -> None:
    # `astro dev start` gives the api-server one minute (--wait) after compose returns, and seeds the
    # dbt_cloud connection only then: it must boot while the local dbt Cloud's first start installs dbt.
    assert "dbt-cloud-local" not in (override["services"]["api-server"].get("depends_on") or {})


def test_the_host_port_moves_with_one_shell_variable(override: dict[str, Any]) -> None:
    local_service = override["services"]["dbt-cloud-local"]
    published = f"${{{PORT_ENV}:-{DEFAULT_PORT}}}"
    # The server publishes its run links for the host's browser, on the port published there.
    assert local_service["environment"]["DBT_CLOUD_LOCAL_PUBLIC_URL"] == f"https://localhost:{published}"
    assert local_service["ports"] == [f"127.0.0.1:{published}:8443"]


def test_task_data_lives_in_a_named_volume_not_in_the_bind_mounted_include(override: dict) -> None:
    declared_volumes = set(override["volumes"])
    for name in (*CLI_AIRFLOW_SERVICES, "dbt-cloud-local"):
        mounts = dict(volume.split(":")[:2] for volume in override["services"][name]["volumes"])
        assert mounts.get("eltml-data") == "/usr/local/airflow/.state/data", name
    assert "eltml-data" in declared_volumes
    warehouse = override["services"]["dbt-cloud-local"]["environment"]["JAFFLE_SHOP_WAREHOUSE"]
    assert warehouse.startswith("/usr/local/airflow/.state/data/")


def test_the_entrypoint_is_executable_from_a_fresh_clone(override: dict[str, Any]) -> None:
    entrypoint = override["services"]["dbt-cloud-local"]["entrypoint"][0]
    local_path = PROJECT_ROOT / Path(entrypoint).relative_to("/usr/local/airflow")
    assert local_path.is_file(), local_path
    assert os.access(local_path, os.X_OK), f"{local_path} is not executable (git update-index --chmod=+x)"
