"""
Execute one run that the dispatcher started: its steps, one by one, and the run's outcome.

A run's steps are its plan (``runs.plan``), numbered as dbt Cloud numbers them (``model.anatomy``):

1. ``Clone git repository``: copy the dbt project into the run's working copy (dbt Cloud starts
   every run from a fresh checkout; the local one copies the project folder, without target/,
   logs/, dbt_packages/...);
2. ``Create profile from connection DuckDB``: write the run's ``profiles.yml`` from the project's
   connection (its ``profiles.yml``), with the run's ``schema_override``;
3. ``Invoke dbt with `dbt deps` ``: install the project's packages (on every run, as dbt Cloud does);
4. and on: the commands, with the checkbox steps (source freshness first, docs last).

Each step has its logs and timings. The first step that does not succeed ends the run; later steps do
not run. A checkbox step is the exception: when it fails, the run goes on, and its outcome does not
depend on it (as in dbt Cloud). Every dbt process goes through the ``ProcessSupervisor``, so a cancel,
a server stop or the job's timeout stops ``dbt deps`` exactly as it stops any other step.

What a run ends as:

* a step fails, or the job's timeout passes: error, with what failed;
* a user cancels: cancelled ("Cancelled by user");
* the server shuts down: error, ``SERVER_STOPPED_MESSAGE`` (the same as after a crash);
* a bug in this server: error, "Internal error: ...", never a run stuck in progress.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dbt_cloud_local.config.settings import Config
from dbt_cloud_local.faults import FaultInjector
from dbt_cloud_local.model.anatomy import step_name, with_built_in_steps
from dbt_cloud_local.model.records import CLONE, DBT, DEPS, PlannedStep, RunRecord
from dbt_cloud_local.model.resources import Environment
from dbt_cloud_local.model.statuses import CANCELLED, ERROR, RUNNING, SUCCESS
from dbt_cloud_local.runs.dispatch import ActiveRun
from dbt_cloud_local.runs.environment import (
    ProfileError,
    ensure_warehouse_dir,
    run_environment,
    step_paths,
    write_run_profile,
)
from dbt_cloud_local.runs.recovery import SERVER_STOPPED_MESSAGE
from dbt_cloud_local.runs.supervisor import POLL_SECONDS, Outcome, ProcessResult, ProcessSupervisor
from dbt_cloud_local.runs.workspace import RunWorkspace
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.store.sqlite import utcnow

log = logging.getLogger(__name__)

CANCELLED_MESSAGE = "Cancelled by user"
#: ``dbt deps`` may take at most this long, whatever the job's timeout (hub packages need the network).
DEPS_TIMEOUT_SECONDS = 300

#: Told ``(run_id, "started" | "finished")`` when a run starts or finishes; must return at once.
RunChanged = Callable[[int, str], None]


def summarize_results(target: Path) -> str | None:
    """A short summary of a step's ``run_results.json`` (e.g. ``1 error, 3 skipped``)."""
    path = target / "run_results.json"
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    counts: dict[str, int] = {}
    failed = []
    for result in results:
        status = str(result.get("status"))
        counts[status] = counts.get(status, 0) + 1
        if status in ("error", "fail", "runtime error"):
            failed.append(str(result.get("unique_id")))
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    if failed:
        summary += "; failed: " + ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "")
    return summary


