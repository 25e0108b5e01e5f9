"""The per-model report and asset naming, on real artifacts of the eltml job (fixtures/: make_fixtures.py).

``good`` is a successful run (``dbt seed``, ``dbt build``, ``dbt docs generate``); ``failed`` the same
job with ``stg_orders`` made to fail. The counts line is checked against the one dbt itself logged in
that step, so the report and dbt agree by construction, not by a copy of dbt's rules.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from include.dbt_cloud_models import (
    RUN_URL,
    Relation,
    StepOutcome,
    asset_uri,
    built_nodes,
    counts_line,
    dbt_steps,
    first_error_line,
    format_step,
    log_run_results,
    manifest_relations,
    step_outcome,
)
from include.rerun_parser.errors import ArtifactError

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _load(run: str, name: str) -> Any:
    return json.loads((FIXTURES / run / name).read_text())


def _steps(run: str) -> list[StepOutcome]:
    steps = _load(run, "run.json")["run_steps"]
    return [
        step_outcome(index, name, _load(run, f"step{index}_run_results.json"))
        for index, name in dbt_steps({"run_steps": steps})
    ]


@pytest.mark.parametrize("run", ["good", "failed"])
def test_counts_line_matches_what_dbt_logged_for_each_step(run: str):
    logged = {step["index"]: step["dbt_done_line"] for step in _load(run, "run.json")["run_steps"]}
    for step in _steps(run):
        if logged[step.index] is None:  # dbt docs generate prints no counts line
            assert step.command == "generate"
            continue
        assert counts_line(step.nodes) == logged[step.index]


def test_failed_step_table_names_the_cause_and_every_node():
    build = next(step for step in _steps("failed") if step.command == "build")
    table = format_step(build).splitlines()

    assert table[0] == "Step 2: Invoke dbt with `dbt build`"
    assert table[1].split() == ["node", "type", "status", "time", "error"]
    assert len(table) == 2 + len(build.nodes) + 1, "title, header, one row per node, counts"
    failed_row = next(line for line in table if "jaffle_shop.stg_orders " in line)
    # The cause, not dbt's "Runtime Error in model stg_orders (models/...)" header line.
    assert failed_row.split()[1:3] == ["model", "error"]
    assert failed_row.endswith(
        "Invalid Input Error: DBT_FAIL_MODEL asked jaffle_shop.stg_orders to fail (demo failure switch)"
    )
    skipped = next(line for line in table if "jaffle_shop.customer_features " in line)
    assert skipped.split()[1:3] == ["model", "skipped"]
    assert table[-1].strip().startswith("Done in ")
    assert table[-1].endswith("PASS=35 WARN=0 ERROR=1 SKIP=19 NO-OP=0 TOTAL=55")
    # Columns line up: every row's status starts where the header's does.
    column = table[1].index("status")
    assert all(line[column - 2 : column] == "  " for line in table[1:-1])


def test_labels_are_what_dbt_prints_versions_packages_and_tests_without_hash():
    labels = {node.unique_id: node.label for step in _steps("good") for node in step.nodes}
    assert labels["model.jaffle_shop.dim_customers.v2"] == "jaffle_shop.dim_customers.v2"
    assert labels["model.jaffle_utils.stg_payments"] == "jaffle_utils.stg_payments"
    assert (
        labels["test.jaffle_shop.unique_orders_order_id.fed79b3a6e"] == "jaffle_shop.unique_orders_order_id"
    )


def test_built_nodes_are_successful_models_seeds_snapshots_of_build_steps_only():
    good = built_nodes(_steps("good"))
    assert all(uid.split(".")[0] in ("model", "seed", "snapshot") for uid in good)
    assert "model.jaffle_shop.customer_features" in good
    assert good["seed.jaffle_shop.countries"][0].index == 2, "the last step that built it (build, not seed)"
    assert all(step.command != "generate" for step, _ in good.values()), "docs generate builds nothing"
    assert good["seed.jaffle_shop.countries"][1].rows_affected > 0

    failed = built_nodes(_steps("failed"))
    assert set(failed) < set(good)
    assert "model.jaffle_shop.stg_orders" not in failed  # error
    assert "model.jaffle_shop.customer_features" not in failed  # skipped
    assert "model.jaffle_shop.stg_customers" in failed


def test_duckdb_uris_name_database_schema_table_not_the_file():
    adapter, relations = manifest_relations(_load("good", "build_manifest.json"))
    assert adapter == "duckdb"
    connection = {"type": "duckdb", "details": {"path": "/any/where/jaffle_shop.duckdb"}}

    def uri(uid: str) -> str:
        return asset_uri(adapter, connection, relations[uid], account_id=1, project_id=1, unique_id=uid)

    assert uri("model.jaffle_shop.customer_features") == "duckdb://jaffle_shop/main/customer_features"
    assert uri("model.jaffle_utils.stg_payments") == "duckdb://jaffle_shop/main_utils/stg_payments"
    assert uri("model.jaffle_shop.dim_customers.v1") == "duckdb://jaffle_shop/main/dim_customers_v1"
    assert uri("snapshot.jaffle_shop.customers_snapshot") == (
        "duckdb://jaffle_shop/main_snapshots/customers_snapshot"
    )
    # A dbt Cloud project whose connection type the API does not name still gets the manifest's adapter.
    adapter_connection = {"type": "adapter", "details": {}}
    customer_features = relations["model.jaffle_shop.customer_features"]
    assert asset_uri(
        adapter, adapter_connection, customer_features, account_id=1, project_id=1, unique_id="x"
    ) == ("duckdb://jaffle_shop/main/customer_features")


@pytest.mark.parametrize(
    ("connection", "relation", "expected"),
    [
        (
            {"type": "snowflake", "details": {"account": "AB12345.eu-west-1", "database": "ANALYTICS"}},
            Relation("ANALYTICS", "MARTS", "CUSTOMERS"),
            "snowflake://ab12345.eu-west-1/ANALYTICS/MARTS/CUSTOMERS",
        ),
        (
            {"type": "postgres", "details": {"hostname": "db.internal", "port": 5433, "dbname": "wh"}},
            Relation("wh", "marts", "customers"),
            "postgres://db.internal:5433/wh/marts/customers",
        ),
        (
            {"type": "bigquery", "details": {}},
            Relation("my-project", "marts", "customers"),
            "bigquery://my-project/marts/customers",
        ),
        # An adapter without a table URI convention here, or a node without a relation: a dbt URI.
        (
            {"type": "adapter", "details": {}},
            Relation("main", "marts", "customers"),
            "dbt://accounts/7/projects/9/model.shop.customers",
        ),
        ({"type": "snowflake", "details": {}}, None, "dbt://accounts/7/projects/9/model.shop.customers"),
    ],
)
def test_uris_of_other_warehouses(connection, relation, expected):
    uri = asset_uri(None, connection, relation, account_id=7, project_id=9, unique_id="model.shop.customers")
    assert uri == expected


def test_first_error_line_skips_dbts_header_and_shortens():
    assert first_error_line("Database Error in model x (models/x.sql)\n  relation y does not exist") == (
        "relation y does not exist"
    )
    assert first_error_line("Got 3 results, configured to fail if != 0") == (
        "Got 3 results, configured to fail if != 0"
    )
    assert first_error_line(None) is None
    assert len(first_error_line("x" * 500)) == 160


def test_malformed_run_results_are_named():
    with pytest.raises(ArtifactError, match=r"run_results\.json of step 2"):
        step_outcome(2, "Invoke dbt with `dbt build`", {"metadata": {}, "results": []})


def test_log_run_results_never_raises_it_warns(monkeypatch):
    """A real fault: the task's connection does not exist, so the hook cannot reach dbt Cloud."""
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook

    monkeypatch.delenv("AIRFLOW_CONN_NO_SUCH_DBT_CLOUD", raising=False)
    # A handler on the module's logger: Airflow's logging setup decides where the root's output goes.
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("include.dbt_cloud_models")
    logger.addHandler(handler)
    try:
        log_run_results(DbtCloudHook("no_such_dbt_cloud"), 1, 42)
    finally:
        logger.removeHandler(handler)
    messages = [record.getMessage() for record in records]
    assert any(
        "Could not report the nodes of dbt Cloud run 42: The conn_id `no_such_dbt_cloud`" in m
        for m in messages
    )


@pytest.mark.parametrize(
    ("url", "run_id"),
    [
        ("https://cloud.getdbt.com/deploy/16173/projects/36467/runs/70403103826/", 70403103826),
        ("https://localhost:8443/deploy/1/projects/1/runs/12/", 12),
        ("https://emea.dbt.com/deploy/1/projects/2/runs/3", 3),
        ("https://cloud.getdbt.com/deploy/1/projects/2/jobs/3/", None),
    ],
)
def test_run_id_from_the_providers_job_run_url(url: str, run_id: int | None):
    """The provider's operator pushes ``job_run_url`` before waiting; the run id is read from it when
    the task pushed no ``dbt_cloud_run_id`` (a stock operator whose run failed)."""
    found = RUN_URL.search(url)
    assert (int(found.group(1)) if found else None) == run_id
