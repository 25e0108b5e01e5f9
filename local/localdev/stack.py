"""The local Airflow stack without Docker: ``up``, ``down`` and ``status`` (``make up`` / ``make down``).

It runs what ``astro dev start`` runs — api-server (UI on :8080), scheduler, dag-processor, triggerer,
a migrated metadata database (PostgreSQL like Astro when one answers on 127.0.0.1:5432, else SQLite)
and the ``airflow_settings.yaml`` seeding — natively from ``.venv``, plus the local dbt Cloud (:8443)
that the DAGs call. ``--executor celery`` swaps LocalExecutor for CeleryExecutor with two workers on
the local Redis: the distributed executor of a production deployment, same DAGs, no change.

``up`` returns once every component is healthy and leaves them running in the background; ``down``
stops them all, including their detached descendants, and frees the ports. Both are safe to repeat.
Everything lives in one state folder (``.state/`` by default, the Airflow home): the SQLite file if any,
secrets, pid records, task logs, ``logs/stack/<component>.log``, the local dbt Cloud's data and the task
data. On PostgreSQL each state folder owns its database (named in its ``secrets.json``); ``clean``
drops it.

    python -m localdev.stack up [--executor celery] [--state-dir DIR] [--api-port N] ...
    python -m localdev.stack status
    python -m localdev.stack down
    python -m localdev.stack clean   # drop the state folder's database (make clean then deletes the folder)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

from dbt_cloud_local.client import PORT_ENV
from localdev import metadata_db
from localdev.health import airflow_health, airflow_problems, dbt_cloud_problem, wait_until_ready
from localdev.processes import (
    ProcessRecord,
    forget_records,
    is_running,
    log_tail,
    port_owners,
    read_records,
    spawn,
    stack_members,
    stop,
)
from localdev.stack_env import (
    MEMBER_MARKER,
    base_environment,
    component_environment,
    load_or_create_secrets,
)
from localdev.stack_settings import REPO_ROOT, StackError, StackSettings, add_arguments, from_arguments

PORT_VARIABLES = {
    "api-server (UI)": "LOCALDEV_API_PORT",
    "local dbt Cloud": PORT_ENV,
    "task log server": "LOCALDEV_LOG_SERVER_PORT",
    "triggerer log server": "LOCALDEV_LOG_SERVER_PORT",
}
STEP_TIMEOUT = 600


def say(message: str) -> None:
    print(message, flush=True)


def components(settings: StackSettings) -> list[tuple[str, list[str]]]:
    """Name and command of each long-running component, in start order."""
    airflow = [sys.executable, "-m", "airflow"]
    result = [
        ("api-server", [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(settings.api_port),
                        "--workers", str(settings.api_workers)]),
        ("scheduler", [*airflow, "scheduler"]),
        ("dag-processor", [*airflow, "dag-processor"]),
        ("triggerer", [*airflow, "triggerer"]),
    ]  # fmt: skip
    if settings.executor == "celery":
        for number in range(1, settings.celery_workers + 1):
            name = f"celery-worker-{number}"
            argv = [
                *airflow, "celery", "worker", "--celery-hostname", f"worker{number}@%h",
                "--concurrency", str(settings.celery_concurrency),
                "--pid", str(settings.run_dir / f"{name}.pid"),
            ]  # fmt: skip
            if number > 1:
                # One log server (the first worker's, on the configured port) serves the shared log folder.
                argv.append("--skip-serve-logs")
            result.append((name, argv))
    return result


def dbt_cloud_command(settings: StackSettings, command: str) -> list[str]:
    argv = [sys.executable, "-m", "dbt_cloud_local", command, "--data-dir", str(settings.dbt_cloud_dir)]
    if command == "serve":
        argv += ["--host", "127.0.0.1", "--port", str(settings.dbt_cloud_port)]
    return argv


def _members(settings: StackSettings) -> set[int]:
    return stack_members(
        MEMBER_MARKER,
        settings.state_dir,
        [settings.dbt_cloud_dir],
        [settings.dbt_cloud_dir / "tls"],
        roots=read_records(settings.run_dir),
    )


@contextlib.contextmanager
def _exclusive(settings: StackSettings) -> Iterator[None]:
    """One ``up``/``down`` at a time per state folder."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with (settings.state_dir / ".stack.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise StackError(
                f"Another `localdev.stack up/down` is working on {settings.state_dir}; wait for it to finish."
            ) from exc
        yield


