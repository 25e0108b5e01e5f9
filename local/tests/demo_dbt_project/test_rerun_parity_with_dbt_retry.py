"""Parity with ``dbt retry``, on real dbt runs: the generated command runs exactly retry's nodes.

For every scenario: fail a real run, then from the same failed state (warehouse copy + target folder
copy, failure switches still on so reruns fail the same way) run (a) ``dbt retry`` and (b) the command
the rerun-parser prints. The sets of unique_ids each wrote to run_results.json must be equal.
Invocations run two at a time (dbt is mostly CPU-bound start-up; two cores).
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbt_harness import DemoWarehouse, prepare_project, run_dbt
from rerun_scenarios import SCENARIOS, Scenario, run_scenario

from include.rerun_parser import NothingToRerun, StepRerun, load_manifest, load_run_results, plan_step_rerun


@dataclass(frozen=True)
class ParityOutcome:
    plan: StepRerun | NothingToRerun
    retried_by_dbt: dict[str, str]
    rerun_by_command: dict[str, str] | None
    command_output: str
    #: When the plan's command is compact (graph operators), what its one-selector-per-node form reran.
    rerun_by_enumerated: dict[str, str] | None = None


def _replay(scenario: Scenario, built: DemoWarehouse, work_dir: Path) -> ParityOutcome:
    failed_warehouse, failed = run_scenario(scenario, built, work_dir / "failed")
    plan = plan_step_rerun(
        load_run_results(failed.target_path / "run_results.json"),
        load_manifest(failed.target_path / "manifest.json"),
    )

    def from_failed_state(name: str) -> tuple[DemoWarehouse, Path]:
        target = work_dir / name / "target"
        shutil.copytree(failed.target_path, target, ignore=shutil.ignore_patterns("logs"))
        return failed_warehouse.copy_to(work_dir / name / "warehouse"), target

    retry_warehouse, retry_target = from_failed_state("retry")
    retried = run_dbt(["retry"], retry_warehouse, retry_target, scenario.switches)
    if not isinstance(plan, StepRerun):
        return ParityOutcome(plan, retried.statuses(), None, "")
    command_warehouse, command_target = from_failed_state("command")
    rerun = run_dbt(list(plan.command.argv[1:]), command_warehouse, command_target, scenario.switches)
    enumerated = None
    if plan.enumerated_command is not None:
        enumerated_warehouse, enumerated_target = from_failed_state("enumerated")
        enumerated = run_dbt(
            list(plan.enumerated_command.argv[1:]), enumerated_warehouse, enumerated_target, scenario.switches
        ).statuses()
    return ParityOutcome(plan, retried.statuses(), rerun.statuses(), rerun.output, enumerated)


@pytest.fixture(scope="module")
def parity_outcomes(tmp_path_factory) -> dict[str, ParityOutcome]:
    prepare_project(tmp_path_factory.mktemp("dbt-parse"))
    built = DemoWarehouse.create(tmp_path_factory.mktemp("built"))
    build = run_dbt(["build"], built, tmp_path_factory.mktemp("built-target"))
    assert build.returncode == 0, build.output
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            scenario.name: pool.submit(_replay, scenario, built, tmp_path_factory.mktemp(scenario.name))
            for scenario in SCENARIOS
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.expect_failure], ids=lambda s: s.name)
def test_generated_command_runs_exactly_the_nodes_dbt_retry_runs(parity_outcomes, scenario):
    outcome = parity_outcomes[scenario.name]
    assert isinstance(outcome.plan, StepRerun)
    assert outcome.retried_by_dbt, "dbt retry ran nothing: the scenario did not fail"
    assert outcome.rerun_by_command is not None
    extra = set(outcome.rerun_by_command) - set(outcome.retried_by_dbt)
    missing = set(outcome.retried_by_dbt) - set(outcome.rerun_by_command)
    assert (extra, missing) == (set(), set()), outcome.command_output
    assert set(outcome.plan.unique_ids) == set(outcome.retried_by_dbt)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.expect_failure], ids=lambda s: s.name)
def test_retried_nodes_end_the_same_way(parity_outcomes, scenario):
    """With the switches still on, every rerun node ends with the status it gets under dbt retry."""
    outcome = parity_outcomes[scenario.name]
    differing = {
        node: (status, outcome.rerun_by_command[node])
        for node, status in outcome.retried_by_dbt.items()
        if outcome.rerun_by_command[node] != status
    }
    assert differing == {}


def test_green_run_gives_nothing_to_rerun_and_dbt_retry_runs_nothing(parity_outcomes):
    outcome = parity_outcomes["nothing_to_rerun"]
    assert isinstance(outcome.plan, NothingToRerun)
    assert outcome.retried_by_dbt == {}


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.expect_failure], ids=lambda s: s.name)
def test_compact_and_enumerated_commands_select_the_same_nodes(parity_outcomes, scenario):
    """When graph operators shortened the command, the node-per-selector form reruns the same nodes."""
    outcome = parity_outcomes[scenario.name]
    assert isinstance(outcome.plan, StepRerun)
    if outcome.plan.enumerated_command is None:
        # No shorter form exists (tag_selection, snapshot_error, test_command): the command already
        # names one selector per node, and it is the one that ran.
        assert outcome.rerun_by_enumerated is None
        assert set(outcome.rerun_by_command) == set(outcome.retried_by_dbt)
        return
    assert len(str(outcome.plan.command)) < len(str(outcome.plan.enumerated_command))
    assert outcome.rerun_by_enumerated == outcome.retried_by_dbt
