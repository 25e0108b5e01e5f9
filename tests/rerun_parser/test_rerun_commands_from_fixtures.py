"""The commands computed from committed artifacts of real dbt runs (no dbt needed: fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.rerun_parser import (
    DBT_RETRY_STATUSES,
    NothingToRerun,
    StepRerun,
    load_manifest,
    load_run_results,
    plan_step_rerun,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def plan_for(scenario: str, **options) -> StepRerun | NothingToRerun:
    folder = FIXTURES / scenario
    return plan_step_rerun(
        load_run_results(folder / "run_results.json"), load_manifest(folder / "manifest.json"), **options
    )


def selectors(plan: StepRerun) -> list[str]:
    """The --select values (and --exclude values after "--exclude") of the plan's command."""
    argv = list(plan.command.argv)
    start = argv.index("--select") + 1
    return argv[start : argv.index("--indirect-selection")]


def enumerated_selectors(plan: StepRerun) -> list[str]:
    """The --select values of the one-selector-per-node form of the plan's command."""
    argv = list((plan.enumerated_command or plan.command).argv)
    start = argv.index("--select") + 1
    return argv[start : argv.index("--indirect-selection")]


def test_failed_model_reruns_it_with_its_tests_and_skipped_downstream_only():
    plan = plan_for("model_error_skips_downstream")
    assert plan.command.argv[:2] == ("dbt", "build")
    assert "model.jaffle_shop.stg_orders" in plan.unique_ids
    assert "model.jaffle_shop.customers" in plan.unique_ids
    assert "model.jaffle_shop.stg_customers" not in plan.unique_ids  # succeeded: not rerun
    assert len(enumerated_selectors(plan)) == len(plan.unique_ids)
    assert plan.command.argv[-2:] == ("--indirect-selection", "empty")
    assert not any("+" in selector for selector in enumerated_selectors(plan))
    # Everything below stg_orders failed or was skipped: one graph selector says it all.
    assert selectors(plan) == ["fqn:jaffle_shop.staging.stg_orders+"]


def test_model_with_unit_tests_is_narrowed_to_the_model_so_passed_unit_tests_stay_out():
    plan = plan_for("model_error_skips_downstream")
    # fqn:jaffle_shop.marts.customers alone would also select the unit test defined on customers.
    assert "fqn:jaffle_shop.marts.customers,resource_type:model" in enumerated_selectors(plan)


def test_versioned_model_is_selected_by_its_version_only():
    plan = plan_for("versioned_model")
    assert "fqn:jaffle_shop.marts.dim_customers.v1" in enumerated_selectors(plan)
    assert selectors(plan) == ["fqn:jaffle_shop.marts.dim_customers.v1+"]
    assert not any("dim_customers.v2" in selector for selector in enumerated_selectors(plan))
    assert "model.jaffle_shop.dim_customers.v2" not in plan.unique_ids


def test_package_model_sharing_a_root_model_name_selects_only_the_package_one():
    plan = plan_for("package_model_same_name")
    assert "fqn:jaffle_utils.stg_payments" in enumerated_selectors(plan)
    assert selectors(plan) == ["fqn:jaffle_utils.stg_payments+"]
    assert "model.jaffle_shop.stg_payments" not in plan.unique_ids
    assert "stg_payments" not in selectors(plan)  # the bare name would pick both packages


def test_tag_restricted_run_reruns_nodes_not_the_tag():
    plan = plan_for("tag_selection")
    assert "tag:hourly" not in plan.command.argv
    assert all(selector.startswith("fqn:") for selector in selectors(plan))


def test_vars_full_refresh_target_and_threads_are_replayed():
    argv = plan_for("vars_and_full_refresh").command.argv
    assert argv[argv.index("--vars") + 1] == '{"as_of_date": "2025-05-31", "label_window_days": 30}'
    assert "--full-refresh" in argv
    assert argv[argv.index("--target") + 1] == "dev"
    assert argv[argv.index("--threads") + 1] == "2"
    assert "+customer_features" not in argv  # the original selection is not replayed


@pytest.mark.parametrize(
    ("scenario", "subcommand"),
    [
        ("run_command", "run"),
        ("snapshot_error", "snapshot"),
        ("test_command", "test"),
        ("seed_error", "build"),
    ],
)
def test_the_failed_steps_subcommand_is_kept(scenario, subcommand):
    assert plan_for(scenario).command.argv[1] == subcommand


def test_a_green_run_has_nothing_to_rerun_with_a_reason():
    plan = plan_for("nothing_to_rerun")
    assert isinstance(plan, NothingToRerun)
    assert "no result with status" in plan.reason


def test_default_statuses_are_dbt_retrys():
    assert {"error", "fail", "skipped", "runtime error", "partial success"} == DBT_RETRY_STATUSES


def test_statuses_can_be_narrowed_to_errors_only():
    plan = plan_for("model_error_skips_downstream", statuses=["error"])
    assert plan.unique_ids == ("model.jaffle_shop.stg_orders",)


def test_command_prints_as_one_shell_line():
    assert str(plan_for("versioned_model").command).startswith(
        "dbt build --select fqn:jaffle_shop.marts.dim_"
    )


def test_passed_nodes_below_the_failure_are_excluded():
    plan = plan_for("vars_and_full_refresh")
    argv = list(plan.command.argv)
    assert argv[argv.index("--select") + 1] == "fqn:jaffle_shop.staging.stg_payments+"
    excluded = selectors(plan)[selectors(plan).index("--exclude") + 1 :]
    # The unit test on stg_payments matches its fqn prefix and passed: excluded, like customers.
    assert "fqn:jaffle_shop.staging.stg_payments.stg_payments_converts_cents_to_dollars" in excluded
    assert len(str(plan.command)) < len(str(plan.enumerated_command))


def test_without_a_shorter_form_the_nodes_are_listed_and_no_enumerated_copy_is_kept():
    plan = plan_for("snapshot_error")
    assert plan.enumerated_command is None
    assert selectors(plan) == ["fqn:jaffle_shop.customers_snapshot"]
