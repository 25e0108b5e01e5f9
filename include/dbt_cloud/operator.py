"""Run a dbt Cloud job from Airflow and, when the task runs again, resume the run it launched.

The provider's ``retry_from_failure`` reruns the job's *latest* run, which is someone else's whenever
the job was triggered in between (its schedule, a colleague, another DAG), and a cancelled or timed
out run cannot be rerun from failure at all, so clearing the task rebuilds everything. Here the task
remembers its run in dbt Cloud itself: it triggers with a ``cause`` naming the DAG, the DAG run and
the task, and every try looks that run up (``include.dbt_cloud.rerun.find_run_chain``). Nothing on
the Airflow side (a dead worker, a Clear that wipes XComs) can make it forget.

Every try takes one path, and logs it:

- no run carries the tag: trigger the job (first try);
- the tagged run is queued or running: attach to it (a retry after a lost worker; no duplicate);
- it succeeded: done, no new run;
- it failed and dbt Cloud can retry it: dbt Cloud's run-level retry (``POST runs/{id}/retry/``);
- it failed or was cancelled and dbt Cloud cannot retry it (another run came after it, it was
  cancelled or timed out): trigger the job with ``steps_override`` = the rerun parser's exact
  commands from that run's artifacts, with the same tag, so a later try continues from there.

Only ``_get_or_trigger_run`` (the provider's own seam), the hook and the two "run finished" points
are overridden; waiting, deferral, timeouts and cancellation on kill are the provider's.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import TYPE_CHECKING, Any

import tenacity
from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudJobRunException, DbtCloudJobRunStatus
from airflow.providers.dbt.cloud.operators.dbt import DbtCloudRunJobOperator

from include.dbt_cloud.hook import (
    DbtCloudApiError,
    ResilientDbtCloudHook,
    transient_retry_args,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

#: dbt Cloud's limit on a run's cause.
MAX_CAUSE_LENGTH = 255
#: XCom key with the dbt Cloud run id, pushed as soon as it is known (also when the task then fails).
RUN_ID_XCOM_KEY = "dbt_cloud_run_id"
#: How every cause this operator writes begins: runs an Airflow task launched, and will record itself.
RUN_TAG_PREFIX = "Airflow task "


def run_tag(dag_id: str, dag_run_id: str, task_id: str, map_index: int = -1) -> str:
    """The trigger cause that names one task of one DAG run; a digest keeps long ids unique."""
    key = f"{dag_id}/{dag_run_id}/{task_id}" + (f"[{map_index}]" if map_index >= 0 else "")
    tag = f"{RUN_TAG_PREFIX}{key}"
    if len(tag) <= MAX_CAUSE_LENGTH:
        return tag
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{tag[: MAX_CAUSE_LENGTH - len(digest) - 2]} #{digest}"


class DbtCloudResumableRunJobOperator(DbtCloudRunJobOperator):
    """``DbtCloudRunJobOperator`` that attaches to, or resumes, the run it launched for its DAG run.

    :param max_runs_scanned: how many of the job's latest runs are searched for this task's run.
    ``retry_from_failure`` and ``reuse_existing_run`` are what this operator replaces: pass neither.
    The trigger ``cause`` is this task's tag (``trigger_reason`` and OpenLineage's cause injection
    are not used), since it is how the run is found again.
    """

    def __init__(self, *, max_runs_scanned: int = 200, **kwargs: Any) -> None:
        for replaced in ("retry_from_failure", "reuse_existing_run"):
            if kwargs.get(replaced):
                raise ValueError(
                    f"{replaced}=True: {type(self).__name__} always resumes the run it launched "
                    f"(attach, dbt Cloud retry or exact steps_override); remove {replaced}."
                )
        if max_runs_scanned < 1:
            raise ValueError(f"max_runs_scanned must be at least 1, got {max_runs_scanned}")
        super().__init__(**kwargs)
        self.max_runs_scanned = max_runs_scanned

    @cached_property
    def hook(self) -> ResilientDbtCloudHook:
        """The provider's hook, retrying transient errors with ``Retry-After`` (include.dbt_cloud.hook)."""
        return ResilientDbtCloudHook(self.dbt_cloud_conn_id, **self.hook_params)

    # --- the provider's seam: which run this try waits on --------------------------------------
    def _get_or_trigger_run(self, context: Context) -> tuple[int, str]:
        ti = context["ti"]
        tag = run_tag(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))
        self.trigger_reason = tag
        # Each attempt looks the run up again before it writes: a trigger or retry whose answer was
        # lost (5xx, reset) but which dbt Cloud carried out is found and attached to, not repeated.
        retrying = tenacity.Retrying(
            **transient_retry_args(self.hook.retry_limit, self.hook.retry_delay, self.log)
        )
        run = retrying(self._attach_or_start, tag, int(ti.try_number))
        ti.xcom_push(key=RUN_ID_XCOM_KEY, value=int(run["id"]))
        return int(run["id"]), run.get("href") or ""

    def _attach_or_start(self, tag: str, try_number: int) -> dict[str, Any]:
        from include.dbt_cloud.rerun import find_run_chain

        chain = find_run_chain(self.hook, self.account_id, self.job_id, tag, max_runs=self.max_runs_scanned)
        head = chain.head
        if head is None:
            self.log.info(
                "Path: trigger. No run among the %d latest of job %s carries this task's cause %r "
                "(try %d): triggering the job.",
                chain.scanned,
                self.job_id,
                tag,
                try_number,
            )
            return self._trigger(tag, self.steps_override)
        status = head["status"]
        if status in DbtCloudJobRunStatus.NON_TERMINAL_STATUSES.value:
            self.log.info(
                "Path: attach. Run %s of this DAG run is still %s: waiting on it, no new run.",
                head["id"],
                head.get("status_humanized", status),
            )
            return head
        if status == DbtCloudJobRunStatus.SUCCESS.value:
            self.log.info("Path: done. Run %s of this DAG run already succeeded: no new run.", head["id"])
            return head
        return self._resume(head, chain.later, tag)

    def _resume(self, head: dict[str, Any], later: list[dict[str, Any]], tag: str) -> dict[str, Any]:
        from include.dbt_cloud.rerun import NothingToRerun, plan_rerun
        from include.rerun_parser import RerunParserError

        run_id = int(head["id"])
        state = head.get("status_humanized") or head["status"]
        self.log.info(
            "Resuming run %s (%s), the dbt Cloud run of this DAG run, from its failure.", run_id, state
        )
        if later:
            self.log.info(
                "The job ran %d time(s) since, outside this task (not resumed): %s.",
                len(later),
                ", ".join(
                    f"run {run['id']} ({(run.get('trigger') or {}).get('cause', '?')})" for run in later[:5]
                ),
            )
        can_retry = head.get("can_retry")
        if can_retry is None:  # an API without the field: dbt Cloud's rule (failed, latest) decides
            can_retry = head["status"] == DbtCloudJobRunStatus.ERROR.value and not later
        try:  # logs which nodes rerun and why; dbt Cloud's retry reruns the same ones
            plan = plan_rerun(self.hook, self.account_id, run_id, airflow_run_id=tag)
        except RerunParserError as error:
            if not can_retry:
                raise
            self.log.warning("Could not plan the rerun of run %s from its artifacts: %s", run_id, error)
            plan = None
        if isinstance(plan, NothingToRerun):
            raise DbtCloudJobRunException(
                f"Run {run_id} ({state}) has nothing to resume: {plan.reason}. Look at the run in dbt "
                "Cloud; to build everything again, trigger the job there or clear this DAG run."
            )
        if can_retry:
            self.log.info(
                "Path: dbt Cloud retry. Resuming failed run %s with dbt Cloud's run-level retry (it "
                "is the job's latest run and has run results): it reruns the nodes above.",
                run_id,
            )
            try:
                return self._retry(run_id)
            except DbtCloudApiError as error:
                if error.status_code not in (400, 409, 422) or plan is None:
                    raise
                self.log.info("dbt Cloud refused to retry run %s (%s): using steps_override.", run_id, error)
        else:
            self.log.info(
                "Run %s (%s) cannot be retried by dbt Cloud: %s.",
                run_id,
                state,
                head.get("retry_not_supported_reason") or "it is not the job's latest failed run",
            )
        self.log.info(
            "Path: steps_override. Resuming run %s with the exact commands above (%d node(s) from "
            "its failed step, then its later steps); cause %r.",
            run_id,
            len(plan.rerun_unique_ids),
            tag,
        )
        return self._trigger(tag, plan.steps_override)

    # --- writes: one attempt each; _get_or_trigger_run looks again before any repeat -----------
    def _trigger(self, tag: str, steps_override: list[str] | None) -> dict[str, Any]:
        run = self.hook.trigger_job_run(
            account_id=self.account_id,
            job_id=self.job_id,
            cause=tag,
            steps_override=steps_override,
            schema_override=self.schema_override,
            additional_run_config=self.additional_run_config,
        ).json()["data"]
        self.log.info("Triggered run %s: %s", run["id"], run.get("href"))
        return run

    def _retry(self, run_id: int) -> dict[str, Any]:
        account_id = self.account_id or self.hook._resolve_account_id()
        response = self.hook._run_and_get_response(
            method="POST", endpoint=f"{account_id}/runs/{run_id}/retry/"
        )
        run = response.json()["data"]
        self.log.info("dbt Cloud started run %s, retrying run %s: %s", run["id"], run_id, run.get("href"))
        return run

    # --- a run this task waited on has finished --------------------------------------------------
    def _handle_terminal_status(self, status: int) -> int | None:
        self._log_results(self.run_id)
        return super()._handle_terminal_status(status)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> int:
        if event and event.get("status") in ("success", "error", "cancelled"):
            self._log_results(event.get("run_id"))
        return super().execute_complete(context, event)

    def _log_results(self, run_id: Any) -> None:
        from include.dbt_cloud.results import log_run_results

        if run_id is None:
            return
        try:  # a report must never fail the task (log_run_results promises not to raise; belt and braces)
            log_run_results(self.hook, self.account_id, int(run_id))
        except Exception:
            self.log.warning("Could not log the results of run %s.", run_id, exc_info=True)
