"""Short commands: graph operators, tag intersections and exclusions, used only when proven exact.

The manifests here carry a ``child_map`` (as every real manifest.json does); the committed fixtures are
pruned without one, so they keep the one-selector-per-node form. Parity of the compact commands with
real ``dbt retry`` is checked in ``test_rerun_parity_with_dbt_retry.py``.
"""

from __future__ import annotations

import json

from include.rerun_parser import StepRerun, load_manifest, parse_manifest, parse_run_results, plan_step_rerun

RUN_RESULTS_SCHEMA = "https://schemas.getdbt.com/dbt/run-results/v6.json"
MANIFEST_SCHEMA = "https://schemas.getdbt.com/dbt/manifest/v12.json"


def node(
    unique_id: str, fqn: list[str], depends_on: tuple[str, ...] = (), tags: tuple[str, ...] = ()
) -> dict:
    resource_type, package = unique_id.split(".")[:2]
    return {
        "unique_id": unique_id,
        "fqn": fqn,
        "resource_type": resource_type,
        "package_name": package,
        "version": None,
        "tags": list(tags),
        "depends_on": {"nodes": list(depends_on)},
        "raw_code": "select 1",
    }


def manifest_doc(*nodes: dict, with_graph: bool = True) -> dict:
    document: dict = {
        "metadata": {"dbt_schema_version": MANIFEST_SCHEMA},
        "nodes": {n["unique_id"]: n for n in nodes if not n["unique_id"].startswith("unit_test.")},
        "unit_tests": {n["unique_id"]: n for n in nodes if n["unique_id"].startswith("unit_test.")},
    }
    if with_graph:
        child_map: dict[str, list[str]] = {n["unique_id"]: [] for n in nodes}
        for n in nodes:
            for parent in n["depends_on"]["nodes"]:
                child_map[parent].append(n["unique_id"])
        document["child_map"] = child_map
    return document


def plan(nodes: list[dict], statuses: dict[str, str], which: str = "build", with_graph: bool = True, **args):
    run_results = parse_run_results(
        {
            "metadata": {"dbt_schema_version": RUN_RESULTS_SCHEMA},
            "args": {"which": which, **args},
            "results": [{"unique_id": uid, "status": status} for uid, status in statuses.items()],
        }
    )
    result = plan_step_rerun(run_results, parse_manifest(manifest_doc(*nodes, with_graph=with_graph)))
    assert isinstance(result, StepRerun)
    return result


CHAIN = [
    node("model.p.a", ["p", "a"]),
    node("test.p.not_null_a.1", ["p", "not_null_a"], ("model.p.a",)),
    node("model.p.b", ["p", "b"], ("model.p.a",)),
    node("test.p.not_null_b.2", ["p", "not_null_b"], ("model.p.b",)),
    node("model.p.c", ["p", "c"], ("model.p.b",)),
]
ROOT_FAILED = {
    "model.p.a": "error",
    "test.p.not_null_a.1": "skipped",
    "model.p.b": "skipped",
    "test.p.not_null_b.2": "skipped",
    "model.p.c": "skipped",
}


def test_failure_and_everything_skipped_below_it_is_one_graph_selector():
    result = plan(CHAIN, ROOT_FAILED)
    assert str(result.command) == "dbt build --select fqn:p.a+ --indirect-selection empty"
    assert result.enumerated_command is not None
    assert str(result.enumerated_command).count("fqn:") == 5


def test_descendant_that_is_not_rerun_is_excluded():
    statuses = {**ROOT_FAILED, "test.p.not_null_b.2": "pass"}
    nodes = [
        *CHAIN,
        node("model.p.d", ["p", "d"], ("model.p.c",)),
        node("model.p.e", ["p", "e"], ("model.p.d",)),
    ]
    statuses |= {"model.p.d": "skipped", "model.p.e": "skipped"}
    result = plan(nodes, statuses)
    assert str(result.command) == (
        "dbt build --select fqn:p.a+ --exclude fqn:p.not_null_b --indirect-selection empty"
    )