def _check_ports(settings: StackSettings) -> None:
    problems = []
    for label, port in settings.ports().items():
        owners = port_owners(port)
        if owners:
            problems.append(
                f"- port {port} ({label}) is in use by {'; '.join(owners)}.\n"
                f"  Stop that process (`kill <pid>`; if it is another local stack, `make down` in its "
                f"project or state folder), or move this stack's port with {PORT_VARIABLES[label]}=<port>."
            )
    if problems:
        raise StackError("Cannot start: ports are taken.\n" + "\n".join(problems))


def _check_celery(settings: StackSettings) -> None:
    missing = [
        name for name in ("airflow.providers.celery", "redis") if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise StackError(
            f"--executor celery needs {missing} in .venv: `.venv/bin/uv pip install --python "
            ".venv/bin/python apache-airflow-providers-celery==3.26.0 'celery[redis]==5.6.3'` (pins in "
            "constraints/local.lock once added), or use LocalExecutor: `make up`."
        )
    url = urlsplit(settings.redis_url)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    try:
        with socket.create_connection((host, port), timeout=2) as connection:
            if url.password is None:
                connection.sendall(b"PING\r\n")
                reply = connection.recv(64)
                if not reply.startswith(b"+PONG"):
                    raise StackError(
                        f"Redis at {host}:{port} refused PING ({reply[:40]!r}); if it needs a password, "
                        "set LOCALDEV_REDIS_URL=redis://:<password>@host:port/<db>."
                    )
    except OSError as exc:
        raise StackError(
            f"The Celery broker, Redis at {host}:{port}, does not answer ({exc}). Start Redis "
            "(e.g. `redis-server --daemonize yes`), point LOCALDEV_REDIS_URL at yours, or use "
            "LocalExecutor: `make up`."
        ) from exc


def _run_step(name: str, argv: list[str], env: dict[str, str], settings: StackSettings) -> str:
    """Run a one-off command to completion, logging to logs/stack/<name>.log; return its output."""
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log = settings.logs_dir / f"{name}.log"
    try:
        result = subprocess.run(
            argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"`{' '.join(argv[2:])}` did not finish in {STEP_TIMEOUT}s; see {log}.") from exc
    output = result.stdout + result.stderr
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with log.open("a") as handle:
        handle.write(f"\n===== {stamp} {' '.join(argv)} (exit {result.returncode})\n{output}")
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-25:])
        raise StackError(f"`{' '.join(argv[2:])}` failed (exit {result.returncode}); full log {log}:\n{tail}")
    return output


def _write_description(settings: StackSettings, db: metadata_db.MetadataDb, started_at: datetime) -> None:
    description = {
        "executor": settings.airflow_executor,
        "database": db.description,
        "api_url": settings.api_url,
        "dbt_cloud_url": settings.dbt_cloud_url,
        "ports": settings.ports(),
        "started_at": started_at.isoformat(),
    }
    (settings.run_dir / "stack.json").write_text(json.dumps(description, indent=2))


def _read_description(settings: StackSettings) -> dict:
    try:
        return json.loads((settings.run_dir / "stack.json").read_text())
    except (OSError, ValueError):
        return {}


def _command_hint(settings: StackSettings, command: str) -> str:
    if settings.state_dir == StackSettings().state_dir:
        return f"make {command}"
    return f"python -m localdev.stack {command} --state-dir {settings.state_dir}"


