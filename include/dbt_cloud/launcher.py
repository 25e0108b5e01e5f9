"""The launcher of a dbt Cloud job's task group: the only task that starts a dbt Cloud run.

It is the group's Airflow *setup* task, upstream of every node task, with the group's finalize task as
its teardown. Airflow clears a setup together with any task below it that a user clears (with its
downstream, in the UI or the API), once per clear, however many node tasks were cleared. So each
clear runs the launcher once, and the launcher is the single writer: it alone decides which run the
node tasks wait on, and pushes its id (XCom ``dbt_cloud_run_id``).

What one try does:

1. **Which node tasks are waiting** for a run: it reads its group's task states
   (``ti.get_task_states(task_group_id=...)``, Airflow's execution API): the node tasks without a
   final state are the ones the first run, or the user's clear, left to run.
2. **The cause** of its run: a deterministic tag naming the DAG run, the launcher, the DAG run's
   ``clear_number`` (Airflow adds one per clear of the DAG run) and a digest of the waiting node set,
   e.g. ``Airflow task models_as_tasks/manual__…/eltml_build.launch#c1-3f2a9c01``. A retry of the
   launcher (a worker died, an API error) computes the same cause; a clear computes a new one.
3. **Attach or start**: it looks the cause up among the job's runs (``find_run_chain``: that run, or
   a dbt Cloud retry of it): found, it attaches to it, whatever its state, and starts nothing.
   Otherwise: every node task waiting -> the job as configured; some -> the job with
   ``steps_override`` = ONE ``dbt build`` selecting exactly those nodes and their folded tests,
   proven exact against the stored manifest (``include.rerun_parser.select_exactly``), with the
   flags the job's step repeated; none (only tasks below the teardown were cleared) -> no run.
   Transient API errors are retried with backoff, looking the cause up again before any repeated
   trigger, so a trigger whose answer was lost is found, never repeated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import tenacity
from airflow.sdk import BaseOperator

from include.dbt_cloud.hook import (
    DBT_CLOUD_CONN_ID,
    HOOK_PARAMS,
    ResilientDbtCloudHook,
    transient_retry_args,
)
from include.dbt_cloud.operator import RUN_ID_XCOM_KEY, run_tag

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.dbt_cloud.job_graph import GraphNode, JobGraph

#: Node task states that mean "not finished in this DAG run": cleared (None) or about to run again.
WAITING_STATES = frozenset({None, "none", "scheduled", "queued", "restarting", "up_for_retry",
                            "up_for_reschedule"})  # fmt: skip


def launch_cause(
    dag_id: str, dag_run_id: str, task_id: str, clear_number: int, waiting: Sequence[str]
) -> str:
    """The cause the launcher triggers with: the same for every try of one launch, new per clear.

    ``clear_number`` separates clears; the digest of the waiting node set also separates two clears
    made without bumping it (the REST API's ``reset_dag_runs=false``) that cleared different nodes.
    """
    digest = hashlib.sha256("\n".join(sorted(waiting)).encode()).hexdigest()[:8]
    return run_tag(dag_id, dag_run_id, f"{task_id}#c{clear_number}-{digest}")


class DbtCloudJobLauncherOperator(BaseOperator):
    """Start (or find) the one dbt Cloud run the node tasks of its group wait on; push its id.

    :param job_graph_path: the job's stored manifest (``include/dbt_manifests/<name>.json``).
    :param job_id: the dbt Cloud job; default: the one the stored manifest was made from.
    :param group_id: the task group whose node tasks it launches for.
    :param max_runs_scanned: how many of the job's latest runs are searched for its cause.
    """

    ui_color = "#c8e1ff"

    def __init__(
        self,
        *,
        job_graph_path: str,
        group_id: str,
        job_id: int | None = None,
        reserved_task_ids: Sequence[str] = (),
        max_runs_scanned: int = 200,
        dbt_cloud_conn_id: str = DBT_CLOUD_CONN_ID,
        account_id: int | None = None,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_graph_path = job_graph_path
        self.group_id = group_id
        self.job_id = job_id
        self.reserved_task_ids = tuple(reserved_task_ids)
        self.max_runs_scanned = max_runs_scanned
        self.dbt_cloud_conn_id = dbt_cloud_conn_id
        self.account_id = account_id
        self.hook_params = hook_params if hook_params is not None else dict(HOOK_PARAMS)

    @cached_property
    def hook(self) -> ResilientDbtCloudHook:
        return ResilientDbtCloudHook(self.dbt_cloud_conn_id, **self.hook_params)

    def graph(self) -> JobGraph:
        from include.dbt_cloud.job_graph import load_job_graph
        from include.paths import PROJECT_ROOT

        return load_job_graph(PROJECT_ROOT / self.job_graph_path, self.reserved_task_ids)

    def execute(self, context: Context) -> int | None:
        ti, dag_run = context["ti"], context["dag_run"]
        clear_number = int(getattr(dag_run, "clear_number", 0) or 0)  # fixed before anything else
        graph = self.graph()
        job_id = self.job_id if self.job_id is not None else graph.stored.job_id
        waiting = self._waiting_nodes(ti, graph)
        if not waiting:
            self.log.info(
                "Path: nothing to run. No node task of %s is waiting (only tasks after the group "
                "were cleared): no dbt Cloud run.",
                self.group_id,
            )
            return None
        cause = launch_cause(ti.dag_id, ti.run_id, ti.task_id, clear_number, [n.unique_id for n in waiting])
        # Each attempt looks the cause up again before it writes: a trigger whose answer was lost
        # (5xx, reset) but which dbt Cloud carried out is found and attached to, never repeated.
        retrying = tenacity.Retrying(
            **transient_retry_args(self.hook.retry_limit, self.hook.retry_delay, self.log)
        )
        run = retrying(self._attach_or_trigger, graph, job_id, waiting, cause, clear_number)
        run_id = int(run["id"])
        ti.xcom_push(key=RUN_ID_XCOM_KEY, value=run_id)
        if run.get("href"):
            ti.xcom_push(key="job_run_url", value=run["href"])
        return run_id

    def _waiting_nodes(self, ti: Any, graph: JobGraph) -> list[GraphNode]:
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_group_id=self.group_id)
        states = states.get(ti.run_id, {})
        prefix = f"{self.group_id}."
        unknown = [node.task_id for node in graph.nodes if f"{prefix}{node.task_id}" not in states]
        if unknown:
            self.log.warning(
                "%d node(s) of %s have no task in this DAG run (e.g. %s): the stored manifest changed "
                "since the DAG run started; they are left out.",
                len(unknown),
                self.job_graph_path,
                unknown[0],
            )
        return [
            node
            for node in graph.nodes
            if f"{prefix}{node.task_id}" in states and states[f"{prefix}{node.task_id}"] in WAITING_STATES
        ]

    def _attach_or_trigger(
        self, graph: JobGraph, job_id: int, waiting: list[GraphNode], cause: str, clear_number: int
    ) -> dict[str, Any]:
        from include.dbt_cloud.rerun import find_run_chain

        chain = find_run_chain(self.hook, self.account_id, job_id, cause, max_runs=self.max_runs_scanned)
        if chain.head is not None:
            head = chain.head
            self.log.info(
                "Path: attach. Run %s already carries this launch's cause %r (%s): the node tasks wait "
                "on it, no new run.",
                head["id"],
                cause,
                head.get("status_humanized", head.get("status")),
            )
            return head
        if len(waiting) == len(graph.nodes):
            self.log.info(
                "Path: trigger. All %d node tasks are waiting (clear number %d): triggering job %s as "
                "configured, cause %r.",
                len(waiting),
                clear_number,
                job_id,
                cause,
            )
            return self._trigger(job_id, cause, None)
        rerun = graph.rerun_command(node.unique_id for node in waiting)
        self.log.info(
            "Path: trigger a subset. %d of %d node tasks were cleared (clear number %d); they and "
            "their %d folded test(s) run in one dbt build, selected exactly (proven against %s):",
            len(waiting),
            len(graph.nodes),
            clear_number,
            len(rerun.unique_ids) - sum(node.is_built for node in waiting),
            self.job_graph_path,
        )
        for node in waiting:
            self.log.info("  %s (%s, %d folded test(s))", node.label, node.unique_id, len(node.tests))
        if rerun.mixed_flags:
            self.log.warning(
                "The cleared nodes come from job steps with different flags; the rerun uses step %d's.",
                rerun.flags_from_step,
            )
        self.log.info("Command: %s", rerun.command)
        return self._trigger(job_id, cause, [str(rerun.command)])

    def _trigger(self, job_id: int, cause: str, steps_override: list[str] | None) -> dict[str, Any]:
        run = self.hook.trigger_job_run(
            account_id=self.account_id, job_id=job_id, cause=cause, steps_override=steps_override
        ).json()["data"]
        self.log.info("Triggered dbt Cloud run %s: %s", run["id"], run.get("href"))
        return run
