"""Multi-step jobs: retry the failed step, then run every later step as it was (dbt Cloud rerun)."""

from __future__ import annotations

from pathlib import Path

from include.rerun_parser import (
    JobRerun,
    JobStep,
    NothingToRerun,
    load_manifest,
    load_run_results,
    parse_run_results,
    plan_job_rerun,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def artifacts(scenario: str) -> dict:
    return {
        "run_results": load_run_results(FIXTURES / scenario / "run_results.json"),
        "manifest": load_manifest(FIXTURES / scenario / "manifest.json"),
    }


def test_failed_middle_step_is_retried_then_later_steps_run_as_they_were():
    plan = plan_job_rerun(
        [
            JobStep("dbt seed", succeeded=True),
            JobStep("dbt build --select tag:hourly", succeeded=False, **artifacts("tag_selection")),
            JobStep("dbt build --select tag:daily", succeeded=False),
            JobStep("dbt docs generate", succeeded=False),
        ]
    )
    assert isinstance(plan, JobRerun)
    assert plan.failed_step_index == 1
    lines = [str(command) for command in plan.commands]
    assert lines[0].startswith("dbt build --select fqn:jaffle_shop.staging.stg_orders")
    assert lines[1:] == ["dbt build --select tag:daily", "dbt docs generate"]


def test_a_step_that_failed_without_artifacts_reruns_in_full():
    plan = plan_job_rerun([JobStep("dbt deps", succeeded=False), JobStep("dbt build", succeeded=False)])
    assert [str(command) for command in plan.commands] == ["dbt deps", "dbt build"]
    assert plan.failed_step_rerun is None


def test_source_freshness_failure_reruns_its_original_command():
    freshness = parse_run_results(
        {
            "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
            "args": {"which": "freshness"},
            "results": [{"unique_id": "source.jaffle_shop.raw.orders", "status": "error"}],
        }
    )
    step = JobStep("dbt source freshness", succeeded=False, run_results=freshness)
    plan = plan_job_rerun([step, JobStep("dbt build", succeeded=False)])
    assert [str(command) for command in plan.commands] == ["dbt source freshness", "dbt build"]


def test_all_steps_green_means_nothing_to_rerun():
    plan = plan_job_rerun([JobStep("dbt build", succeeded=True, **artifacts("nothing_to_rerun"))])
    assert isinstance(plan, NothingToRerun)
    assert plan.reason == "all 1 step(s) succeeded"
