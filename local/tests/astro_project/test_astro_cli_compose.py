"""The rehearsal's copy of the Astro CLI's compose file keeps the CLI's rules.

These are the rules the override relies on (see test_compose_override.py): which services exist, that
`.env` is passed only when it exists, which folders each service mounts, and the CLI's names.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from test_compose_override import CLI_SERVICES

from astro_rehearsal.astro_compose import AstroProject, ComposeSettings, render


@pytest.fixture
def project(tmp_path: Path) -> AstroProject:
    root = tmp_path / "My Project"
    (root / ".astro").mkdir(parents=True)
    (root / ".astro" / "config.yaml").write_text("project:\n  name: airflow-dbt-cloud\n")
    (root / "airflow_settings.yaml").write_text("airflow: {}\n")
    return AstroProject.load(root)


def test_names_follow_the_cli(project: AstroProject) -> None:
    digest = hashlib.md5(str(project.root).encode(), usedforsecurity=False).hexdigest()[:6]
    assert project.unique_name == f"airflow-dbt-cloud_{digest}"
    assert project.airflow_image == f"airflow-dbt-cloud_{digest}/airflow:latest"
    assert project.compose_project == f"airflow-dbt-cloud_{digest}"


def test_env_file_is_passed_to_the_airflow_services_only_when_it_exists(project: AstroProject) -> None:
    without = render(project, ComposeSettings())["services"]
    assert not any("env_file" in service for service in without.values())

    (project.root / ".env").write_text("A=1\n")
    with_env = render(project, ComposeSettings())["services"]
    assert {name for name, service in with_env.items() if "env_file" in service} == {
        "scheduler", "dag-processor", "api-server", "triggerer"
    }  # fmt: skip


def test_services_mounts_and_ports(project: AstroProject) -> None:
    services = render(project, ComposeSettings(api_server_port=18080, postgres_port=15432))["services"]
    assert set(services) == CLI_SERVICES

    def targets(name: str) -> set[str]:
        return {volume.split(":")[1] for volume in services[name].get("volumes", [])}

    assert "/usr/local/airflow/tests" not in targets("triggerer")
    assert "/usr/local/airflow/tests" in targets("scheduler")
    assert "/usr/local/airflow/airflow_settings.yaml" in targets("scheduler")
    assert "/usr/local/airflow/airflow_settings.yaml" not in targets("api-server")
    assert services["api-server"]["ports"] == ["127.0.0.1:18080:8080"]
    assert services["postgres"]["ports"] == ["127.0.0.1:15432:5432"]
    assert all(services[name]["user"] == "astro" for name in ("scheduler", "triggerer"))
