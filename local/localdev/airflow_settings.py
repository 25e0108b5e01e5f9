"""Seed connections, variables and pools from ``airflow_settings.yaml``, as ``astro dev start`` does.

One file serves both paths. The schema and the upsert semantics follow the Astro CLI: an object that
exists is overwritten with the file's values; a connection needs ``conn_id`` and ``conn_type`` (or a
``conn_uri``); a variable with an empty value and a pool with no slots are skipped; ``conn_extra`` may
be a JSON string (preferred: the CLI lower-cases keys of a YAML map) or a map.

Run: ``python -m localdev.airflow_settings [airflow_settings.yaml]`` (``make up`` does).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "airflow_settings.yaml"
_CONNECTION_FIELDS = {
    "conn_type": "conn_type",
    "conn_host": "host",
    "conn_schema": "schema",
    "conn_login": "login",
    "conn_password": "password",
    "conn_port": "port",
}


class SettingsFileError(ValueError):
    """airflow_settings.yaml does not have the shape the Astro CLI expects."""


@dataclass
class SeedReport:
    connections: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    pools: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def read_settings(path: Path = DEFAULT_FILE) -> dict[str, list[dict[str, Any]]]:
    """Parse the file and return its ``connections``, ``variables`` and ``pools`` lists."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsFileError(f"Cannot read {path}: {exc}") from exc
    airflow = document.get("airflow") or {}
    if not isinstance(airflow, dict):
        raise SettingsFileError(f"{path}: top-level key 'airflow' must be a mapping.")
    settings = {}
    for key in ("connections", "variables", "pools"):
        items = airflow.get(key) or []
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise SettingsFileError(f"{path}: 'airflow.{key}' must be a list of mappings.")
        settings[key] = items
    return settings


def connection_fields(item: dict[str, Any]) -> dict[str, Any] | None:
    """Map one ``connections[]`` entry to Connection keyword arguments; None when it must be skipped."""
    if not item.get("conn_id") or not (item.get("conn_type") or item.get("conn_uri")):
        return None
    if item.get("conn_uri") and not any(item.get(k) for k in _CONNECTION_FIELDS):
        return {"conn_id": str(item["conn_id"]), "uri": str(item["conn_uri"])}
    fields: dict[str, Any] = {"conn_id": str(item["conn_id"])}
    for yaml_key, attribute in _CONNECTION_FIELDS.items():
        value = item.get(yaml_key)
        if value not in (None, ""):
            fields[attribute] = int(value) if attribute == "port" else str(value)
    extra = item.get("conn_extra")
    if isinstance(extra, dict):
        fields["extra"] = json.dumps({str(k): v for k, v in extra.items()})
    elif isinstance(extra, str) and extra.strip():
        try:
            json.loads(extra)
        except json.JSONDecodeError as exc:
            raise SettingsFileError(
                f"conn_extra of connection {item['conn_id']!r} is not valid JSON ({exc}); "
                'write it as a JSON string, e.g. conn_extra: \'{"key": "value"}\'.'
            ) from exc
        fields["extra"] = extra
    return fields


def seed(path: Path = DEFAULT_FILE) -> SeedReport:
    """Upsert everything in the file into the Airflow metadata DB; return what was written."""
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    settings = read_settings(path)
    report = SeedReport()
    with create_session() as session:
        for item in settings["connections"]:
            fields = connection_fields(item)
            if fields is None:
                report.skipped.append(f"connection {item.get('conn_id')!r}: needs conn_id and conn_type")
                continue
            existing = session.query(Connection).filter(Connection.conn_id == fields["conn_id"]).one_or_none()
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(Connection(**fields))
            report.connections.append(fields["conn_id"])
        for item in settings["variables"]:
            key, value = item.get("variable_name"), item.get("variable_value")
            if not key or value in (None, ""):
                report.skipped.append(f"variable {key!r}: needs variable_name and a non-empty variable_value")
                continue
            existing = session.query(Variable).filter(Variable.key == str(key)).one_or_none()
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(Variable(key=str(key), val=str(value), description=item.get("description")))
            report.variables.append(str(key))
        for item in settings["pools"]:
            name, slots = item.get("pool_name"), int(item.get("pool_slot") or 0)
            if not name or slots == 0:
                report.skipped.append(f"pool {name!r}: needs pool_name and pool_slot > 0")
                continue
            Pool.create_or_update_pool(
                name=str(name),
                slots=slots,
                description=str(item.get("pool_description") or ""),
                include_deferred=False,
                session=session,
            )
            report.pools.append(str(name))
    return report


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_FILE
    try:
        report = seed(path)
    except SettingsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"Seeded from {path}: connections {report.connections}, variables {report.variables}, "
        f"pools {report.pools}"
    )
    for reason in report.skipped:
        print(f"skipped {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
