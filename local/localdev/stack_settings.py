"""What a local Airflow stack is made of: its state folder, ports, executor and services.

Every knob has a default (the ports ``astro dev start`` publishes, the state in ``.state/``) and can be
moved with a ``LOCALDEV_*`` environment variable or a command-line flag. That is what lets the test
suite run a second, throw-away stack next to a developer's without the two ever sharing a port, a
folder, a database or a Redis queue.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dbt_cloud_local.client import DEFAULT_PORT, PORT_ENV, ClientAccess, client_access, host_port
from localdev.state import DATA_DIR, DBT_CLOUD_DIR, DEFAULT_STATE_DIR, REPO_ROOT, STATE_DIR_ENV

EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
DATABASES = ("auto", "postgres", "sqlite")


class StackError(RuntimeError):
    """The stack cannot do what was asked; the message says why and what to do about it."""


@dataclass(frozen=True)
class StackSettings:
    #: The one home of local state: AIRFLOW_HOME (airflow.cfg, SQLite, task logs, logs/stack/), secrets,
    #: pid records, the local dbt Cloud's data (dbt-cloud-local/) and the task data (data/).
    state_dir: Path = DEFAULT_STATE_DIR
    executor: str = "local"
    api_port: int = 8080
    dbt_cloud_port: int = DEFAULT_PORT
    #: The scheduler (LocalExecutor) or first Celery worker serves task logs here, the triggerer on +1.
    log_server_port: int = 8793
    database: str = "auto"
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432"
    #: None: the state folder's own database, named in its secrets.json (so two checkouts, or a fresh
    #: state folder, never read a database encrypted with another Fernet key).
    postgres_db: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_workers: int = 2
    celery_concurrency: int = 4
    api_workers: int = 1
    #: Passed to every component like Astro's ``env_file: .env``; None to read none.
    env_file: Path | None = REPO_ROOT / ".env"
    startup_timeout: float = 240.0
    stop_grace: float = 20.0

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs" / "stack"

    @property
    def run_dir(self) -> Path:
        """Pid records of the running components and the stack's description."""
        return self.state_dir / "run"

    @property
    def dbt_cloud_dir(self) -> Path:
        return self.state_dir / DBT_CLOUD_DIR

    @property
    def data_dir(self) -> Path:
        """Task data: the DuckDB warehouse, landing files, trained models (include/paths.py)."""
        return self.state_dir / DATA_DIR

    def dbt_cloud_access(self, environ: Mapping[str, str]) -> ClientAccess:
        """How the components reach the stack's local dbt Cloud (token, account, CA files), asked of
        the server's own config with the environment the server runs with."""
        return client_access(self.dbt_cloud_dir, self.dbt_cloud_port, environ=environ)

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.json"

    @property
    def api_url(self) -> str:
        return f"http://localhost:{self.api_port}"

    @property
    def dbt_cloud_url(self) -> str:
        return f"https://localhost:{self.dbt_cloud_port}"

    @property
    def airflow_executor(self) -> str:
        return EXECUTORS[self.executor]

    def ports(self) -> dict[str, int]:
        """Every TCP port the stack listens on, by what listens there."""
        return {
            "api-server (UI)": self.api_port,
            "local dbt Cloud": self.dbt_cloud_port,
            "task log server": self.log_server_port,
            "triggerer log server": self.log_server_port + 1,
        }


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``up``, ``down`` and ``status``; each defaults to its LOCALDEV_* variable."""
    defaults = StackSettings()
    parser.add_argument(
        "--state-dir",
        default=_env(STATE_DIR_ENV, str(defaults.state_dir)),
        help=f"all state and logs (env {STATE_DIR_ENV}, default .state)",
    )
    parser.add_argument(
        "--executor",
        choices=sorted(EXECUTORS),
        default=_env("LOCALDEV_EXECUTOR", defaults.executor),
        help="local (LocalExecutor) or celery (CeleryExecutor + workers on Redis); env LOCALDEV_EXECUTOR",
    )
    parser.add_argument("--api-port", type=int, default=int(_env("LOCALDEV_API_PORT", "8080")))
    parser.add_argument(
        "--dbt-cloud-port", type=int, default=host_port(), help=f"the local dbt Cloud's port (env {PORT_ENV})"
    )
    parser.add_argument(
        "--log-server-port",
        type=int,
        default=int(_env("LOCALDEV_LOG_SERVER_PORT", "8793")),
        help="task log server port; the triggerer's is the next one",
    )
    parser.add_argument("--database", choices=DATABASES, default=_env("LOCALDEV_DB", defaults.database))
    parser.add_argument("--postgres-url", default=_env("LOCALDEV_POSTGRES_URL", defaults.postgres_url))
    parser.add_argument(
        "--postgres-db",
        default=os.environ.get("LOCALDEV_POSTGRES_DB", "").strip() or None,
        help="database name (env LOCALDEV_POSTGRES_DB; default: the state folder's own)",
    )
    parser.add_argument("--redis-url", default=_env("LOCALDEV_REDIS_URL", defaults.redis_url))
    parser.add_argument(
        "--celery-workers",
        type=int,
        default=int(_env("LOCALDEV_CELERY_WORKERS", str(defaults.celery_workers))),
    )
    parser.add_argument(
        "--celery-concurrency",
        type=int,
        default=int(_env("LOCALDEV_CELERY_CONCURRENCY", str(defaults.celery_concurrency))),
    )
    parser.add_argument(
        "--api-workers", type=int, default=int(_env("LOCALDEV_API_WORKERS", str(defaults.api_workers)))
    )
    parser.add_argument(
        "--env-file",
        default=os.environ.get("LOCALDEV_ENV_FILE", str(defaults.env_file)),
        help="KEY=VALUE file passed to every component (default .env); empty for none",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=float(_env("LOCALDEV_STARTUP_TIMEOUT", str(defaults.startup_timeout))),
    )
    parser.add_argument(
        "--stop-grace",
        type=float,
        default=float(_env("LOCALDEV_STOP_GRACE", str(defaults.stop_grace))),
        help="seconds between SIGTERM and SIGKILL",
    )


def from_arguments(args: argparse.Namespace) -> StackSettings:
    settings = StackSettings(
        state_dir=Path(args.state_dir).expanduser().resolve(),
        executor=args.executor,
        api_port=args.api_port,
        dbt_cloud_port=args.dbt_cloud_port,
        log_server_port=args.log_server_port,
        database=args.database,
        postgres_url=args.postgres_url,
        postgres_db=args.postgres_db,
        redis_url=args.redis_url,
        celery_workers=args.celery_workers,
        celery_concurrency=args.celery_concurrency,
        api_workers=args.api_workers,
        env_file=Path(args.env_file).expanduser().resolve() if args.env_file.strip() else None,
        startup_timeout=args.startup_timeout,
        stop_grace=args.stop_grace,
    )
    ports = list(settings.ports().values())
    if len(set(ports)) != len(ports) or not all(0 < port < 65536 for port in ports):
        raise StackError(f"Ports must be distinct and between 1 and 65535, got {settings.ports()}.")
    if settings.celery_workers < 1 or settings.celery_concurrency < 1 or settings.api_workers < 1:
        raise StackError("--celery-workers, --celery-concurrency and --api-workers must be at least 1.")
    return settings
