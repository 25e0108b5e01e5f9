"""The Airflow task of one dbt node (model, seed, snapshot, or a source's tests) of a dbt Cloud job.

It never starts anything: the group's launcher (``include.dbt_cloud.launcher``) started the one dbt
Cloud run and pushed its id. ``execute`` pulls that id and defers at once, without an API call; the
trigger (``include.dbt_cloud.node_trigger``) shares one poller per run with every other node task and
ends the task by its node's outcome (``include.dbt_cloud.node_outcomes`` says which and why): success
and skip in the triggerer itself, a failure by resuming the task here, in
:meth:`DbtCloudNodeOperator.execute_complete`, which fails it without a retry. A worker dying or the task
retrying defers again on the same run: a node task can never start a second run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.dbt_cloud.hook import DBT_CLOUD_CONN_ID, HOOK_PARAMS
from include.dbt_cloud.operator import RUN_ID_XCOM_KEY

if TYPE_CHECKING:
    from airflow.sdk import Context


class DbtCloudNodeOperator(BaseOperator):
    """Wait for the group's dbt Cloud run and end as that run left this task's node and tests.

    :param unique_id: the dbt node (``model.jaffle_shop.orders``; a source's id for its tests' task).
    :param tests: the unique_ids of the tests folded into this task.
    :param launcher_task_id: the group's launcher, whose XCom ``dbt_cloud_run_id`` names the run.
    :param check_interval: seconds between two polls of the run (one poller for every node task).
    :param timeout: how long the task may wait for the run before it fails (the run goes on).
    """

    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        unique_id: str,
        tests: Sequence[str] = (),
        is_source: bool = False,
        launcher_task_id: str,
        check_interval: float = 10,
        timeout: timedelta = timedelta(hours=3),
        dbt_cloud_conn_id: str = DBT_CLOUD_CONN_ID,
        account_id: int | None = None,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.unique_id = unique_id
        self.tests = tuple(tests)
        self.is_source = is_source
        self.launcher_task_id = launcher_task_id
        self.check_interval = check_interval
        self.timeout = timeout
        self.dbt_cloud_conn_id = dbt_cloud_conn_id
        self.account_id = account_id
        self.hook_params = hook_params if hook_params is not None else dict(HOOK_PARAMS)

    def execute(self, context: Context) -> None:
        from include.dbt_cloud.node_trigger import DbtCloudNodeTrigger

        run_id = context["ti"].xcom_pull(task_ids=self.launcher_task_id, key=RUN_ID_XCOM_KEY)
        if run_id is None:
            raise AirflowFailException(
                f"{self.launcher_task_id} started no dbt Cloud run for this DAG run, so there is nothing "
                f"for {self.unique_id} to wait on; clear this task with its downstream to start one."
            )
        self.log.info(
            "Waiting for dbt Cloud run %s (started by %s) to finish: %s%s.",
            run_id,
            self.launcher_task_id,
            self.unique_id,
            f" and {len(self.tests)} folded test(s)" if self.tests else "",
        )
        self.defer(
            trigger=DbtCloudNodeTrigger(
                conn_id=self.dbt_cloud_conn_id,
                account_id=self.account_id,
                run_id=int(run_id),
                unique_id=self.unique_id,
                tests=self.tests,
                is_source=self.is_source,
                poll_interval=self.check_interval,
                hook_params=self.hook_params,
            ),
            method_name="execute_complete",
            timeout=self.timeout,
        )

    def execute_complete(self, context: Context, event: Any = None) -> int | None:
        if isinstance(event, str):
            # ``airflow dags test`` resumes tasks whose trigger ended them (TaskSuccessEvent,
            # TaskSkippedEvent) with the end state alone; the trigger logged the outcome above.
            state = event.rsplit(".", 1)[-1].lower()
            if state == "skipped":
                raise AirflowSkipException(f"dbt skipped {self.unique_id} (the trigger's log above says why)")
            if state == "success":
                return None
        if not isinstance(event, dict) or event.get("status") != "finished":
            message = (event or {}).get("message") if isinstance(event, dict) else event
            run_id = event.get("run_id") if isinstance(event, dict) else None
            # A transient API problem: the retry defers again on the same run (no new run).
            raise AirflowException(f"Could not read dbt Cloud run {run_id}: {message or 'no event'}")
        # The trigger logged the run's link and each node's and test's line into this task's log.
        run_id = int(event["run_id"])
        state, message = event.get("state"), event.get("message") or ""
        if state == "success":
            self.log.info(message)
            return run_id
        if state == "skipped":
            raise AirflowSkipException(message)
        self.log.error(message)
        # Failed (or missing): a retry cannot change a finished run; clearing the task starts a new one.
        raise AirflowFailException(message)
