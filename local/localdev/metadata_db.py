"""Pick the stack's metadata database: PostgreSQL when one answers (as ``astro dev start``), else SQLite.

Postgres is what the Astro CLI runs and what the scheduler, the Celery result backend and several
concurrent writers are built for, so it is used whenever a server is reachable; the database is created
on first use. SQLite keeps the stack usable on a laptop without a database server. ``--database``
forces either one. Passwords in URLs are never printed: :attr:`MetadataDb.description` is masked.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from localdev.stack_settings import StackError, StackSettings


@dataclass(frozen=True)
class MetadataDb:
    kind: str
    #: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
    sqlalchemy_url: str
    #: AIRFLOW__CELERY__RESULT_BACKEND: Celery's database backend on the same database.
    celery_result_backend: str
    #: Safe to print: no password.
    description: str


def sqlite_db(state_dir: Path) -> MetadataDb:
    path = state_dir / "airflow.db"
    return MetadataDb("sqlite", f"sqlite:///{path}", f"db+sqlite:///{path}", f"SQLite {path}")


def _tcp_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _admin_connection(settings: StackSettings):
    """A connection to the server's ``postgres`` database; StackError naming the fix otherwise."""
    server = urlsplit(settings.postgres_url)
    if server.scheme not in ("postgresql", "postgres") or not server.hostname:
        raise StackError(
            f"--postgres-url must look like postgresql://user[:password]@host:port, got "
            f"{_masked(settings.postgres_url)!r}."
        )
    missing = [name for name in ("psycopg2", "asyncpg") if not _importable(name)]
    if missing:
        raise StackError(
            f"PostgreSQL answers at {server.hostname}:{server.port or 5432} but the drivers {missing} are "
            "not installed in .venv (Airflow 3 needs psycopg2 and asyncpg for Postgres). Install them with "
            "`.venv/bin/uv pip install --python .venv/bin/python psycopg2-binary asyncpg` (versions in "
            "constraints/local.lock), or run on SQLite: `make up LOCALDEV_DB=sqlite`."
        )
    import psycopg2

    try:
        connection = psycopg2.connect(
            host=server.hostname,
            port=server.port or 5432,
            user=server.username or "postgres",
            password=server.password,
            dbname="postgres",
            connect_timeout=5,
        )
    except psycopg2.Error as exc:
        raise StackError(
            f"Cannot log in to PostgreSQL at {_masked(settings.postgres_url)}: {str(exc).strip()}. Fix the "
            "URL with LOCALDEV_POSTGRES_URL=postgresql://user:password@host:port, or use SQLite: "
            "LOCALDEV_DB=sqlite."
        ) from exc
    connection.autocommit = True
    return connection


def postgres_db(settings: StackSettings) -> MetadataDb:
    """Create ``settings.postgres_db`` on the server if needed; raise StackError naming the fix."""
    import psycopg2
    from psycopg2 import sql

    if not settings.postgres_db:
        raise StackError("No PostgreSQL database name: set LOCALDEV_POSTGRES_DB or let the stack pick one.")
    connection = _admin_connection(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.postgres_db,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.postgres_db)))
    except psycopg2.Error as exc:
        raise StackError(
            f"Cannot create database {settings.postgres_db!r} on {_masked(settings.postgres_url)}: "
            f"{str(exc).strip()}. Create it yourself or grant CREATEDB to the user."
        ) from exc
    finally:
        connection.close()
    netloc = urlsplit(settings.postgres_url).netloc
    url = f"postgresql+psycopg2://{netloc}/{settings.postgres_db}"
    return MetadataDb(
        "postgres",
        url,
        f"db+postgresql+psycopg2://{netloc}/{settings.postgres_db}",
        f"PostgreSQL {_masked(url)}",
    )


def drop_postgres_db(settings: StackSettings) -> bool:
    """Drop ``settings.postgres_db`` when a server answers and holds it; True when it was dropped."""
    server = urlsplit(settings.postgres_url)
    if not settings.postgres_db or not _tcp_reachable(server.hostname or "", server.port or 5432):
        return False
    import psycopg2
    from psycopg2 import sql

    connection = _admin_connection(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.postgres_db,))
            if cursor.fetchone() is None:
                return False
            cursor.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(settings.postgres_db))
            )
            return True
    except psycopg2.Error as exc:
        raise StackError(f"Cannot drop database {settings.postgres_db!r}: {str(exc).strip()}.") from exc
    finally:
        connection.close()


def choose(settings: StackSettings) -> MetadataDb:
    """Postgres if forced or reachable, SQLite if forced or no server answers."""
    if settings.database == "sqlite":
        return sqlite_db(settings.state_dir)
    server = urlsplit(settings.postgres_url)
    reachable = bool(server.hostname) and _tcp_reachable(server.hostname or "", server.port or 5432)
    if reachable:
        return postgres_db(settings)
    if settings.database == "postgres":
        raise StackError(
            f"No PostgreSQL answers at {server.hostname}:{server.port or 5432}. Start it, point "
            "LOCALDEV_POSTGRES_URL at yours, or use LOCALDEV_DB=sqlite (or auto)."
        )
    return sqlite_db(settings.state_dir)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
