"""A throw-away local stack for tests: its own state folder, ports, database and Redis db.

The stack under test is started and stopped through the real ``make`` targets, as a developer would,
but with ``LOCALDEV_*`` variables that keep it apart from a developer's running stack: free ports, a
state folder under pytest's tmp_path, a Postgres database of its own (dropped afterwards) and an empty
Redis database. The eltml pipeline's files (warehouse, landing, models) go to tmp_path as well.

Checks here read ``/proc``, ``ss`` and sockets directly, not ``localdev.processes``: the code under
test must not be the judge of its own clean-up.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = "LOCALDEV_STACK_MEMBER"
POSTGRES = ("127.0.0.1", 5432)


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - a bind probe, closed at once
        except OSError:
            return False
    return True


def free_ports() -> dict[str, int]:
    """An API port, a dbt Cloud port and two consecutive log-server ports, all currently free."""
    ports: list[int] = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    for base in range(21000 + os.getpid() % 5000 * 2, 65000, 2):
        if base not in ports and base + 1 not in ports and _port_is_free(base) and _port_is_free(base + 1):
            return {"api": ports[0], "dbt_cloud": ports[1], "log": base}
    raise RuntimeError("no two consecutive free ports for the log servers")


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(POSTGRES, timeout=1):
            return True
    except OSError:
        return False


class IsolatedStack:
    def __init__(
        self,
        tmp_path: Path,
        *,
        redis_db: int | None = None,
        extra_env: dict[str, str] | None = None,
        own_database: bool = False,
    ):
        """``own_database``: let the stack name its database itself (in its secrets.json), as `make up`
        does by default; otherwise the test names one, so it can drop it even if `up` fails early."""
        self.state_dir = tmp_path / "state"
        self.ports = free_ports()
        self.database = None if own_database else f"airflow_localdev_test_{uuid.uuid4().hex[:10]}"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("LOCALDEV_")
            and key not in ("AIRFLOW_CONN_DBT_CLOUD", "DBT_CLOUD_LOCAL_API_TOKEN")
        }
        self.env.update(
            {
                "LOCALDEV_STATE_DIR": str(self.state_dir),
                "LOCALDEV_API_PORT": str(self.ports["api"]),
                "DBT_CLOUD_LOCAL_PORT": str(self.ports["dbt_cloud"]),
                "LOCALDEV_LOG_SERVER_PORT": str(self.ports["log"]),
                "LOCALDEV_ENV_FILE": "",  # never a developer's .env
                "LOCALDEV_STOP_GRACE": "15",
                "JAFFLE_SHOP_WAREHOUSE": str(tmp_path / "warehouse" / "jaffle_shop.duckdb"),
                "ELTML_LANDING_DIR": str(tmp_path / "landing"),
                "ELTML_MODELS_DIR": str(tmp_path / "ml_models"),
            }
        )
        if self.database is not None:
            self.env["LOCALDEV_POSTGRES_DB"] = self.database
        if redis_db is not None:
            self.env["LOCALDEV_REDIS_URL"] = f"redis://127.0.0.1:6379/{redis_db}"
        self.env.update(extra_env or {})
        self.api_url = f"http://localhost:{self.ports['api']}"
        self.recorded_pgids: set[int] = set()
        #: pid -> start time of the components and all their descendants, seen while the stack ran.
        self.seen_processes: dict[int, int] = {}
        self.timings: dict[str, float] = {}

    @property
    def all_ports(self) -> list[int]:
        return [self.ports["api"], self.ports["dbt_cloud"], self.ports["log"], self.ports["log"] + 1]

    def make(
        self, target: str, *, timeout: float = 300, extra: list[str] | None = None
    ) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = subprocess.run(
            ["make", "--no-print-directory", target, *(extra or [])],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.timings[target] = time.monotonic() - started
        print(f"make {target}: exit {result.returncode} in {self.timings[target]:.1f}s")
        return result

    def records(self) -> list[dict[str, Any]]:
        """The components' pid records, as written by `make up`; their pgids are kept for the checks."""
        records = [json.loads(path.read_text()) for path in sorted((self.state_dir / "run").glob("*.json"))]
        records = [record for record in records if "pid" in record]
        self.recorded_pgids |= {record["pid"] for record in records}
        return records

    def snapshot_tree(self) -> int:
        """Remember every live descendant of the recorded components (checked again after `make down`)."""
        stats = {
            int(entry.name): _stat(int(entry.name))
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit()
        }
        children: dict[int, list[int]] = {}
        for pid, stat in stats.items():
            if stat is not None:
                children.setdefault(stat[1], []).append(pid)
        pending = [record["pid"] for record in self.records()]
        while pending:
            pid = pending.pop()
            stat = stats.get(pid)
            if stat is not None and stat[0] not in ("Z", "X"):
                self.seen_processes[pid] = stat[3]
                pending.extend(children.get(pid, []))
        return len(self.seen_processes)

    # --- the REST API --------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(  # noqa: S310 - the local api-server
            f"{self.api_url}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path} -> HTTP {exc.code}: {exc.read()[:500]!r}") from exc
        return json.loads(raw) if raw.strip().startswith((b"{", b"[")) else raw.decode()

    def token(self) -> str:
        """SimpleAuthManager with all admins hands out a token without credentials."""
        return self.api("GET", "/auth/token")["access_token"]

    # --- clean-up and its checks ----------------------------------------------------------------------

    def database_name(self) -> str | None:
        """The stack's PostgreSQL database: the one the test named, else the one the stack chose."""
        if self.database is not None or not (self.state_dir / "secrets.json").exists():
            return self.database
        return json.loads((self.state_dir / "secrets.json").read_text()).get("postgres_db")

    def drop_database(self) -> None:
        name = self.database_name()
        if name is None or not postgres_reachable():
            return
        import psycopg2

        connection = psycopg2.connect(host=POSTGRES[0], port=POSTGRES[1], user="postgres", dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            connection.close()

    def leftovers(self) -> list[str]:
        """Live processes that reference the state folder (cwd, command line, environment) or sit in a
        process group the stack recorded."""
        protected, pid = set(), os.getpid()
        while pid > 1:
            protected.add(pid)
            pid = _stat(pid)[1] if _stat(pid) else 0
        state = str(self.state_dir)
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in protected:
                continue
            stat = _stat(int(entry.name))
            if stat is None or stat[0] in ("Z", "X"):
                continue
            reasons = []
            if stat[2] in self.recorded_pgids:
                reasons.append(f"in recorded process group {stat[2]}")
            try:
                cwd = os.readlink(entry / "cwd")
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if cwd == state or cwd.startswith(state + "/"):
                reasons.append(f"cwd {cwd}")
            if state in cmd:
                reasons.append("command line names the state folder")
            if f"{MARKER}={state}".encode() in environ:
                reasons.append("carries the stack marker")
            if self.seen_processes.get(int(entry.name)) == stat[3]:
                reasons.append("was part of the running stack")
            if reasons:
                found.append(f"pid {entry.name} ({cmd[:120]}): {', '.join(reasons)}")
        return found

    def listening_ports(self) -> list[int]:
        """Stack ports something listens on, by `ss -ltn` and by connecting."""
        output = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
        listening = {int(line.split()[3].rsplit(":", 1)[1]) for line in output.splitlines() if line.strip()}
        held = set(self.all_ports) & listening
        for port in self.all_ports:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    held.add(port)
            except OSError:
                pass
        return sorted(held)


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, start time) of a process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])
