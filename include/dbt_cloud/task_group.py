"""Every node of a dbt Cloud job as an Airflow task, in one task group, run by ONE dbt Cloud run.

    from include.dbt_cloud.task_group import dbt_cloud_job_task_group

    job = dbt_cloud_job_task_group("include/dbt_manifests/eltml_build.json")
    load >> job.group
    job.node("customer_features") >> ml_training

The group holds:

- ``launch``: the setup task that starts (or finds) the run for the DAG run, once per clear
  (``include.dbt_cloud.launcher``);
- one task per model, seed and snapshot the job builds (and per source whose tests it runs), wired
  like the manifest, each test folded into one of them (``include.dbt_cloud.job_graph``); they defer
  at once and share one poller per run (``include.dbt_cloud.node_task``, ``node_trigger``);
- ``finalize``: the teardown, which runs whatever the nodes' outcomes: it logs the run node by node,
  warns when the run built nodes the stored manifest does not know (refresh it), and records one
  Airflow asset event per model, seed and snapshot the run built (alias ``dbt_cloud_models``).

The graph comes from the job's stored manifest (``include.dbt_cloud.job_manifest``, refreshed by
``make dbt-manifest``): a DAG parse reads a file, never the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import TaskGroup, task

from include.dbt_cloud.assets import DBT_CLOUD_MODELS
from include.dbt_cloud.job_graph import JobGraph, load_job_graph
from include.dbt_cloud.job_manifest import JobManifestError
from include.dbt_cloud.launcher import DbtCloudJobLauncherOperator
from include.dbt_cloud.node_task import DbtCloudNodeOperator
from include.paths import PROJECT_ROOT

LAUNCHER_TASK_ID = "launch"
FINALIZE_TASK_ID = "finalize"


@dataclass
class DbtCloudJobGroup:
    """What :func:`dbt_cloud_job_task_group` built: the group, its launcher, teardown and node tasks."""

    group: TaskGroup
    graph: JobGraph
    launcher: DbtCloudJobLauncherOperator
    finalize: Any
    tasks: dict[str, DbtCloudNodeOperator]

    def node(self, name: str) -> DbtCloudNodeOperator:
        """The task of a node, by dbt name, label, task id or unique_id (``customer_features``)."""
        return self.tasks[self.graph.node(name).task_id]


def dbt_cloud_job_task_group(
    manifest_path: str,
    *,
    group_id: str | None = None,
    job_id: int | None = None,
    account_id: int | None = None,
    check_interval: float = 10,
    timeout: timedelta = timedelta(hours=3),
    record_assets: bool = True,
) -> DbtCloudJobGroup:
    """Build the group of a dbt Cloud job from its stored manifest (a path relative to the project).

    :param group_id: default: the manifest file's name (``eltml_build``).
    :param job_id: the dbt Cloud job; it must be the one the manifest was made from (checked).
    :param account_id: checked against the manifest's when both are known; the tasks take theirs from
        ``default_args`` like every dbt Cloud operator here.
    :param check_interval: seconds between two polls of the run (one poller for all node tasks).
    :param timeout: how long a node task waits for the run before it fails.
    :param record_assets: whether ``finalize`` records per-model asset events.
    """
    path = PROJECT_ROOT / manifest_path
    graph = load_job_graph(path, reserved_task_ids=(LAUNCHER_TASK_ID, FINALIZE_TASK_ID))
    stored = graph.stored
    if job_id is not None and job_id != stored.job_id:
        raise JobManifestError(
            manifest_path, f"was made from job {stored.job_id}, but the DAG runs job {job_id}"
        )
    if account_id is not None and stored.account_id is not None and account_id != stored.account_id:
        raise JobManifestError(
            manifest_path, f"was made in account {stored.account_id}, but the DAG uses account {account_id}"
        )
    job = job_id if job_id is not None else stored.job_id
    name = stored.job_name or f"job {job}"
    with TaskGroup(
        group_id or Path(manifest_path).stem,
        tooltip=f"dbt Cloud job {job} ({name}): one task per node, one dbt Cloud run",
    ) as group:
        launcher = DbtCloudJobLauncherOperator(
            task_id=LAUNCHER_TASK_ID,
            task_display_name="launch dbt Cloud run",
            job_graph_path=manifest_path,
            group_id=group.group_id,
            job_id=job,
            reserved_task_ids=(LAUNCHER_TASK_ID, FINALIZE_TASK_ID),
            doc_md=f"Starts the one dbt Cloud run of job {job} ({name}) for this DAG run, or, after a "
            "clear, the run of the cleared node tasks (include/dbt_cloud/launcher.py).",
        ).as_setup()
        tasks: dict[str, DbtCloudNodeOperator] = {}
        has_children: set[str] = set()
        for node in graph.nodes:
            operator = DbtCloudNodeOperator(
                task_id=node.task_id,
                task_display_name=node.label,
                unique_id=node.unique_id,
                tests=node.tests,
                is_source=not node.is_built,
                launcher_task_id=launcher.task_id,
                check_interval=check_interval,
                timeout=timeout,
                doc_md=_node_doc(node.unique_id, node.tests),
            )
            tasks[node.task_id] = operator
            parents = [tasks[graph.by_unique_id[parent].task_id] for parent in node.parents]
            if parents:
                has_children.update(parent.task_id for parent in parents)
                operator.set_upstream(parents)
            else:
                operator.set_upstream(launcher)
        finalize = _finalize_task(launcher.task_id, manifest_path, record_assets)()
        finalize.as_teardown(setups=launcher)
        leaves = [operator for operator in tasks.values() if operator.task_id not in has_children]
        for leaf in leaves:
            leaf >> finalize
    return DbtCloudJobGroup(group=group, graph=graph, launcher=launcher, finalize=finalize, tasks=tasks)


def _node_doc(unique_id: str, tests: tuple[str, ...]) -> str:
    folded = "\n".join(f"- `{test}`" for test in tests) or "- none"
    return f"dbt node `{unique_id}`. Tests folded into this task:\n{folded}"


def _finalize_task(launcher_task_id: str, manifest_path: str, record_assets: bool) -> Any:
    @task(
        task_id=FINALIZE_TASK_ID,
        task_display_name="finalize",
        outlets=[DBT_CLOUD_MODELS] if record_assets else [],
    )
    def finalize(**context: Any) -> int | None:
        """Report the group's dbt Cloud run; record its per-model asset events."""
        import logging

        from include.dbt_cloud.assets import dbt_task_run_id, record_model_assets
        from include.dbt_cloud.hook import dbt_cloud_hook
        from include.dbt_cloud.job_graph import load_job_graph
        from include.dbt_cloud.results import NODE_COMMANDS, fetch_steps, format_step

        log = logging.getLogger("airflow.task")
        run_id = dbt_task_run_id(context["ti"], launcher_task_id)
        if run_id is None:
            log.info("%s started no dbt Cloud run in this DAG run: nothing to report.", launcher_task_id)
            return None
        launcher = context["task"].dag.get_task(launcher_task_id)
        hook = dbt_cloud_hook()
        steps = [
            step for step in fetch_steps(hook, launcher.account_id, run_id) if step.command in NODE_COMMANDS
        ]
        if steps:
            log.info("dbt Cloud run %s, node by node:\n%s", run_id, "\n".join(format_step(s) for s in steps))
        graph = load_job_graph(PROJECT_ROOT / manifest_path, (LAUNCHER_TASK_ID, FINALIZE_TASK_ID))
        known = set(graph.by_unique_id) | set(graph.owner_of)
        unknown = sorted({node.unique_id for step in steps for node in step.nodes} - known)
        if unknown:
            log.warning(
                "dbt Cloud run %s ran %d node(s) that have no task here (e.g. %s): the job changed since "
                "%s was made. Refresh it with `make dbt-manifest` and deploy.",
                run_id,
                len(unknown),
                unknown[0],
                manifest_path,
            )
        if record_assets:
            record_model_assets(hook, launcher.account_id, run_id, context["outlet_events"])
        return run_id

    return finalize
