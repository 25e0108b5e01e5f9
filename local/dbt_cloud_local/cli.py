"""
Command line: ``serve``, ``env`` (client trust settings) and ``env-var`` (offline variable edits).

Examples::

    python -m dbt_cloud_local serve --host 127.0.0.1 --port 8443 --data-dir .state/dbt-cloud-local
    eval "$(python -m dbt_cloud_local env --data-dir .state/dbt-cloud-local)"
    python -m dbt_cloud_local env-var set DBT_FAIL_MODEL stg_orders --environment Production \
        --data-dir .state/dbt-cloud-local
    python -m dbt_cloud_local env-var unset DBT_FAIL_MODEL --data-dir .state/dbt-cloud-local
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from dbt_cloud_local.client import DEFAULT_PORT
from dbt_cloud_local.config.loader import load_config
from dbt_cloud_local.config.serving import require_writable_dir, validate_for_serving
from dbt_cloud_local.config.settings import ConfigError
from dbt_cloud_local.faults import parse_fault_settings
from dbt_cloud_local.model.env_vars import PROJECT_KEY, EnvVarError, validate_name
from dbt_cloud_local.store import env_vars
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.tls import client_env_lines, ensure_certificates, tls_paths

DEFAULT_DATA_DIR = ".state/dbt-cloud-local"  # the project's one home of local state
ENV_PUBLIC_URL = "DBT_CLOUD_LOCAL_PUBLIC_URL"


def _public_url(value: str) -> str:
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/"):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a base URL; give scheme and host only, e.g. https://localhost:8443"
        )
    return value.rstrip("/")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR), help="state, TLS and run files"
    )
    parser.add_argument("--config", type=Path, default=None, help="config YAML (default: the packaged one)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dbt_cloud_local", description="A local dbt Cloud server."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTPS API server")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--access-log", action="store_true", help="log every request (off: faster under load)")
    serve.add_argument("--fault-latency-ms", type=int, help="add this latency to every API request")
    serve.add_argument(
        "--fault-error-rate", type=float, help="fraction of API requests answered with an error"
    )
    serve.add_argument(
        "--fault-error-status", type=int, action="append", help="status for --fault-error-rate (repeatable)"
    )
    serve.add_argument("--fault-seed", type=int, help="seed the fault random generator")
    serve.add_argument(
        "--public-url",
        type=_public_url,
        default=os.environ.get(ENV_PUBLIC_URL) or None,
        help=f"base of run links (href), e.g. https://localhost:8443 when clients reach the server by "
        f"another name (default: ${ENV_PUBLIC_URL}, else the address each client used)",
    )

    health = commands.add_parser("health", help="exit 0 when the server answers over HTTPS (healthchecks)")
    health.add_argument(
        "--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR), help="the server's data dir (its CA)"
    )
    health.add_argument("--port", type=int, default=DEFAULT_PORT)

    env = commands.add_parser("env", help="print the export lines clients need to trust the server")
    _common(env)

    env_var = commands.add_parser("env-var", help="set, unset or list project environment variables offline")
    actions = env_var.add_subparsers(dest="action", required=True)
    for action in ("set", "unset", "list"):
        sub = actions.add_parser(action)
        _common(sub)
        sub.add_argument("--project", type=int, default=None, help="project id (default: the first project)")
        if action != "list":
            sub.add_argument("name")
            sub.add_argument(
                "--environment",
                default=None,
                help="environment name, or 'project' for the project default "
                "(set: default 'project'; unset: default every scope)",
            )
        if action == "set":
            sub.add_argument("value")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from dbt_cloud_local.server import serve  # uvicorn is only needed here

    config = load_config(args.config)
    validate_for_serving(config, args.data_dir)
    faults = config.faults
    overrides = faults.as_dict()
    if args.fault_latency_ms is not None:
        overrides["latency_ms"] = args.fault_latency_ms
    if args.fault_error_rate is not None:
        overrides["error_rate"] = args.fault_error_rate
    if args.fault_error_status:
        overrides["error_statuses"] = args.fault_error_status
    if args.fault_seed is not None:
        overrides["seed"] = args.fault_seed
    faults = replace(
        parse_fault_settings({k: v for k, v in overrides.items() if k != "rules"}), rules=faults.rules
    )
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve(
        config,
        args.data_dir,
        host=args.host,
        port=args.port,
        faults=faults,
        log_level=args.log_level,
        access_log=args.access_log,
        public_url=args.public_url,
    )
    return 0


def _health(args: argparse.Namespace) -> int:
    """Ask the running server over HTTPS, trusting its own CA: what a container healthcheck runs."""
    import ssl
    import urllib.request

    url = f"https://localhost:{args.port}/_local/health"
    try:
        trust = ssl.create_default_context(cafile=str(tls_paths(args.data_dir.resolve()).ca_cert))
        with urllib.request.urlopen(url, context=trust, timeout=5) as response:
            print(f"{url}: HTTP {response.status}")
            return 0
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


def _env(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    data_dir = require_writable_dir(args.data_dir)
    tls = ensure_certificates(data_dir, config.server.extra_hostnames)
    print("\n".join(client_env_lines(tls.client_bundle)))
    return 0


def _env_var(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    project_id = args.project or min(config.projects)
    if project_id not in config.projects:
        raise EnvVarError(f"unknown project {project_id}; known: {sorted(config.projects)}")
    store = Store(require_writable_dir(args.data_dir) / "state.sqlite3")
    try:
        if args.action == "set":
            scope = args.environment or PROJECT_KEY
            env_vars.set_values(config, store, project_id, args.name, {scope: args.value})
            print(f"Set {args.name} for {scope} in project {project_id}.")
        elif args.action == "unset":
            name = validate_name(args.name, allow_reserved=True)  # stale reserved ones too
            scope_id = (
                None if args.environment is None else env_vars.scope_id(config, project_id, args.environment)
            )
            removed = store.unset_env_var(project_id, name, scope_id)
            print(f"Removed {removed} value(s) of {name} in project {project_id}.")
        else:
            data = env_vars.describe(config, store, project_id)
            print(json.dumps(data, indent=2))
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"serve": _serve, "health": _health, "env": _env, "env-var": _env_var}
    try:
        return handlers[args.command](args)
    except (ConfigError, EnvVarError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:
        # e.g. a state file another process locks, or a disk that fills up: one line, no traceback.
        print(
            f"error: {exc}. Fix: check --data-dir {args.data_dir} (permissions, free space).", file=sys.stderr
        )
        return 2
