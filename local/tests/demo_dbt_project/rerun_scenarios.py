"""The failure scenarios, each a real dbt invocation of the demo project that ends in a known state.

Shared by ``make_rerun_fixtures.py`` (which commits their pruned artifacts) and the parity tests (which
replay them against ``dbt retry``). Every scenario starts from a fully built warehouse.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from dbt_harness import DbtInvocation, DemoWarehouse, run_dbt

#: The rerun parser's fixtures, read by the image's tests (tests/rerun_parser/).
FIXTURES_DIR = Path(__file__).resolve().parents[3] / "tests" / "rerun_parser" / "fixtures"


@dataclass(frozen=True)
class Scenario:
    """A dbt command run with failure switches on; ``name`` is its fixtures sub-folder."""

    name: str
    args: tuple[str, ...]
    switches: dict[str, str] = field(default_factory=dict)
    expect_failure: bool = True


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("model_error_skips_downstream", ("build",), {"DBT_FAIL_MODEL": "stg_orders"}),
    Scenario("test_failure_skips_downstream", ("build",), {"DBT_FAIL_TEST": "not_null_stg_orders_order_id"}),
    Scenario("versioned_model", ("build",), {"DBT_FAIL_MODEL": "dim_customers.v1"}),
    Scenario("package_model_same_name", ("build",), {"DBT_FAIL_MODEL": "jaffle_utils.stg_payments"}),
    Scenario("tag_selection", ("build", "--select", "tag:hourly"), {"DBT_FAIL_MODEL": "stg_orders"}),
    Scenario("seed_error", ("build",), {"DBT_FAIL_MODEL": "countries"}),
    Scenario("snapshot_error", ("snapshot",), {"DBT_FAIL_MODEL": "customers_snapshot"}),
    Scenario(
        "vars_and_full_refresh",
        (
            "build",
            "--select",
            "+customer_features",
            "--vars",
            '{"as_of_date": "2025-05-31", "label_window_days": 30}',
            "--full-refresh",
            "--threads",
            "2",
            "--target",
            "dev",
        ),
        {"DBT_FAIL_MODEL": "jaffle_shop.stg_payments"},
    ),
    Scenario("run_command", ("run",), {"DBT_FAIL_MODEL": "stg_customers"}),
    Scenario(
        "test_command",
        ("test",),
        {"DBT_FAIL_TEST": "unique_orders_order_id,not_null_stg_payments_payment_id"},
    ),
    Scenario("nothing_to_rerun", ("build", "--select", "tag:hourly"), expect_failure=False),
)


def run_scenario(
    scenario: Scenario, built: DemoWarehouse, work_dir: Path
) -> tuple[DemoWarehouse, DbtInvocation]:
    """Run the scenario's command on a copy of ``built``; return the warehouse and the invocation."""
    warehouse = built.copy_to(work_dir / "warehouse")
    invocation = run_dbt(list(scenario.args), warehouse, work_dir / "target", scenario.switches)
    if (invocation.returncode != 0) != scenario.expect_failure:
        raise AssertionError(
            f"scenario {scenario.name}: unexpected exit {invocation.returncode}\n{invocation.output}"
        )
    return warehouse, invocation


def prune_run_results(document: dict) -> dict:
    """Keep what identifies each result and the args; drop timings, compiled SQL and adapter noise."""
    keep = ("unique_id", "status", "message", "failures")
    return {
        "metadata": document["metadata"],
        "args": document["args"],
        "elapsed_time": document.get("elapsed_time", 0),
        "results": [{key: result.get(key) for key in keep} for result in document["results"]],
    }


def prune_manifest(document: dict) -> dict:
    """Keep every node with the fields selection depends on, and the graph (``child_map``, which graph
    operators walk); drop SQL, columns, docs and macros."""
    keep = (
        "unique_id",
        "resource_type",
        "package_name",
        "name",
        "fqn",
        "version",
        "original_file_path",
        "tags",
    )
    pruned: dict = {"metadata": document["metadata"], "child_map": document["child_map"]}
    for section in (
        "nodes",
        "sources",
        "unit_tests",
        "exposures",
        "metrics",
        "semantic_models",
        "saved_queries",
    ):
        pruned[section] = {
            unique_id: {key: node[key] for key in keep if key in node}
            for unique_id, node in document.get(section, {}).items()
        }
    return pruned


def write_fixture(scenario: Scenario, target_path: Path, fixtures_dir: Path = FIXTURES_DIR) -> Path:
    """Store the scenario's pruned artifacts under ``fixtures/<name>/``, minified."""
    folder = fixtures_dir / scenario.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for file_name, prune in (("run_results.json", prune_run_results), ("manifest.json", prune_manifest)):
        document = json.loads((target_path / file_name).read_text())
        (folder / file_name).write_text(json.dumps(prune(document), separators=(",", ":"), sort_keys=True))
    return folder
