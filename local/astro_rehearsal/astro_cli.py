"""
The Astro CLI's ``dev`` commands, step by step, as compose and the container engine see them.

Read from astro-cli v1.45 (``airflow/docker.go``, ``airflow/docker_image.go``, ``cmd/airflow.go``,
``pkg/fileutil``, ``pkg/proxy``); each function names the CLI code it reproduces:

- ``start`` (``DockerCompose.Start``): ``astro-run-dag`` appended to ``requirements.txt`` for the image
  build and removed again, compose ``Up`` (no build of override services), then the api-server's
  health checked for ``--wait`` (default 1 minute) *after* ``Up`` returns, and only then
  ``airflow_settings.yaml`` upserted. When the minute runs out the CLI stops there: nothing is seeded.
- ``stop`` (``DockerCompose.Stop``): compose ``Stop``; containers and volumes stay.
- ``restart`` (``airflowRestart``): ``stop``, then ``start`` (the image is built again).
- ``kill`` (``DockerCompose.Kill``): compose ``Down`` with volumes and orphans removed.
- ``pytest`` (``DockerImage.Pytest``): ``create`` a container of the built image running
  ``pytest <path>`` (bare ``astro dev pytest`` passes ``tests/``), ``cp`` the project's ``dags``,
  ``tests``, ``plugins``, ``include`` and ``.astro`` into it, ``start -a``, read the exit code.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from astro_rehearsal import airflow_api, images, podman
from astro_rehearsal.astro_compose import SETTINGS_FILE, AstroProject

#: ``cmd/airflow.go``: ``defaultWaitTime = 1 * time.Minute``.
CLI_WAIT_SECONDS = 60.0
#: ``Start`` appends this line (``fileutil.AddLineToFile``) and removes it after the build.
ASTRO_RUN_DAG_LINE = "astro-run-dag"
ASTRO_RUN_DAG_COMMENT = (
    "# This package is needed for the astro run command. It will be removed before a deploy"
)
#: ``pkg/proxy``: the UI's announced address since CLI 1.40, ``http://<hostname>:6563``.
PROXY_PORT = 6563
PYTEST_FOLDERS = ("dags", "tests", "plugins", "include", ".astro")


class CliWouldFail(podman.ContainerError):
    """The real CLI would stop here with an error (the message says which and why)."""


@dataclass
class StartReport:
    up_seconds: float
    healthy_after_up: float
    seeded: list[str] = field(default_factory=list)


@contextmanager
def requirements_with_astro_run_dag(project_root: Path):
    """``requirements.txt`` with the line ``Start`` appends for its build; restored byte for byte."""
    path = project_root / "requirements.txt"
    original = path.read_bytes()
    if ASTRO_RUN_DAG_LINE.encode() not in original:
        path.write_bytes(original + f"\n{ASTRO_RUN_DAG_LINE} {ASTRO_RUN_DAG_COMMENT}".encode())
    try:
        yield
    finally:
        path.write_bytes(original)


def build(project: AstroProject) -> None:
    """The image build of ``astro dev start``/``restart`` (Docker format, as the CLI builds on Podman)."""
    with requirements_with_astro_run_dag(project.root):
        images.build_project_image(project.root, project.airflow_image)


def pytest(project: AstroProject, test_path: str = "tests/") -> int:
    """``astro dev pytest [path]``; the default is what a bare ``astro dev pytest`` runs."""
    return images.pytest_in_image(project.root, project.airflow_image, test_path, folders=PYTEST_FOLDERS)


def ui_address(project_root: Path) -> str:
    """What ``astro dev start`` prints as the Airflow UI (``DeriveHostname``, without a git worktree)."""
    label = re.sub(r"[^a-z0-9-]+", "-", project_root.resolve().name.lower()).strip("-")[:63].rstrip("-")
    return f"http://{label}.localhost:{PROXY_PORT}"


@dataclass
class Compose:
    """The project's compose invocation (the CLI's file merged with the override) and its engine env."""

    argv: list[str]
    env: dict[str, str]
    project: AstroProject
    api: airflow_api.AirflowApi
    show_logs: Callable[[], None]

    def run(self, *args: str, check: bool = True, quiet: bool = True):
        return podman.run([*self.argv, *args], env=self.env, check=check, quiet=quiet)

    def start(self) -> StartReport:
        """``astro dev start``: build, compose up, one minute for the api-server, then seed the settings."""
        build(self.project)
        started = time.monotonic()
        with podman.healthchecks_running(self.project.compose_project):
            self.run("up", "--detach", "--no-build", "--pull", "never", "--quiet-pull", quiet=False)
            up_seconds = time.monotonic() - started
            returned = time.monotonic()
            try:
                self.api.wait_until_healthy(timeout=CLI_WAIT_SECONDS)
            except airflow_api.AirflowApiError as exc:
                self.show_logs()
                raise CliWouldFail(
                    f"{exc}: the Astro CLI gives it {CLI_WAIT_SECONDS:.0f} s after compose returns "
                    "(--wait), then stops without seeding airflow_settings.yaml (no dbt_cloud connection)"
                ) from exc
            healthy_after_up = time.monotonic() - returned
        return StartReport(up_seconds=up_seconds, healthy_after_up=healthy_after_up)

    def seed(self) -> list[str]:
        """What ``Start`` does once healthy: upsert ``airflow_settings.yaml`` through the REST API."""
        with self.api.client() as client:
            return airflow_api.upsert_settings(client, self.project.root / SETTINGS_FILE)

    def stop(self) -> None:
        """``astro dev stop``: the containers stop; they, their volumes and the images stay."""
        self.run("stop")

    def kill(self) -> None:
        """``astro dev kill``: containers, network and every volume removed."""
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)

    def exec(self, service: str, *command: str) -> str:
        return self.run("exec", "-T", service, *command).stdout

    def volumes(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.project.compose_project}"
        listed = podman.run(
            ["podman", "volume", "ls", "--filter", label, "--format", "{{.Name}}"], quiet=True
        )
        return listed.stdout.split()