def test_unit_test_matched_by_the_fqn_prefix_is_excluded_when_it_passed():
    nodes = [
        node("model.p.a", ["p", "a"]),
        node("unit_test.p.a.checks_a", ["p", "a", "checks_a"], ("model.p.a",)),
        *[node(f"model.p.child_{i}", ["p", f"child_{i}"], ("model.p.a",)) for i in range(6)],
    ]
    statuses = {"model.p.a": "error", "unit_test.p.a.checks_a": "pass"}
    statuses |= {f"model.p.child_{i}": "skipped" for i in range(6)}
    result = plan(nodes, statuses)
    assert result.command.argv[2:6] == ("--select", "fqn:p.a+", "--exclude", "fqn:p.a.checks_a")


def test_run_ignores_tests_below_the_failure_so_needs_no_exclusion():
    statuses = {"model.p.a": "error", "model.p.b": "skipped", "model.p.c": "skipped"}
    result = plan(CHAIN, statuses, which="run")
    assert str(result.command) == "dbt run --select fqn:p.a+ --indirect-selection empty"


def test_without_child_map_or_for_compile_nodes_are_listed_one_by_one():
    assert plan(CHAIN, ROOT_FAILED, with_graph=False).enumerated_command is None
    compiled = plan(CHAIN, ROOT_FAILED, which="compile")
    assert compiled.enumerated_command is None
    assert "+" not in str(compiled.command)


def test_the_enumerated_command_is_kept_when_it_is_not_longer():
    result = plan(CHAIN, {"model.p.a": "error"})
    assert str(result.command) == "dbt build --select fqn:p.a --indirect-selection empty"
    assert result.enumerated_command is None


def test_a_tag_selected_run_is_rerun_intersected_with_its_tag():
    nodes = [node("model.p.a", ["p", "a"], tags=("hourly",))]
    nodes += [node(f"model.p.h{i}", ["p", f"h{i}"], ("model.p.a",), ("hourly",)) for i in range(6)]
    nodes += [node(f"model.p.d{i}", ["p", f"d{i}"], ("model.p.a",), ("daily",)) for i in range(6)]
    statuses = {"model.p.a": "error", **{f"model.p.h{i}": "skipped" for i in range(6)}}
    result = plan(nodes, statuses, select=["tag:hourly"])
    assert str(result.command) == "dbt build --select fqn:p.a+,tag:hourly --indirect-selection empty"


def test_an_exclusion_that_cannot_be_proven_exact_falls_back_to_listing_nodes():
    # p.b's folder-like prefix p.b.x is a model of the same package and type: p.b cannot be excluded alone.
    nodes = [
        *CHAIN,
        node("model.p.b.x", ["p", "b", "x"], ("model.p.b",)),
    ]
    statuses = {"model.p.a": "error", "test.p.not_null_a.1": "skipped", "model.p.b.x": "skipped"}
    statuses |= {"model.p.c": "skipped", "test.p.not_null_b.2": "skipped"}
    result = plan(nodes, statuses)
    assert result.enumerated_command is None
    assert "--exclude" not in result.command.argv


def test_loading_from_disk_keeps_the_graph_and_tags_and_drops_the_rest(tmp_path):
    document = manifest_doc(*CHAIN)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(document))
    loaded, parsed = load_manifest(path), parse_manifest(document, str(path))
    assert loaded.nodes == parsed.nodes
    assert dict(loaded.children) == dict(parsed.children) == document["child_map"]
    assert loaded.nodes["model.p.a"].tags == ()


def test_select_exactly_is_the_selection_a_rerun_uses_for_any_set_of_nodes():
    """The public entry point for "these nodes, no more" (models as tasks calls it for cleared tasks):
    the same arguments plan_step_rerun puts in its command, for a set no run_results produced."""
    from include.rerun_parser import select_exactly

    manifest = parse_manifest(manifest_doc(*CHAIN))
    selection = select_exactly(list(ROOT_FAILED), manifest, "build")
    assert selection.argv == ("--select", "fqn:p.a+")
    assert selection.exact
    assert selection.enumerated_argv is not None
    assert plan(CHAIN, ROOT_FAILED).command.argv[2:4] == selection.argv

    middle = select_exactly(["model.p.b", "test.p.not_null_b.2", "model.p.c"], manifest)
    assert middle.argv == ("--select", "fqn:p.b+")
    alone = select_exactly(["model.p.b"], manifest)
    assert alone.argv == ("--select", "fqn:p.b"), "no test joins: it is not listed"
