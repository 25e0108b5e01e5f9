"""Models as tasks, the pure parts: the stored manifest, the graph of tasks, the rerun selection, the
launch cause, and how a node task ends (include/dbt_cloud/job_manifest.py, job_graph.py,
node_outcomes.py, launcher.py).

``fixtures/models_as_tasks/eltml_build.json`` is what ``make dbt-manifest`` wrote from a real
successful run of the eltml job on the local dbt Cloud (a frozen copy of include/dbt_manifests/); the
outcomes come from ``fixtures/failed``, real run_results of the same job with ``stg_orders`` broken.
The synthetic manifests below cover what the demo project does not have.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from include.dbt_cloud.job_graph import build_job_graph, load_job_graph
from include.dbt_cloud.job_manifest import (
    FORMAT,
    JobManifestError,
    build_stored_document,
    is_node_step,
    load_job_manifest,
    parse_stored_document,
    prune_manifest,
)
from include.dbt_cloud.launcher import launch_cause
from include.dbt_cloud.node_outcomes import (
    NodeRunResult,
    RunResultsSnapshot,
    node_task_outcome,
    run_results_by_node,
)
from include.dbt_cloud.results import step_outcome
from include.rerun_parser import MismatchedArtifactsError, select_exactly

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STORED = FIXTURES / "models_as_tasks" / "eltml_build.json"
RESERVED = ("launch", "finalize")
MANIFEST_SCHEMA = "https://schemas.getdbt.com/dbt/manifest/v12.json"
RESULTS_SCHEMA = "https://schemas.getdbt.com/dbt/run-results/v6.json"


@pytest.fixture(scope="module")
def graph():
    return load_job_graph(STORED, RESERVED)


# --- the graph of the demo job ----------------------------------------------------------------------
def test_one_task_per_built_node_and_per_tested_source_named_readably(graph):
    tasks = {node.task_id: (node.label, node.resource_type) for node in graph.nodes}
    assert tasks == {
        "countries": ("countries", "seed"),
        "payment_methods": ("payment_methods", "seed"),
        "raw__customers": ("source raw.customers", "source"),
        "raw__orders": ("source raw.orders", "source"),
        "raw__payments": ("source raw.payments", "source"),
        "stg_customers": ("stg_customers", "model"),
        "stg_orders": ("stg_orders", "model"),
        # two packages share the name: the package joins the id; versions: the version does
        "jaffle_shop__stg_payments": ("jaffle_shop.stg_payments", "model"),
        "jaffle_utils__stg_payments": ("jaffle_utils.stg_payments", "model"),
        "dim_customers_v1": ("dim_customers.v1", "model"),
        "dim_customers_v2": ("dim_customers.v2", "model"),
        "customers_snapshot": ("customers_snapshot", "snapshot"),
        "orders": ("orders", "model"),
        "customers": ("customers", "model"),
        "customer_features": ("customer_features", "model"),
    }


def test_tasks_are_wired_like_the_manifest_in_a_topological_order(graph):
    def parents(task_id: str) -> set[str]:
        return {graph.by_unique_id[uid].task_id for uid in graph.by_task_id[task_id].parents}

    assert parents("orders") == {"stg_orders", "jaffle_shop__stg_payments"}
    assert parents("customers") == {"countries", "stg_customers", "orders"}
    assert parents("stg_orders") == {"raw__orders"}, "the source's tests run first in dbt build"
    assert parents("countries") == set()
    seen: set[str] = set()
    for node in graph.nodes:
        assert set(node.parents) <= seen, f"{node.task_id} comes before one of its parents"
        seen.add(node.unique_id)


def test_every_test_the_job_ran_is_folded_into_exactly_one_task(graph):
    executed = {uid for step in graph.stored.steps for uid in step.executed}
    tests = sorted(uid for uid in executed if uid.split(".")[0] in ("test", "unit_test"))
    folded = sorted(test for node in graph.nodes for test in node.tests)
    assert folded == tests
    assert len(tests) == 43


@pytest.mark.parametrize(
    ("test", "owner", "why"),
    [
        ("test.jaffle_shop.not_null_orders_order_id.cf6c17daed", "orders", "one parent"),
        ("unit_test.jaffle_shop.customers.customers_counts_only_kept_orders", "customers", "unit test"),
        ("test.jaffle_shop.assert_order_amounts_match_payments", "orders", "orders is below stg_payments"),
        (
            "test.jaffle_shop.relationships_stg_orders_customer_id__customer_id__ref_stg_customers_.430bf21500",
            "stg_orders",
            "siblings: dbt attaches it to stg_orders",
        ),
        (
            "test.jaffle_shop.relationships_stg_customers_country_code__country_code__ref_countries_.6031a09902",
            "stg_customers",
            "siblings: dbt attaches it to stg_customers, not the seed",
        ),
        ("test.jaffle_shop.assert_features_use_no_future_orders", "customers", "siblings, no attached node"),
        ("test.jaffle_shop.source_unique_raw_orders_id.56401af608", "raw__orders", "source test"),
        (
            "test.jaffle_shop.source_relationships_raw_orders_customer_id__id__source_raw_customers_.b46bf034cf",
            "raw__orders",
            "two sources: the last in topological order",
        ),
    ],
)
def test_a_test_folds_into_one_deterministic_owner(graph, test, owner, why):
    assert graph.owner_of[test].task_id == owner, why


def test_the_graph_is_the_same_at_every_parse(graph):
    again = build_job_graph(parse_stored_document(json.loads(STORED.read_text()), str(STORED)), RESERVED)
    assert again.nodes == graph.nodes


def test_a_node_is_found_by_name_label_task_id_or_unique_id(graph):
    assert graph.node("customer_features").task_id == "customer_features"
    assert graph.node("dim_customers.v2").task_id == "dim_customers_v2"
    assert graph.node("model.jaffle_utils.stg_payments").task_id == "jaffle_utils__stg_payments"
    with pytest.raises(KeyError, match="names 2 nodes"):
        graph.node("stg_payments")
    with pytest.raises(KeyError, match="is not a node of job 1"):
        graph.node("no_such_model")


# --- the rerun of cleared tasks ---------------------------------------------------------------------
def test_clearing_a_model_with_its_downstream_reruns_exactly_those_nodes_and_their_tests(graph):
    cleared = [
        graph.node(name).unique_id for name in ("stg_orders", "orders", "customers", "customer_features")
    ]
    rerun = graph.rerun_command(cleared)

    assert (
        str(rerun.command)
        == "dbt build --select fqn:jaffle_shop.staging.stg_orders+ --indirect-selection empty"
    )
    expected = set(cleared) | {test for uid in cleared for test in graph.by_unique_id[uid].tests}
    assert set(rerun.unique_ids) == expected
    assert rerun.selection.exact


def test_one_task_alone_is_selected_node_by_node_with_its_tests(graph):
    node = graph.node("stg_orders")
    rerun = graph.rerun_command([node.unique_id])
    argv = rerun.command.argv
    assert argv[:3] == ("dbt", "build", "--select")
    assert argv[-2:] == ("--indirect-selection", "empty")
    assert len(argv) == 3 + 1 + len(node.tests) + 2, "one proven selector per node and per folded test"
    assert set(rerun.unique_ids) == {node.unique_id, *node.tests}


def test_a_source_task_reruns_its_tests_only(graph):
    rerun = graph.rerun_command([graph.node("raw__payments").unique_id])
    assert set(rerun.unique_ids) == set(graph.node("raw__payments").tests)
    assert all(uid.startswith("test.") for uid in rerun.unique_ids)


def test_select_exactly_refuses_unknown_nodes_and_an_empty_set(graph):
    with pytest.raises(MismatchedArtifactsError, match=r"model\.jaffle_shop\.gone"):
        select_exactly(["model.jaffle_shop.gone"], graph.stored.manifest)
    with pytest.raises(ValueError, match="selects everything"):
        select_exactly([], graph.stored.manifest)


def test_the_rerun_repeats_the_flags_and_tag_selection_of_the_step_that_ran_the_nodes():
    hourly = ["model.p.a", "model.p.b", "model.p.d", "model.p.e"]
    stored = _stored(
        {
            **{uid: _model(uid.rsplit(".", 1)[1], tags=["hourly"]) for uid in hourly},
            "model.p.c": _model("c", tags=[]),
        },
        {"model.p.a": ["model.p.b", "model.p.c", "model.p.d", "model.p.e"]},
        [("dbt build --select tag:hourly --full-refresh", hourly,
          {"select": ["tag:hourly"], "full_refresh": True, "vars": {"day": "2025-01-01"}})],
    )  # fmt: skip
    rerun = build_job_graph(stored).rerun_command(hourly)
    assert str(rerun.command) == (
        "dbt build --select fqn:p.a+,tag:hourly --indirect-selection empty "
        '--vars \'{"day": "2025-01-01"}\' --full-refresh'
    )


# --- synthetic graphs: what the demo does not show --------------------------------------------------
def test_edges_reconnect_through_nodes_without_a_task():
    stored = _stored(
        {"model.p.a": _model("a"), "model.p.eph": _model("eph"), "model.p.b": _model("b")},
        {"model.p.a": ["model.p.eph"], "model.p.eph": ["model.p.b"]},
        [("dbt build", ["model.p.a", "model.p.b"], {})],  # eph is ephemeral: never executed
    )
    graph = build_job_graph(stored)
    assert [node.task_id for node in graph.nodes] == ["a", "b"]
    assert graph.node("b").parents == ("model.p.a",)


def test_a_test_whose_parents_have_no_task_gets_its_own_task():
    stored = _stored(
        {"model.p.a": _model("a"), "model.p.b": _model("b"), "test.p.check_b.1": _test("check_b")},
        {"model.p.b": ["test.p.check_b.1"]},
        [("dbt build --select a tag:checks", ["model.p.a", "test.p.check_b.1"], {})],
    )
    graph = build_job_graph(stored)
    assert {node.task_id for node in graph.nodes} == {"a", "check_b"}
    assert graph.node("check_b").tests == ()
    assert graph.node("check_b").selected_ids == ("test.p.check_b.1",)


def test_names_escalate_only_as_far_as_needed_and_avoid_reserved_ids():
    stored = _stored(
        {
            "model.p.launch": _model("launch"),
            "model.p.x": _model("x", version=1),
            "model.p.x.v2": _model("x", version=2),
            "seed.p.y": {**_model("y"), "resource_type": "seed"},
            "model.q.y": {**_model("y"), "package_name": "q", "fqn": ["q", "y"]},
        },
        {},
        [("dbt build", ["model.p.launch", "model.p.x", "model.p.x.v2", "seed.p.y", "model.q.y"], {})],
    )
    names = {node.unique_id: node.task_id for node in build_job_graph(stored, RESERVED).nodes}
    assert names == {
        "model.p.launch": "p__launch",  # "launch" is the launcher's
        "model.p.x": "x_v1",
        "model.p.x.v2": "x_v2",
        "seed.p.y": "p__y",
        "model.q.y": "q__y",
    }


def test_a_cycle_in_a_hand_edited_file_is_refused():
    stored = _stored(
        {"model.p.a": _model("a"), "model.p.b": _model("b")},
        {"model.p.a": ["model.p.b"], "model.p.b": ["model.p.a"]},
        [("dbt build", ["model.p.a", "model.p.b"], {})],
    )
    with pytest.raises(ValueError, match="cycle"):
        build_job_graph(stored)


# --- the stored file ----------------------------------------------------------------------------------
def test_a_missing_or_foreign_file_names_the_make_target(tmp_path):
    with pytest.raises(JobManifestError, match=r"no such file.*`make dbt-manifest`"):
        load_job_manifest(tmp_path / "gone.json")
    (tmp_path / "old.json").write_text(json.dumps({"format": "v0"}))
    with pytest.raises(JobManifestError, match=r"has format 'v0'.*make dbt-manifest"):
        load_job_manifest(tmp_path / "old.json")
    (tmp_path / "cut.json").write_text(STORED.read_text()[:500])
    with pytest.raises(JobManifestError, match="not valid JSON"):
        load_job_manifest(tmp_path / "cut.json")
    document = json.loads(STORED.read_text())
    document["manifest"]["nodes"].pop("model.jaffle_shop.orders")
    with pytest.raises(JobManifestError, match="its manifest lacks"):
        parse_stored_document(document, "edited.json")


def test_loading_is_cached_until_the_file_changes(tmp_path):
    path = tmp_path / "job.json"
    path.write_text(STORED.read_text())
    first = load_job_manifest(path)
    assert load_job_manifest(path) is first
    document = json.loads(path.read_text())
    document["job"]["name"] = "renamed"
    path.write_text(json.dumps(document))
    assert load_job_manifest(path).job_name == "renamed"


def test_the_stored_file_keeps_only_what_the_graph_and_selection_need():
    stored = json.loads(STORED.read_text())
    node = stored["manifest"]["nodes"]["model.jaffle_shop.orders"]
    assert set(node) <= {"unique_id", "name", "fqn", "resource_type", "package_name", "version", "tags"}
    assert node["tags"] == ["hourly"]
    assert stored["manifest"]["nodes"]["seed.jaffle_shop.countries"]["tags"] == [], "no tags is kept"
    assert stored["format"] == FORMAT
    assert [step["which"] for step in stored["steps"]] == ["seed", "build"]
    pruned = prune_manifest({"metadata": {"dbt_schema_version": MANIFEST_SCHEMA}, "nodes": {
        "model.p.a": {**_model("a"), "raw_code": "select 1", "columns": {"id": {}}}}})  # fmt: skip
    assert "raw_code" not in pruned["nodes"]["model.p.a"]


@pytest.mark.parametrize(
    ("name", "builds"),
    [
        ("Invoke dbt with `dbt build`", True),
        ("Invoke dbt with `dbt build --select tag:hourly`", True),
        ("Invoke dbt with `dbt seed --full-refresh`", True),
        ("Invoke dbt with `dbt retry`", True),
        ("Invoke dbt with `dbt deps`", False),
        ("Invoke dbt with `dbt docs generate`", False),
        ("Clone git repository", False),
        ("Create profile from connection Warehouse", False),
    ],
)
def test_node_steps_are_recognised_by_name_not_position(name, builds):
    assert is_node_step(name) is builds


def test_a_run_without_node_steps_cannot_make_a_file():
    with pytest.raises(ValueError, match="no dbt step that built or tested nodes"):
        build_stored_document(
            job={"id": 1},
            run={"id": 9},
            manifest={"metadata": {"dbt_schema_version": MANIFEST_SCHEMA}, "nodes": {}},
            step_run_results=[(3, "Invoke dbt with `dbt docs generate`", _results("generate", {}))],
            account_id=1,
        )


# --- how a node task ends -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def failed_run() -> RunResultsSnapshot:
    steps = [
        step_outcome(
            index, name, json.loads((FIXTURES / "failed" / f"step{index}_run_results.json").read_text())
        )
        for index, name in ((4, "Invoke dbt with `dbt seed`"), (5, "Invoke dbt with `dbt build`"))
    ]
    return RunResultsSnapshot(7, 20, "Error", "https://x/runs/7/", run_results_by_node(steps))


def test_the_broken_model_fails_with_dbts_error_line(graph, failed_run):
    node = graph.node("stg_orders")
    outcome = node_task_outcome(node.unique_id, node.tests, failed_run)
    assert outcome.state == "failed"
    assert outcome.message == (
        "model jaffle_shop.stg_orders failed in dbt Cloud run 7 (Error): Invalid Input Error: "
        "DBT_FAIL_MODEL asked jaffle_shop.stg_orders to fail (demo failure switch)"
    )
    assert any("not_null_stg_orders_order_id: skipped" in line for line in outcome.lines)


def test_what_dbt_skipped_is_skipped_and_the_rest_succeeds(graph, failed_run):
    def state(name: str) -> str:
        node = graph.node(name)
        return node_task_outcome(node.unique_id, node.tests, failed_run, is_source=not node.is_built).state

    assert {name: state(name) for name in ("orders", "customers", "customer_features")} == dict.fromkeys(
        ("orders", "customers", "customer_features"), "skipped"
    )
    others = [n.task_id for n in graph.nodes if n.task_id not in {"stg_orders", "orders", "customers",
                                                                  "customer_features"}]  # fmt: skip
    assert {name: state(name) for name in others} == dict.fromkeys(others, "success")


def test_a_failed_folded_test_fails_its_task_naming_the_test():
    snapshot = _snapshot(
        {
            "model.p.a": ("success", None),
            "test.p.not_null_a_id.1": ("fail", "Got 3 results, configured to fail if != 0"),
        }
    )
    outcome = node_task_outcome("model.p.a", ["test.p.not_null_a_id.1"], snapshot)
    assert outcome.state == "failed"
    assert outcome.message.startswith("test not_null_a_id (folded into model p.a) failed in dbt Cloud run 7")
    assert outcome.message.endswith("Got 3 results, configured to fail if != 0")


def test_a_warning_is_reported_not_failed():
    snapshot = _snapshot({"model.p.a": ("success", None), "test.p.t.1": ("warn", "Got 1 result")})
    outcome = node_task_outcome("model.p.a", ["test.p.t.1"], snapshot)
    assert outcome.state == "success"
    assert "1 warning(s)" in outcome.message


def test_a_node_the_run_did_not_select_is_an_error_not_a_success():
    snapshot = _snapshot({"model.p.other": ("success", None)}, status=10)
    outcome = node_task_outcome("model.p.a", [], snapshot)
    assert outcome.state == "missing"
    assert "did not select it" in outcome.message
    assert "make dbt-manifest" in outcome.message


def test_a_node_a_failed_run_never_reached_is_skipped_saying_why():
    snapshot = _snapshot({}, status=20, without=((2, "Invoke dbt with `dbt build`"),))
    outcome = node_task_outcome("model.p.a", [], snapshot)
    assert outcome.state == "skipped"
    assert "step 2 (Invoke dbt with `dbt build`) left no results" in outcome.message


def test_the_last_outcome_of_a_node_across_steps_wins():
    seed, build = (
        step_outcome(1, "Invoke dbt with `dbt seed`", _results("seed", {"seed.p.s": "success"})),
        step_outcome(2, "Invoke dbt with `dbt build`", _results("build", {"seed.p.s": "error"})),
    )
    assert run_results_by_node([seed, build])["seed.p.s"].status == "error"
    docs = step_outcome(
        3, "Invoke dbt with `dbt docs generate`", _results("generate", {"seed.p.s": "success"})
    )
    assert run_results_by_node([seed, build, docs])["seed.p.s"].status == "error", "docs build nothing"


# --- the launcher's cause ---------------------------------------------------------------------------------
def test_the_launch_cause_is_stable_per_clear_and_new_after_one():
    first = launch_cause("dag", "manual__1", "grp.launch", 0, ["model.p.b", "model.p.a"])
    assert first == launch_cause("dag", "manual__1", "grp.launch", 0, ["model.p.a", "model.p.b"])
    assert first.startswith("Airflow task dag/manual__1/grp.launch#c0-")
    assert launch_cause("dag", "manual__1", "grp.launch", 1, ["model.p.a", "model.p.b"]) != first
    assert launch_cause("dag", "manual__1", "grp.launch", 0, ["model.p.a"]) != first
    assert len(launch_cause("d" * 200, "r" * 200, "t", 3, ["x"])) <= 255


# --- helpers ---------------------------------------------------------------------------------------------
def _model(name: str, *, version: int | None = None, tags: list[str] | None = None) -> dict[str, Any]:
    node = {
        "name": name,
        "resource_type": "model",
        "package_name": "p",
        "fqn": ["p", name],
        "tags": tags or [],
    }
    if version is not None:
        node.update(version=version, fqn=["p", name, f"v{version}"])
    return node


def _test(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "resource_type": "test",
        "package_name": "p",
        "fqn": ["p", name],
        "tags": ["checks"],
    }


def _results(which: str, statuses: dict[str, str], **args: Any) -> dict[str, Any]:
    return {
        "metadata": {"dbt_schema_version": RESULTS_SCHEMA},
        "args": {"which": which, **args},
        "results": [{"unique_id": uid, "status": status} for uid, status in statuses.items()],
    }


def _stored(nodes: dict[str, dict[str, Any]], child_map: dict[str, list[str]], steps: list[tuple]):
    manifest = {
        "metadata": {"dbt_schema_version": MANIFEST_SCHEMA},
        "nodes": {uid: {"unique_id": uid, **node} for uid, node in nodes.items()},
        "child_map": child_map,
    }
    step_results = [
        (
            index,
            f"Invoke dbt with `{command}`",
            _results(command.split()[1], dict.fromkeys(uids, "success"), **args),
        )
        for index, (command, uids, args) in enumerate(steps, start=1)
    ]
    document = build_stored_document(
        job={"id": 5, "name": "job"},
        run={"id": 1},
        manifest=manifest,
        step_run_results=step_results,
        account_id=1,
    )
    return parse_stored_document(document, "synthetic.json")


def _snapshot(
    statuses: dict[str, tuple[str, str | None]], status: int = 20, without=()
) -> RunResultsSnapshot:
    results = {uid: NodeRunResult(state, message, 2) for uid, (state, message) in statuses.items()}
    humanized = {10: "Success", 20: "Error"}[status]
    return RunResultsSnapshot(7, status, humanized, None, results, tuple(without))


# --- which run a refresh reads ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("run", "partial"),
    [
        ({"id": 1, "trigger": {"steps_override": None}}, False),
        ({"id": 2, "trigger": {"steps_override": ["dbt build --select fqn:p.a+"]}}, True),
        ({"id": 3, "trigger": {}, "retrying_run_id": 2}, True),
    ],
)
def test_a_refresh_skips_partial_reruns_of_the_job(run, partial):
    """A cleared task's rerun, a rerun parser's steps_override or a dbt Cloud retry succeed with part of
    the job's nodes: reading the graph from one would drop every other node's task."""
    from include.dbt_cloud.manifest_refresh import partial_run_reason

    assert (partial_run_reason(run) is not None) is partial


def test_a_dag_pointing_at_another_job_than_its_manifest_is_refused():
    """A DAG edited to run your job while the stored manifest is still the demo's: the import error
    says which job each is and how to refresh the file."""
    import pendulum
    from airflow.sdk import DAG

    from include.dbt_cloud.task_group import dbt_cloud_job_task_group

    path = str(STORED.relative_to(Path(__file__).resolve().parents[2]))
    with DAG("wrong_job", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
        with pytest.raises(
            JobManifestError, match=r"made from job 1, but the DAG runs job 65767.*make dbt-manifest"
        ):
            dbt_cloud_job_task_group(path, job_id=65767)
    with DAG("same_job", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")) as dag:
        group = dbt_cloud_job_task_group(path, job_id=1)
    assert group.node("customer_features").task_id == "eltml_build.customer_features"
    assert len(dag.tasks) == 17
