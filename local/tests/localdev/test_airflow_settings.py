"""Seeding airflow_settings.yaml into a real Airflow metadata DB, with the Astro CLI's semantics."""

from __future__ import annotations

import json
import textwrap

import pytest

from localdev.airflow_settings import DEFAULT_FILE, SettingsFileError, read_settings, seed


def _write(tmp_path, body: str):
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_project_file_seeds_the_dbt_cloud_connection(airflow_db):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    report = seed(DEFAULT_FILE)

    assert "dbt_cloud" in report.connections
    with create_session() as session:
        conn = session.query(Connection).filter(Connection.conn_id == "dbt_cloud").one()
        assert conn.conn_type == "dbt_cloud"
        assert conn.login == "1"
        assert conn.host == "dbt-cloud-local:8443"
        assert conn.extra_dejson == {}


def test_seeding_twice_overwrites_like_astro_dev_start(airflow_db, tmp_path):
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    first = _write(
        tmp_path,
        """
        airflow:
          connections:
            - {conn_id: seeded_conn, conn_type: http, conn_host: a.example, conn_extra: '{"Key": 1}'}
          variables:
            - {variable_name: seeded_var, variable_value: one}
          pools:
            - {pool_name: seeded_pool, pool_slot: 2, pool_description: first}
        """,
    )
    seed(first)
    second = _write(
        tmp_path,
        """
        airflow:
          connections:
            - conn_id: seeded_conn
              conn_type: http
              conn_host: b.example
              conn_port: 8443
              conn_extra: {Key: 2}
            - {conn_id: no_type}
          variables:
            - {variable_name: seeded_var, variable_value: two}
            - {variable_name: empty_var, variable_value: ""}
          pools:
            - {pool_name: seeded_pool, pool_slot: 5}
            - {pool_name: zero_pool, pool_slot: 0}
        """,
    )
    report = seed(second)

    assert len(report.skipped) == 3
    with create_session() as session:
        conns = session.query(Connection).filter(Connection.conn_id == "seeded_conn").all()
        assert len(conns) == 1
        assert (conns[0].host, conns[0].port) == ("b.example", 8443)
        assert json.loads(conns[0].extra) == {"Key": 2}, "keys keep their case"
        assert session.query(Variable).filter(Variable.key == "seeded_var").one().val == "two"
        assert session.query(Variable).filter(Variable.key == "empty_var").one_or_none() is None
        assert session.query(Pool).filter(Pool.pool == "seeded_pool").one().slots == 5
        assert session.query(Pool).filter(Pool.pool == "zero_pool").one_or_none() is None


def test_invalid_extra_json_names_the_connection_and_the_fix(tmp_path):
    path = _write(
        tmp_path,
        """
        airflow:
          connections:
            - {conn_id: broken, conn_type: http, conn_extra: '{not json'}
        """,
    )
    with pytest.raises(SettingsFileError, match=r"conn_extra of connection 'broken' is not valid JSON"):
        seed(path)


def test_wrong_shape_is_reported_with_the_key(tmp_path):
    with pytest.raises(SettingsFileError, match=r"'airflow.connections' must be a list"):
        read_settings(_write(tmp_path, "airflow:\n  connections: {conn_id: x}\n"))