def up(settings: StackSettings) -> int:
    began = time.monotonic()
    with _exclusive(settings):
        records = read_records(settings.run_dir)
        running = [record for record in records if is_running(record)]
        if running and len(running) == len(records):
            executor = _read_description(settings).get("executor", settings.airflow_executor)
            if executor != settings.airflow_executor:
                raise StackError(
                    f"The stack in {settings.state_dir} is running with {executor}; to switch to "
                    f"{settings.airflow_executor}, run `{_command_hint(settings, 'down')}` first."
                )
            hint = _command_hint(settings, "status")
            say(f"The stack in {settings.state_dir} is already running; see `{hint}`.")
            return 0
        if running or _members(settings):
            dead = sorted({record.name for record in records} - {record.name for record in running})
            raise StackError(
                f"Part of a stack is still running from {settings.state_dir} (exited: {dead or 'unknown'}). "
                f"Stop it first with `{_command_hint(settings, 'down')}`, then start again."
            )
        forget_records(settings.run_dir)
        _check_ports(settings)
        if settings.executor == "celery":
            _check_celery(settings)
        settings, stack_secrets = _with_secrets(settings)
        db = metadata_db.choose(settings)
        env = component_environment(settings, db, stack_secrets)
        say(
            f"Starting the local Airflow stack ({settings.airflow_executor}, {db.description}) in "
            f"{settings.state_dir}; logs in {settings.logs_dir}/"
        )
        started_at = datetime.now(UTC)
        _run_step("dbt-cloud-tls", dbt_cloud_command(settings, "env"), env, settings)
        dbt_cloud = settings.dbt_cloud_access(env)
        if not dbt_cloud.ca_bundle.exists():
            raise StackError(
                f"`python -m dbt_cloud_local env` did not create the CA at {dbt_cloud.ca_bundle}; "
                "the local dbt Cloud (local/dbt_cloud_local/) is not usable yet."
            )
        started: list[ProcessRecord] = []
        try:
            started.append(_spawn("dbt-cloud-local", dbt_cloud_command(settings, "serve"), env, settings))
            say("  migrating the metadata database (airflow db migrate)...")
            _run_step("db-migrate", [sys.executable, "-m", "airflow", "db", "migrate"], env, settings)
            seeded = _seed(env, settings, db)
            for line in seeded.splitlines():
                if line.startswith(("Seeded from", "skipped")):
                    say(f"  {line}")
            for name, argv in components(settings):
                started.append(_spawn(name, argv, env, settings))
            _write_description(settings, db, started_at)
            say(f"  started {', '.join(record.name for record in started)}; waiting until healthy...")
            wait_until_ready(settings, started, dbt_cloud=dbt_cloud, started_at=started_at, say=say)
        except BaseException:
            say("Start-up failed: stopping what was started...")
            stop(started, lambda: _members(settings), grace=min(settings.stop_grace, 10), say=say)
            forget_records(settings.run_dir)
            raise
    elapsed = time.monotonic() - began
    say(
        f"\nLocal Airflow stack is up in {elapsed:.0f}s ({settings.airflow_executor}, {db.description}).\n"
        f"  Airflow UI      {settings.api_url}  (no login: SimpleAuthManager with every user admin, as "
        "`astro dev start`)\n"
        f"  REST API token  GET {settings.api_url}/auth/token  (no credentials needed)\n"
        f"  local dbt Cloud {settings.dbt_cloud_url}/deploy/  (Airflow connection dbt_cloud -> "
        f"localhost:{settings.dbt_cloud_port})\n"
        f"  Logs            {settings.logs_dir}/<component>.log, task logs in {settings.state_dir / 'logs'}\n"
        f"  Status / stop   {_command_hint(settings, 'status')} / {_command_hint(settings, 'down')}"
    )
    return 0


def _with_secrets(settings: StackSettings) -> tuple[StackSettings, dict[str, str]]:
    """The stack's secrets, and the settings with the state folder's own database unless one is set."""
    stack_secrets = load_or_create_secrets(settings.secrets_file)
    if settings.postgres_db is None:
        settings = replace(settings, postgres_db=stack_secrets["postgres_db"])
    return settings, stack_secrets


def _seed(env: dict[str, str], settings: StackSettings, db: metadata_db.MetadataDb) -> str:
    """Seed airflow_settings.yaml; a database written with another Fernet key gets a one-line answer."""
    try:
        return _run_step("seed", [sys.executable, "-m", "localdev.airflow_settings"], env, settings)
    except StackError as exc:
        if "InvalidToken" not in str(exc):
            raise
        raise StackError(
            f"The metadata database ({db.description}) holds connections encrypted with another Fernet key "
            f"than {settings.secrets_file}: it belongs to another checkout or an older state folder. Use "
            f"this folder's own database (unset LOCALDEV_POSTGRES_DB), or start that one afresh: "
            f"`{_command_hint(settings, 'clean')}` drops it."
        ) from None


def clean(settings: StackSettings) -> int:
    """Drop the state folder's own PostgreSQL database (``make clean`` then deletes the folder)."""
    if not settings.state_dir.exists():
        say(f"Nothing to clean: no {settings.state_dir}.")
        return 0
    with _exclusive(settings):
        if any(is_running(record) for record in read_records(settings.run_dir)) or _members(settings):
            hint = _command_hint(settings, "down")
            raise StackError(f"The stack is running from {settings.state_dir}: `{hint}` first.")
        if settings.postgres_db is None and not settings.secrets_file.exists():
            say("No database to drop (this state folder never started a stack).")
            return 0
        settings, _ = _with_secrets(settings)
        if metadata_db.drop_postgres_db(settings):
            say(f"Dropped PostgreSQL database {settings.postgres_db}.")
        else:
            say(f"No PostgreSQL database {settings.postgres_db} to drop.")
    return 0


