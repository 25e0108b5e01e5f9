"""Bad inputs give a clear error naming the file; warnings rerun only when asked (``--warn-error``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.rerun_parser import (
    AmbiguousSelectionError,
    ArtifactError,
    MismatchedArtifactsError,
    StepRerun,
    UnsupportedCommandError,
    load_manifest,
    load_run_results,
    parse_manifest,
    parse_run_results,
    plan_step_rerun,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUN_RESULTS_SCHEMA = "https://schemas.getdbt.com/dbt/run-results/v6.json"
MANIFEST_SCHEMA = "https://schemas.getdbt.com/dbt/manifest/v12.json"


def run_results_doc(results: list[tuple[str, str]], which: str = "build", **args) -> dict:
    return {
        "metadata": {"dbt_schema_version": RUN_RESULTS_SCHEMA, "invocation_id": "x"},
        "args": {"which": which, **args},
        "results": [{"unique_id": unique_id, "status": status} for unique_id, status in results],
    }


def manifest_doc(*nodes: dict) -> dict:
    return {
        "metadata": {"dbt_schema_version": MANIFEST_SCHEMA},
        "nodes": {
            node["unique_id"]: node for node in nodes if not node["unique_id"].startswith("unit_test.")
        },
        "unit_tests": {
            node["unique_id"]: node for node in nodes if node["unique_id"].startswith("unit_test.")
        },
    }


def node(unique_id: str, fqn: list[str], version: int | None = None) -> dict:
    resource_type, package = unique_id.split(".")[:2]
    return {
        "unique_id": unique_id,
        "fqn": fqn,
        "resource_type": resource_type,
        "package_name": package,
        "version": version,
    }


def test_truncated_run_results_names_the_file_and_says_truncated(tmp_path):
    whole = (FIXTURES / "model_error_skips_downstream" / "run_results.json").read_text()
    path = tmp_path / "run_results.json"
    path.write_text(whole[: len(whole) // 2])
    with pytest.raises(ArtifactError, match=r"run_results\.json: is not valid JSON \(truncated\?\)"):
        load_run_results(path)


def test_missing_and_empty_files_are_reported(tmp_path):
    with pytest.raises(ArtifactError, match=r"nope\.json: file not found"):
        load_run_results(tmp_path / "nope.json")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(ArtifactError, match=r"empty\.json: is empty"):
        load_manifest(tmp_path / "empty.json")


def test_swapped_files_are_recognised_by_their_schema():
    with pytest.raises(ArtifactError, match=r"is not a dbt run_results\.json: its schema is .*manifest"):
        load_run_results(FIXTURES / "versioned_model" / "manifest.json")
    with pytest.raises(ArtifactError, match=r"is not a dbt manifest\.json"):
        load_manifest(FIXTURES / "versioned_model" / "run_results.json")


def test_result_without_status_is_pinpointed():
    document = run_results_doc([("model.p.a", "error")])
    del document["results"][0]["status"]
    with pytest.raises(ArtifactError, match=r"results\[0\] lacks"):
        parse_run_results(document, "step2/run_results.json")


def test_manifest_from_another_project_is_a_mismatch():
    run_results = parse_run_results(run_results_doc([("model.p.gone", "error")]))
    manifest = parse_manifest(manifest_doc(node("model.p.other", ["p", "other"])), "other/manifest.json")
    with pytest.raises(MismatchedArtifactsError, match=r"other/manifest\.json: lacks 1 node.*model\.p\.gone"):
        plan_step_rerun(run_results, manifest)


def test_commands_dbt_retry_cannot_replay_are_refused():
    run_results = parse_run_results(run_results_doc([("source.p.s.t", "error")], which="freshness"))
    with pytest.raises(UnsupportedCommandError, match="cannot be retried"):
        plan_step_rerun(run_results)


def test_warnings_are_rerun_only_with_warn_error_which_is_replayed_too():
    run_results = parse_run_results(run_results_doc([("test.p.t.1", "warn"), ("test.p.u.2", "pass")]))
    manifest = parse_manifest(manifest_doc(node("test.p.t.1", ["p", "t"]), node("test.p.u.2", ["p", "u"])))
    assert plan_step_rerun(run_results, manifest).reason.startswith("run_results.json: no result")
    plan = plan_step_rerun(run_results, manifest, warn_error=True)
    assert plan.unique_ids == ("test.p.t.1",)
    assert plan.command.argv[-1] == "--warn-error"


def test_hook_results_are_not_rerun_as_nodes():
    run_results = parse_run_results(run_results_doc([("operation.p.p-on-run-end-0", "error")]))
    assert not isinstance(plan_step_rerun(run_results), StepRerun)


def test_run_operation_is_replayed_with_its_macro_and_args():
    run_results = parse_run_results(
        run_results_doc(
            [("operation.p.p-on-run-end-0", "error")], which="run-operation", macro="grant", args={"r": 1}
        )
    )
    assert plan_step_rerun(run_results).command.argv == (
        "dbt",
        "run-operation",
        "grant",
        "--args",
        '{"r": 1}',
    )


def test_folder_named_like_a_model_is_excluded_by_resource_type_then_package():
    # models/orders.sql and models/orders/…: fqn:p.orders is a prefix of the folder's nodes' fqns.
    manifest = parse_manifest(
        manifest_doc(
            node("model.p.orders", ["p", "orders"]),
            node("test.p.orders_check.1", ["p", "orders", "orders_check"]),
            node("model.q.orders", ["q", "p", "orders"]),  # matched with its package dropped
        )
    )
    run_results = parse_run_results(run_results_doc([("model.p.orders", "error")]))
    plan = plan_step_rerun(run_results, manifest)
    assert "fqn:p.orders,resource_type:model,package:p" in plan.command.argv


def test_same_package_same_type_prefix_clash_is_refused_rather_than_over_selecting():
    manifest = parse_manifest(
        manifest_doc(node("model.p.orders", ["p", "orders"]), node("model.p.daily", ["p", "orders", "daily"]))
    )
    run_results = parse_run_results(run_results_doc([("model.p.orders", "error")]))
    with pytest.raises(AmbiguousSelectionError, match=r"model\.p\.daily"):
        plan_step_rerun(run_results, manifest)


def test_versioned_model_in_another_package_is_excluded_by_package():
    manifest = parse_manifest(
        manifest_doc(
            node("model.p.dim.v1", ["p", "marts", "dim", "v1"], version=1),
            node("model.q.dim.v1", ["q", "dim", "v1"], version=1),
        )
    )
    plan = plan_step_rerun(parse_run_results(run_results_doc([("model.p.dim.v1", "error")])), manifest)
    assert "fqn:p.marts.dim.v1,resource_type:model,package:p" in plan.command.argv


def test_without_manifest_selectors_are_qualified_and_flagged_inexact():
    run_results = parse_run_results(
        run_results_doc([("model.p.dim.v2", "error"), ("test.p.not_null_x.ab12", "skipped")])
    )
    plan = plan_step_rerun(run_results)
    assert not plan.exact
    assert "fqn:dim.v2,package:p,resource_type:model" in plan.command.argv
    assert "fqn:not_null_x,package:p,resource_type:test" in plan.command.argv


def test_sample_artifacts_on_disk_keep_valid_json(tmp_path):
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps(run_results_doc([("model.p.a", "success")])))
    assert load_run_results(path).command == "build"
