"""
The compose file ``astro dev start`` generates for an Airflow 3 project, rendered for the rehearsal.

It reproduces the Astro CLI's template (astro-cli ``airflow/include/airflow3/composeyml.go.tmpl``,
unchanged from v1.45.0 to ``main``) and its naming rules: the services, their commands, environment,
mounts, ports, labels and restart policies. The only values the rehearsal chooses are the ones a user
can set with ``astro config set``: the host ports and the Postgres image (the CLI's
``docker.io/postgres`` cannot be pulled on machines without Docker Hub, so a stand-in with the same
interface takes its place). The project's ``docker-compose.override.yml`` is merged on top by
compose itself, exactly as the CLI asks compose to.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

AIRFLOW_SERVICES = ("scheduler", "dag-processor", "api-server", "triggerer")
#: The CLI's fixed development Fernet key (public, local only).
CLI_FERNET_KEY = "d6Vefz3G9U_ynXB3cr7y_Ak35tAHkEGAVxuz_B-jzWw="
SETTINGS_FILE = "airflow_settings.yaml"


@dataclass(frozen=True)
class AstroProject:
    """Names the Astro CLI derives from ``.astro/config.yaml`` and the project's path."""

    root: Path
    name: str

    @classmethod
    def load(cls, root: Path) -> AstroProject:
        config = yaml.safe_load((root / ".astro" / "config.yaml").read_text()) or {}
        name = (config.get("project") or {}).get("name") or root.name.replace("_", "-")
        return cls(root=root.resolve(), name=str(name))

    @property
    def unique_name(self) -> str:
        """``ProjectNameUnique``: the configured name plus the first 6 hex digits of md5(path)."""
        digest = hashlib.md5(str(self.root).encode(), usedforsecurity=False).hexdigest()[:6]
        return f"{self.name}_{digest}"

    @property
    def compose_project(self) -> str:
        """``normalizeName``: lower case, only ``[a-z0-9_-]``, no leading ``_`` or ``-``."""
        return re.sub(r"[^a-z0-9_-]", "", self.unique_name.lower()).lstrip("_-")

    @property
    def airflow_image(self) -> str:
        return f"{self.unique_name}/airflow:latest"


@dataclass(frozen=True)
class ComposeSettings:
    api_server_port: int = 8080
    postgres_port: int = 5432
    postgres_image: str = "docker.io/postgres:12.6"


def render(project: AstroProject, settings: ComposeSettings) -> dict[str, Any]:
    """The compose document ``astro dev start`` hands to compose (before the override is merged)."""
    env_file = project.root / ".env"
    common_env = {
        "AIRFLOW__API__BASE_URL": "http://localhost:8080",
        "AIRFLOW__API__PORT": 8080,
        "AIRFLOW__API_AUTH__JWT_SECRET": project.name,
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://api-server:8080/execution/",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__FERNET_KEY": CLI_FERNET_KEY,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SQL_ALCHEMY_CONN": "postgresql://postgres:postgres@postgres:5432",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://postgres:postgres@postgres:5432",
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": True,
        "AIRFLOW__API__SECRET_KEY": project.name,
        "ASTRONOMER_ENVIRONMENT": "local",
    }
    labels = {"io.astronomer.docker": "true", "io.astronomer.docker.cli": "true"}

    def airflow_service(command: str, *, mount_tests: bool, mount_settings: bool) -> dict[str, Any]:
        folders = ["dags", "plugins", "include", *(["tests"] if mount_tests else [])]
        volumes = [f"{project.root / folder}:/usr/local/airflow/{folder}:z" for folder in folders]
        if mount_settings and (project.root / SETTINGS_FILE).exists():
            volumes.append(f"{project.root / SETTINGS_FILE}:/usr/local/airflow/{SETTINGS_FILE}:z")
        volumes.append("airflow_logs:/usr/local/airflow/logs")
        service: dict[str, Any] = {
            "depends_on": ["db-migration"],
            "image": project.airflow_image,
            "command": ["airflow", command],
            "restart": "unless-stopped",
            "networks": ["airflow"],
            "user": "astro",
            "labels": {**labels, "io.astronomer.docker.component": f"airflow-{command}"},
            "environment": dict(common_env),
            "volumes": volumes,
        }
        if env_file.exists():  # the CLI writes `env_file: .env` only when the file exists
            service["env_file"] = ".env"
        return service

    services: dict[str, Any] = {
        "postgres": {
            "image": settings.postgres_image,
            "restart": "unless-stopped",
            "networks": ["airflow"],
            "labels": dict(labels),
            "ports": [f"127.0.0.1:{settings.postgres_port}:5432"],
            "volumes": ["postgres_data:/var/lib/postgresql/data"],
            "environment": {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "postgres"},
        },
        "db-migration": {
            "depends_on": ["postgres"],
            "image": project.airflow_image,
            "command": ["airflow", "db", "migrate"],
            "networks": ["airflow"],
            "labels": {**labels, "io.astronomer.docker.component": "airflow-db-migration"},
            "environment": dict(common_env),
        },
        "scheduler": airflow_service("scheduler", mount_tests=True, mount_settings=True),
        "dag-processor": airflow_service("dag-processor", mount_tests=True, mount_settings=False),
        "api-server": airflow_service("api-server", mount_tests=True, mount_settings=False),
        "triggerer": airflow_service("triggerer", mount_tests=False, mount_settings=False),
    }
    services["api-server"]["ports"] = [f"127.0.0.1:{settings.api_server_port}:8080"]
    return {
        "networks": {"airflow": {"driver": "bridge"}},
        "volumes": {"postgres_data": {"driver": "local"}, "airflow_logs": {"driver": "local"}},
        "services": services,
    }


def write(project: AstroProject, settings: ComposeSettings, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(render(project, settings), sort_keys=False))
    return path