def _spawn(name: str, argv: list[str], env: dict[str, str], settings: StackSettings) -> ProcessRecord:
    return spawn(name, argv, env=env, cwd=REPO_ROOT, logs_dir=settings.logs_dir, run_dir=settings.run_dir)


def down(settings: StackSettings) -> int:
    began = time.monotonic()
    if not settings.state_dir.exists():
        say(f"Nothing is running from {settings.state_dir} (no such folder).")
        return 0
    with _exclusive(settings):
        records = read_records(settings.run_dir)
        description = _read_description(settings)
        stopping = [record for record in records if is_running(record)] or _members(settings)
        if not stopping:
            forget_records(settings.run_dir)
            say(f"Nothing is running from {settings.state_dir}.")
            return 0
        survivors = stop(records, lambda: _members(settings), grace=settings.stop_grace, say=say)
        if survivors:
            raise StackError(
                "These processes survived SIGKILL (stuck in the kernel?); check them with `ps`:\n"
                + "\n".join(survivors)
            )
        forget_records(settings.run_dir)
        ports = description.get("ports") or settings.ports()
        deadline = time.monotonic() + 5
        held = {label: port_owners(port) for label, port in ports.items()}
        while any(held.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
            held = {label: port_owners(port) for label, port in ports.items()}
        held = {label: owners for label, owners in held.items() if owners}
        if held:
            raise StackError(
                "Stopped the stack, but its ports are still held by other processes: "
                + "; ".join(
                    f"{ports[label]} ({label}) by {', '.join(owners)}" for label, owners in held.items()
                )
            )
    say(f"Stopped the local Airflow stack in {time.monotonic() - began:.1f}s; its ports are free.")
    return 0


def status(settings: StackSettings) -> int:
    """Exit 0: running and healthy; 1: degraded; 3: not running (as LSB init scripts do)."""
    records = read_records(settings.run_dir)
    if not records:
        say(f"Not running (no components recorded in {settings.run_dir}).")
        return 3
    description = _read_description(settings)
    executor, database = description.get("executor", "?"), description.get("database", "?")
    say(f"Stack in {settings.state_dir}: {executor}, {database}")
    healthy = True
    for record in records:
        alive = is_running(record)
        healthy &= alive
        say(f"  {record.name:<16} pid {record.pid:<8} {'running' if alive else 'EXITED'}  log {record.log}")
        if not alive:
            say("    " + log_tail(record, 5).replace("\n", "\n    "))
    try:
        started_at = datetime.fromisoformat(description.get("started_at", "1970-01-01T00:00:00+00:00"))
        problems = airflow_problems(airflow_health(settings), started_at)
    except (OSError, ValueError) as exc:
        problems = {"api-server": f"health endpoint not answering ({exc})"}
    problem = dbt_cloud_problem(settings.dbt_cloud_access(base_environment(settings)))
    if problem:
        problems["dbt-cloud-local"] = problem
    for name, reason in problems.items():
        say(f"  unhealthy: {name}: {reason}")
    healthy &= not problems
    if healthy:
        say(f"Healthy. Airflow UI: {settings.api_url}")
    return 0 if healthy else 1


def airflow_cli(settings: StackSettings, arguments: list[str]) -> int:
    """Run an ``airflow`` CLI command against the stack: its metadata DB, config and connections."""
    settings, stack_secrets = _with_secrets(settings)
    db = metadata_db.choose(settings)
    env = component_environment(settings, db, stack_secrets)
    argv = [sys.executable, "-m", "airflow", *(arguments[1:] if arguments[:1] == ["--"] else arguments)]
    return subprocess.call(argv, env=env, cwd=REPO_ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.stack", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("up", "start the stack in the background and wait until it is healthy"),
        ("down", "stop everything the stack started and free its ports"),
        ("status", "show components and health"),
        ("clean", "drop the state folder's own PostgreSQL database (the stack must be down)"),
    ):
        add_arguments(commands.add_parser(name, help=help_text))
    airflow = commands.add_parser("airflow", help="run an airflow CLI command against the stack")
    add_arguments(airflow)
    airflow.add_argument("arguments", nargs=argparse.REMAINDER, help="e.g. tasks clear DAG_ID -t TASK_ID")
    args = parser.parse_args(argv)
    try:
        settings = from_arguments(args)
        if args.command == "airflow":
            return airflow_cli(settings, args.arguments)
        return {"up": up, "down": down, "status": status, "clean": clean}[args.command](settings)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
