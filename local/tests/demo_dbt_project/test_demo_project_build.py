"""The demo dbt project, run for real: what the pipeline and the rerun demos rely on."""

from __future__ import annotations

import json

import pytest
from dbt_harness import DemoWarehouse, prepare_project, run_dbt

HOURLY_MODELS = {
    "model.jaffle_shop.stg_orders",
    "model.jaffle_shop.stg_payments",
    "model.jaffle_shop.orders",
    "model.jaffle_utils.stg_payments",
}
DOWNSTREAM_OF_STG_ORDERS = {
    "model.jaffle_shop.orders",
    "model.jaffle_shop.customers",
    "model.jaffle_shop.customer_features",
}


@pytest.fixture(scope="module")
def raw_warehouse(tmp_path_factory) -> DemoWarehouse:
    prepare_project(tmp_path_factory.mktemp("dbt-parse"))
    return DemoWarehouse.create(tmp_path_factory.mktemp("loaded-warehouse"))


@pytest.fixture(scope="module")
def built_warehouse(raw_warehouse, tmp_path_factory):
    folder = tmp_path_factory.mktemp("full-build")
    warehouse = raw_warehouse.copy_to(folder)
    return warehouse, run_dbt(["build"], warehouse, folder / "target")


def test_full_build_succeeds_with_every_kind_of_node(built_warehouse):
    _, build = built_warehouse
    assert build.returncode == 0, build.output
    statuses = build.statuses()
    assert set(statuses.values()) <= {"success", "pass"}
    kinds = {unique_id.split(".")[0] for unique_id in statuses}
    assert kinds == {"model", "seed", "snapshot", "test", "unit_test"}
    assert {"model.jaffle_shop.dim_customers.v1", "model.jaffle_shop.dim_customers.v2"} <= set(statuses)
    assert {"model.jaffle_shop.stg_payments", "model.jaffle_utils.stg_payments"} <= set(statuses)


def test_marts_have_one_row_per_customer_and_per_order(built_warehouse, raw_warehouse):
    warehouse, _ = built_warehouse
    [(raw_customers, raw_orders, raw_payments)] = raw_warehouse.query(
        "select (select count(*) from raw.customers), (select count(*) from raw.orders),"
        " (select count(*) from raw.payments)"
    )
    counts = dict(
        warehouse.query(
            "select 'customers', count(*) from main.customers"
            " union all select 'orders', count(*) from main.orders"
            " union all select 'customer_features', count(*) from main.customer_features"
            " union all select 'dim_customers_v2', count(*) from main.dim_customers_v2"
            " union all select 'package_stg_payments', count(*) from main_utils.stg_payments"
            " union all select 'customers_snapshot', count(*) from main_snapshots.customers_snapshot"
        )
    )
    assert counts == {
        "customers": raw_customers,
        "orders": raw_orders,
        "customer_features": raw_customers,
        "dim_customers_v2": raw_customers,
        "package_stg_payments": raw_payments,
        "customers_snapshot": raw_customers,
    }
    assert (raw_customers, raw_orders) == (1000, 6117)


def test_customer_features_has_both_label_values_and_money_adds_up(built_warehouse):
    warehouse, _ = built_warehouse
    labels = dict(
        warehouse.query("select label_purchased_in_window, count(*) from main.customer_features group by 1")
    )
    assert set(labels) == {0, 1}
    assert min(labels.values()) > 100  # a learnable split, not a handful of positives
    [(lifetime_value, kept_order_value)] = warehouse.query(
        "select (select sum(customer_lifetime_value) from main.customers),"
        " (select sum(amount) from main.orders where status != 'returned')"
    )
    assert lifetime_value == kept_order_value


def test_fail_model_switch_errors_that_model_and_skips_its_downstream(raw_warehouse, tmp_path):
    warehouse = raw_warehouse.copy_to(tmp_path)
    build = run_dbt(["build"], warehouse, tmp_path / "target", {"DBT_FAIL_MODEL": "stg_orders"})
    assert build.returncode == 1
    results = {result["unique_id"]: result for result in build.run_results()["results"]}
    failed = results["model.jaffle_shop.stg_orders"]
    assert failed["status"] == "error"
    assert "DBT_FAIL_MODEL asked jaffle_shop.stg_orders to fail" in failed["message"]
    assert {results[node]["status"] for node in DOWNSTREAM_OF_STG_ORDERS} == {"skipped"}
    assert results["model.jaffle_shop.stg_customers"]["status"] == "success"
    assert results["model.jaffle_shop.dim_customers.v2"]["status"] == "success"


def test_package_qualified_fail_switch_fails_only_the_package_model(raw_warehouse, tmp_path):
    warehouse = raw_warehouse.copy_to(tmp_path)
    run = run_dbt(
        ["run", "--select", "stg_payments"],
        warehouse,
        tmp_path / "target",
        {"DBT_FAIL_MODEL": "jaffle_utils.stg_payments"},
    )
    assert run.returncode == 1
    assert run.statuses() == {
        "model.jaffle_shop.stg_payments": "success",
        "model.jaffle_utils.stg_payments": "error",
    }


def test_fail_test_switch_fails_that_test_and_skips_the_models_children(raw_warehouse, tmp_path):
    warehouse = raw_warehouse.copy_to(tmp_path)
    build = run_dbt(
        ["build", "--select", "stg_orders+"],
        warehouse,
        tmp_path / "target",
        {"DBT_FAIL_TEST": "not_null_stg_orders_order_id"},
    )
    assert build.returncode == 1
    statuses = build.statuses()
    failed = [node for node, status in statuses.items() if status == "fail"]
    assert [node.rsplit(".", 1)[0] for node in failed] == ["test.jaffle_shop.not_null_stg_orders_order_id"]
    assert statuses["model.jaffle_shop.stg_orders"] == "success"
    assert {statuses[node] for node in DOWNSTREAM_OF_STG_ORDERS} == {"skipped"}


def test_tag_selection_picks_the_hourly_models_of_both_packages(raw_warehouse, tmp_path):
    listing = run_dbt(
        ["ls", "--select", "tag:hourly", "--resource-type", "model", "--output", "json", "--quiet"],
        raw_warehouse,
        tmp_path / "target",
    )
    assert listing.returncode == 0, listing.output
    selected = {json.loads(line)["unique_id"] for line in listing.output.splitlines() if line.startswith("{")}
    assert selected == HOURLY_MODELS


def test_daily_tag_covers_the_customer_side_and_the_snapshot(raw_warehouse, tmp_path):
    listing = run_dbt(
        ["ls", "--select", "tag:daily", "--exclude-resource-type", "test", "--output", "json", "--quiet"],
        raw_warehouse,
        tmp_path / "target",
    )
    assert listing.returncode == 0, listing.output
    selected = {json.loads(line)["unique_id"] for line in listing.output.splitlines() if line.startswith("{")}
    assert selected == {
        "model.jaffle_shop.stg_customers",
        "model.jaffle_shop.customers",
        "model.jaffle_shop.customer_features",
        "model.jaffle_shop.dim_customers.v1",
        "model.jaffle_shop.dim_customers.v2",
        "snapshot.jaffle_shop.customers_snapshot",
        "unit_test.jaffle_shop.customers.customers_counts_only_kept_orders",
    }
