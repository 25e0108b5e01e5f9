"""
The run manager the API and the server use: queue runs, rerun from failure, cancel, start and stop.

``RunManager`` only wires the parts together; each part has its own module in this package:

* ``plan``        what a run executes (the job's steps, or a rerun from the failed step);
* ``dispatch``    when a queued run starts (run slots, one run per job, one writer per DuckDB file);
* ``execution``   executing a started run: its steps (clone, profile, ``dbt deps``, commands), outcome;
* ``environment`` the environment and profile a run's dbt processes get;
* ``supervisor``  starting, cancelling (SIGTERM, then SIGKILL) and timing out dbt processes;
* ``warm_dbt``    starting dbt with dbt already imported (a fork server per dbt Python);
* ``workspace``   the files of one run under ``<data-dir>/runs/<id>/``;
* ``recovery``    after a crash, ending the runs a dead server left in progress.

The typed run and step records these modules share are ``model.records``. Whoever wants to hear when
a run starts or finishes (the server: webhooks) passes ``on_run_change``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dbt_cloud_local.config.settings import Config
from dbt_cloud_local.faults import FaultInjector
from dbt_cloud_local.model.commands import Step
from dbt_cloud_local.model.records import PlannedStep, RunRecord, RunTrigger, plan_to_json
from dbt_cloud_local.model.resources import Job
from dbt_cloud_local.model.statuses import CANCELLED, ERROR, QUEUED
from dbt_cloud_local.runs.dispatch import Dispatcher, resources
from dbt_cloud_local.runs.environment import warehouse_path
from dbt_cloud_local.runs.execution import RunChanged, RunExecutor
from dbt_cloud_local.runs.plan import RetryRefused, plan_rerun, plan_run, rerun_trigger, retry_refusal
from dbt_cloud_local.runs.recovery import recover_interrupted_runs
from dbt_cloud_local.runs.supervisor import ProcessSupervisor
from dbt_cloud_local.runs.warm_dbt import WarmDbt
from dbt_cloud_local.runs.workspace import RunWorkspace
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.store.sqlite import utcnow


class RunManager:
    """Accepts run requests and owns the dispatcher and worker threads that execute them."""

    def __init__(
        self,
        config: Config,
        store: Store,
        data_dir: Path,
        faults: FaultInjector | None = None,
        on_run_change: RunChanged | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.data_dir = data_dir
        self.launcher = WarmDbt()
        self.executor = RunExecutor(
            config,
            store,
            data_dir,
            ProcessSupervisor(config.server.cancel_grace_seconds, launcher=self.launcher),
            faults,
            on_run_change=on_run_change,
        )
        self.dispatcher = Dispatcher(store, config.server.run_slots, self._resources, self.executor.execute)
        #: Serializes run-level retries, so two requests cannot both retry the same latest run.
        self._retry_lock = threading.Lock()

    # Lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self.executor.home.mkdir(parents=True, exist_ok=True)
        self.dispatcher.start()

    def recover(self) -> list[int]:
        """Mark runs left starting/running by a previous server process as errored; kill leftovers."""
        return recover_interrupted_runs(self.store, self.data_dir)

    def stop(self) -> None:
        """Stop dispatching, terminate running dbt processes and mark their runs errored."""
        self.dispatcher.stop()
        self.launcher.close()

    # Requests ---------------------------------------------------------------------------------

    def trigger(self, job: Job, request: dict[str, Any], steps: list[Step] | None) -> dict[str, Any]:
        """Queue a run of ``job`` for a validated ``/run/`` request; return the store's run row."""
        generate_docs = request.get("generate_docs_override")
        plan = plan_run(
            job,
            steps,
            job.generate_docs if generate_docs is None else generate_docs,
            generate_sources=job.run_generate_sources,
        )
        trigger = RunTrigger(
            cause=request["cause"],
            cause_category="api",
            job_definition_id=job.id,
            git_branch=request.get("git_branch"),
            git_sha=request.get("git_sha"),
            schema_override=request.get("schema_override"),
            dbt_version_override=request.get("dbt_version_override"),
            threads_override=request.get("threads_override"),
            target_name_override=request.get("target_name_override"),
            generate_docs_override=generate_docs,
            timeout_seconds_override=request.get("timeout_seconds_override"),
            steps_override=tuple(step.command for step in steps) if steps is not None else None,
        )
        return self._create(job, trigger, plan, retry_of_run_id=None)

    def rerun(self, job: Job) -> dict[str, Any]:
        """``/rerun/``: retry the job's latest run from its failed step if it errored, else run normally."""
        latest = self.store.latest_run_record_for_job(job.id)
        if latest is None or latest.status != ERROR:
            return self.trigger(job, {"cause": "Rerun of job via API (no failed run to retry)"}, None)
        plan = plan_rerun(latest, self.store.step_records(latest.id), RunWorkspace(self.data_dir, latest.id))
        return self._create(job, rerun_trigger(latest), plan, retry_of_run_id=latest.id)

    def retry(self, run_id: int) -> dict[str, Any]:
        """``/runs/{id}/retry/``: resume a failed latest run from its failed step, as ``/rerun/`` does.

        Raises ``RetryRefused`` (nothing is queued) when dbt Cloud's rules do not allow it.
        """
        with self._retry_lock:
            run = self.store.run_record(run_id)
            assert run is not None
            latest = self.store.latest_run_record_for_job(run.job_id)
            steps = self.store.step_records(run.id)
            workspace = RunWorkspace(self.data_dir, run.id)
            refusal = retry_refusal(
                run.id, run.status, run.job_id, latest.id if latest else None, steps, workspace
            )
            if refusal is not None:
                raise RetryRefused(refusal)
            job = self.config.jobs[run.job_id]
            plan = plan_rerun(run, steps, workspace)
            trigger = rerun_trigger(run, cause=f"Retry of run #{run.id} from the point of failure")
            return self._create(job, trigger, plan, retry_of_run_id=run.id)

    def cancel(self, run_id: int) -> dict[str, Any]:
        """Cancel a run: queued runs end at once; running ones get their dbt process terminated."""
        if self.store.transition_run(
            run_id,
            (QUEUED,),
            status=CANCELLED,
            status_message="Cancelled before it started",
            finished_at=utcnow(),
        ):
            self.dispatcher.wake()
        elif self.dispatcher.interrupt(run_id):
            self.store.update_run(run_id, cancel_requested=1)
        run = self.store.get_run(run_id)
        assert run is not None
        return run

    # Internals --------------------------------------------------------------------------------

    def _create(
        self, job: Job, trigger: RunTrigger, plan: tuple[PlannedStep, ...], retry_of_run_id: int | None
    ) -> dict[str, Any]:
        environment = self.config.environments[job.environment_id]
        run = self.store.create_run(
            account_id=job.account_id,
            project_id=job.project_id,
            environment_id=job.environment_id,
            job_id=job.id,
            trigger=trigger.to_json(),
            plan=plan_to_json(plan),
            git_branch=trigger.git_branch or environment.custom_branch,
            git_sha=trigger.git_sha,
            retry_of_run_id=retry_of_run_id,
        )
        self.dispatcher.wake()
        return run

    def _resources(self, run: RunRecord) -> frozenset[str]:
        """What ``run`` holds exclusively while executing: its job and its warehouse file."""
        environment = self.config.environments[run.environment_id]
        warehouse = warehouse_path(
            environment,
            self.store.resolved_env_vars(run.project_id, run.environment_id, run.job_id),
            RunWorkspace(self.data_dir, run.id).project,
        )
        return resources(run.job_id, warehouse)