class _RunEnded(Exception):
    """Raised inside ``RunExecutor._execute`` to end the run with ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _StepContext:
    """What every step of one run needs."""

    entry: ActiveRun
    run: RunRecord
    environment: Environment
    workspace: RunWorkspace
    env: dict[str, str]
    deadline: float | None
    threads: int | None


class RunExecutor:
    """Executes runs on the dispatcher's worker threads; one call of ``execute`` per run."""

    def __init__(
        self,
        config: Config,
        store: Store,
        data_dir: Path,
        supervisor: ProcessSupervisor,
        faults: FaultInjector | None = None,
        on_run_change: RunChanged | None = None,
    ) -> None:
        self.config = config
        #: E.g. to send webhooks (see ``RunChanged``).
        self.on_run_change = on_run_change
        self.store = store
        self.data_dir = data_dir
        self.home = data_dir / "home"
        self.supervisor = supervisor
        self.faults = faults

    def execute(self, entry: ActiveRun) -> None:
        """Execute the run and record how it ended; never raises."""
        try:
            self._execute(entry)
        except Exception as exc:
            log.exception("Run %s failed inside the local dbt Cloud server", entry.run_id)
            self.store.update_run(
                entry.run_id, status=ERROR, status_message=f"Internal error: {exc}", finished_at=utcnow()
            )
            self._announce(entry.run_id, "finished")

    def _execute(self, entry: ActiveRun) -> None:
        run = self.store.run_record(entry.run_id)
        assert run is not None
        workspace = RunWorkspace(self.data_dir, run.id)
        steps_run = 0
        try:
            if entry.interrupt.is_set():
                raise _RunEnded(CANCELLED, CANCELLED_MESSAGE)
            job = self.config.jobs[run.job_id]
            environment = self.config.environments[run.environment_id]
            env = run_environment(
                run,
                job=job,
                environment=environment,
                project_vars=self.store.resolved_env_vars(run.project_id, run.environment_id, run.job_id),
                home=self.home,
                workspace=workspace,
            )
            ensure_warehouse_dir(env, environment)
            timeout = run.trigger.timeout_seconds_override or job.timeout_seconds
            step = _StepContext(
                entry=entry,
                run=run,
                environment=environment,
                workspace=workspace,
                env=env,
                deadline=time.monotonic() + timeout if timeout else None,
                threads=run.trigger.threads_override or job.threads,
            )
            now = utcnow()
            self.store.update_run(
                run.id, status=RUNNING, started_at=now, last_heartbeat_at=now, status_message=""
            )
            self._announce(run.id, "started")
            for index, planned in enumerate(with_built_in_steps(run.plan), start=1):
                steps_run = index
                self._run_step(step, planned, index)
        except _RunEnded as ended:
            self._finish(run.id, ended.status, ended.message, workspace, steps_run)
            return
        self._finish(run.id, SUCCESS, "Success", workspace, steps_run)

    def _run_step(self, context: _StepContext, planned: PlannedStep, index: int) -> None:
        """Execute step ``index``: return if it succeeded or is a checkbox step, else raise ``_RunEnded``."""
        run, workspace = context.run, context.workspace
        step = planned.to_step().with_threads(context.threads) if planned.kind == DBT else planned.to_step()
        name = step_name(planned, run.trigger.schema_override)
        workspace.prepare_step(index)
        if planned.kind == DBT:
            workspace.carry_partial_parse(index)
        if planned.retry_of is not None:
            source = RunWorkspace(self.data_dir, planned.retry_of.run_id).target(planned.retry_of.step)
            # dbt retry reads <target-path>/run_results.json when --state is not given.
            (workspace.target(index) / "run_results.json").write_bytes(
                (source / "run_results.json").read_bytes()
            )
        record = self.store.add_step_record(run.id, index, name, step.command, list(step.args))
        if context.entry.server_stopping:
            self.store.update_step(record.id, status=ERROR, finished_at=utcnow())
            raise _RunEnded(ERROR, SERVER_STOPPED_MESSAGE)
        self._injected_step_delay(context.entry)
        if not planned.invokes_dbt:
            self._run_built_in(context, planned, index, record.id, name)
            return
        argv = [str(context.environment.dbt_executable), *step.args]
        deadline = context.deadline
        if planned.kind == DEPS:
            deps_deadline = time.monotonic() + DEPS_TIMEOUT_SECONDS
            deadline = deps_deadline if deadline is None else min(deadline, deps_deadline)
        result = self.supervisor.run(
            argv,
            cwd=workspace.project,
            env=step_paths(context.env, workspace, index),
            output=workspace.console(index),
            interrupt=context.entry.interrupt,
            deadline=deadline,
            on_start=lambda pid: self.store.update_step(record.id, pid=pid),
            heartbeat=lambda: self._heartbeat(run.id),
        )
        finished = utcnow()
        what = f"Step {index} (`{step.command}`)"
        if result.outcome is Outcome.NOT_STARTED:
            message = f"Could not start dbt ({argv[0]}): {result.start_error}"
            with workspace.console(index).open("ab") as console:
                console.write(message.encode() + b"\n")
            self.store.update_step(record.id, status=ERROR, finished_at=finished)
            raise _RunEnded(ERROR, f"{what} failed: {message}")
        if result.outcome is Outcome.EXITED and result.exit_code == 0:
            self.store.update_step(record.id, status=SUCCESS, finished_at=finished, exit_code=0)
            return
        cancelled = result.outcome is Outcome.INTERRUPTED and not context.entry.server_stopping
        self.store.update_step(
            record.id,
            status=CANCELLED if cancelled else ERROR,
            finished_at=finished,
            exit_code=result.exit_code,
        )
        self._raise_if_stopped(context.entry, result, f"step {index} (`{step.command}`)", context.deadline)
        if result.outcome is Outcome.TIMED_OUT:  # only `dbt deps` has a deadline of its own
            raise _RunEnded(ERROR, f"{what} did not finish within {DEPS_TIMEOUT_SECONDS} seconds")
        if planned.optional:
            log.info("Run %s: %s failed; as in dbt Cloud, the run goes on", run.id, what)
            return
        summary = summarize_results(workspace.target(index))
        message = f"{what} failed with exit code {result.exit_code}"
        raise _RunEnded(ERROR, f"{message}: {summary}" if summary else message)

    def _run_built_in(
        self, context: _StepContext, planned: PlannedStep, index: int, step_id: int, name: str
    ) -> None:
        """Step 1 (the project into the run's working copy) or step 2 (the run's profile), logged to
        the step's console; a failure ends the run as in dbt Cloud."""
        run, workspace = context.run, context.workspace
        console = workspace.console(index)
        started = time.monotonic()
        try:
            if planned.kind == CLONE:
                source = self.config.projects[run.project_id].dbt_project_dir
                lines = workspace.prepare(source)
                lines.append(f"The run's git branch: {run.git_branch or '(none)'}")
            else:
                lines = write_run_profile(
                    workspace, run.trigger.schema_override, context.env.get("DBT_TARGET")
                )
            failure = None
        except (OSError, ProfileError) as exc:
            lines, failure = [f"Error: {exc}"], str(exc)
        lines.append(f"{'Failed' if failure else 'Done'} in {time.monotonic() - started:.2f} s")
        console.write_text("".join(f"{line}\n" for line in lines))
        self._heartbeat(run.id)
        stopping, interrupted = context.entry.server_stopping, context.entry.interrupt.is_set()
        status = ERROR if failure is not None or stopping else CANCELLED if interrupted else SUCCESS
        self.store.update_step(step_id, status=status, finished_at=utcnow(), exit_code=int(status != SUCCESS))
        if stopping:
            raise _RunEnded(ERROR, SERVER_STOPPED_MESSAGE)
        if failure is not None:
            raise _RunEnded(ERROR, f"Step {index} ({name}) failed: {failure}")
        if interrupted:
            raise _RunEnded(CANCELLED, CANCELLED_MESSAGE)

    def _raise_if_stopped(
        self, entry: ActiveRun, result: ProcessResult, what: str, deadline: float | None
    ) -> None:
        """End the run if the supervisor stopped the process: server stop, cancel or job timeout."""
        if result.outcome is Outcome.EXITED:
            return
        if entry.server_stopping:
            raise _RunEnded(ERROR, SERVER_STOPPED_MESSAGE)
        if result.outcome is Outcome.INTERRUPTED:
            raise _RunEnded(CANCELLED, CANCELLED_MESSAGE)
        if result.outcome is Outcome.TIMED_OUT and deadline is not None and time.monotonic() > deadline:
            raise _RunEnded(ERROR, f"Job run timed out: {what} exceeded the job's timeout")

    def _heartbeat(self, run_id: int) -> None:
        self.store.update_run(run_id, last_heartbeat_at=utcnow())

    def _injected_step_delay(self, entry: ActiveRun) -> None:
        """
        Fault injection: hold the step back while ``step_delay_ms`` is set (up to that long).

        Lifting the fault (``DELETE /_local/faults``) releases waiting runs at once, so a test can keep
        a run in flight exactly as long as it needs; a cancel releases it too.
        """
        if self.faults is None or not self.faults.settings.step_delay_ms:
            return
        deadline = time.monotonic() + self.faults.settings.step_delay_ms / 1000
        while (
            self.faults.settings.step_delay_ms
            and time.monotonic() < deadline
            and not entry.interrupt.is_set()
        ):
            entry.interrupt.wait(POLL_SECONDS)

    def _finish(
        self, run_id: int, status: int, message: str, workspace: RunWorkspace, steps_run: int
    ) -> None:
        targets = [workspace.target(index) for index in range(1, steps_run + 1)]
        self.store.update_run(
            run_id,
            status=status,
            status_message=message,
            finished_at=utcnow(),
            artifacts_saved=int(any((target / "manifest.json").exists() for target in targets)),
            has_docs_generated=int(any((target / "catalog.json").exists() for target in targets)),
            has_sources_generated=int(any((target / "sources.json").exists() for target in targets)),
        )
        self._announce(run_id, "finished")

    def _announce(self, run_id: int, phase: str) -> None:
        if self.on_run_change is not None:
            self.on_run_change(run_id, phase)
