"""
Run the local dbt Cloud server as a subprocess for tests and tooling.

Example::

    with run_local_dbt_cloud(tmp_path / "data", config=config_path) as server:
        os.environ.update(server.client_env())      # CA trust + AIRFLOW_CONN_DBT_CLOUD_LOCAL
        DbtCloudHook("dbt_cloud_local").get_account()

The server is a real process on a free loopback port, speaking HTTPS with its own CA, so clients
exercise exactly the code paths they use against dbt Cloud. Leaving the block stops it with SIGTERM
(the server then terminates its dbt processes); any dbt process still running from its data dir
afterwards is killed, so tests never leave orphans behind.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dbt_cloud_local.client import CONN_ID, ClientAccess, client_access
from dbt_cloud_local.config.settings import ENV_API_TOKEN

#: The folder that holds this package (``local/``) and the project root above it.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent
REPO_ROOT = PACKAGE_PARENT.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_in(directory: Path) -> list[int]:
    """Pids of processes whose working directory is inside ``directory`` (Linux ``/proc``)."""
    directory = directory.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == directory or cwd.is_relative_to(directory):
            found.append(int(entry.name))
    return found


@dataclass
class LocalDbtCloud:
    """A running server: what a client needs to reach it (see :class:`ClientAccess`)."""

    access: ClientAccess
    config_path: Path | None
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path

    @property
    def port(self) -> int:
        return self.access.port

    @property
    def token(self) -> str:
        return self.access.token

    @property
    def account_id(self) -> int:
        return self.access.account_id

    @property
    def data_dir(self) -> Path:
        return self.access.data_dir

    @property
    def host(self) -> str:
        return self.access.host

    @property
    def base_url(self) -> str:
        return self.access.base_url

    @property
    def ca_path(self) -> Path:
        return self.access.ca_cert

    @property
    def trust(self) -> ssl.SSLContext:
        """An SSL context that trusts the server's CA (httpx's ``verify=``)."""
        return self.access.trust()

    @property
    def client_bundle(self) -> Path:
        return self.access.ca_bundle

    def connection_uri_json(self) -> str:
        return self.access.connection_json()

    def client_env(self, conn_id: str = CONN_ID) -> dict[str, str]:
        """Environment for Airflow clients: CA trust for requests and aiohttp, plus the connection."""
        return self.access.airflow_env(conn_id)

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Token {self.token}", **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.base_url, verify=self.trust, headers=headers, **kwargs)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the server only (its dbt processes survive, as after a crash)."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> None:
        """Stop gracefully, then make sure no dbt process of this data dir is left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for pid in processes_in(self.data_dir / "runs"):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def start_local_dbt_cloud(
    data_dir: Path,
    *,
    config: Path | None = None,
    token: str | None = None,
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    startup_timeout: float = 30.0,
) -> LocalDbtCloud:
    """Start a server and wait until it answers over HTTPS."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    process_env = {**os.environ, **(env or {})}
    process_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PACKAGE_PARENT), str(REPO_ROOT), process_env.get("PYTHONPATH")])
    )
    if token:
        process_env[ENV_API_TOKEN] = token
    port = port or free_port()
    # Validates the config early, and learns the token and account id as the server will.
    access = client_access(data_dir, port, config_path=config, environ=process_env)
    argv = [sys.executable, "-m", "dbt_cloud_local", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--data-dir", str(data_dir), *(["--config", str(config)] if config else []), *extra_args]
    log_path = data_dir / "server.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=process_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LocalDbtCloud(
        access=access,
        config_path=config,
        process=process,
        log_path=log_path,
    )
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local dbt Cloud exited with {process.returncode}:\n{server.log_tail()}")
        if server.ca_path.exists():
            try:
                response = httpx.get(f"{server.base_url}/_local/health", verify=server.trust, timeout=2)
                if response.status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    server.stop()
    raise TimeoutError(f"local dbt Cloud did not start within {startup_timeout}s:\n{server.log_tail()}")


@contextmanager
def run_local_dbt_cloud(data_dir: Path, **kwargs: Any) -> Iterator[LocalDbtCloud]:
    """Context manager around :func:`start_local_dbt_cloud` that always stops the server."""
    server = start_local_dbt_cloud(data_dir, **kwargs)
    try:
        yield server
    finally:
        server.stop()
