"""
Execute one run that the dispatcher started: working copy, packages, steps, and the run's outcome.

In order: copy the project into the run's working copy (apply ``schema_override`` to its profile),
build the run's environment, install packages with ``dbt deps`` when the project declares any (dbt
Cloud does on every run, since each run starts from a clean checkout), then run the planned steps one
by one. The first step that does not succeed ends the run; later steps, docs included, do not run.
Every dbt process goes through the ``ProcessSupervisor``, so a cancel, a server stop or the job's
timeout stops ``dbt deps`` exactly as it stops a step.

What a run ends as:

* a step or ``dbt deps`` fails, or the job's timeout passes: error, with what failed;
* a user cancels: cancelled ("Cancelled by user");
* the server shuts down: error, ``SERVER_STOPPED_MESSAGE`` (the same as after a crash);
* a bug in this server: error, "Internal error: ...", never a run stuck in progress.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from dbt_cloud_local.config.settings import Config
from dbt_cloud_local.faults import FaultInjector
from dbt_cloud_local.model.records import PlannedStep, RunRecord
from dbt_cloud_local.model.resources import Environment
from dbt_cloud_local.model.statuses import CANCELLED, ERROR, RUNNING, SUCCESS
from dbt_cloud_local.runs.dispatch import ActiveRun
from dbt_cloud_local.runs.environment import (
    apply_schema_override,
    deps_paths,
    ensure_warehouse_dir,
    run_environment,
    step_paths,
)
from dbt_cloud_local.runs.recovery import SERVER_STOPPED_MESSAGE
from dbt_cloud_local.runs.supervisor import POLL_SECONDS, Outcome, ProcessResult, ProcessSupervisor
from dbt_cloud_local.runs.workspace import RunWorkspace, tail_text
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.store.sqlite import utcnow

log = logging.getLogger(__name__)

CANCELLED_MESSAGE = "Cancelled by user"
#: Files that declare packages for ``dbt deps``.
PACKAGE_FILES = ("packages.yml", "dependencies.yml")
#: Local packages install in seconds; hub packages need the network and may take longer.
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
            workspace.prepare(self.config.projects[run.project_id].dbt_project_dir)
            apply_schema_override(workspace, run.trigger.schema_override)
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
            deadline = time.monotonic() + timeout if timeout else None
            threads = run.trigger.threads_override or job.threads
            now = utcnow()
            self.store.update_run(
                run.id, status=RUNNING, started_at=now, last_heartbeat_at=now, status_message=""
            )
            self._announce(run.id, "started")
            self._install_packages(entry, environment, workspace, env, deadline)
            for index, planned in enumerate(run.plan, start=1):
                steps_run = index
                self._run_step(entry, run, planned, index, environment, workspace, env, deadline, threads)
        except _RunEnded as ended:
            self._finish(run.id, ended.status, ended.message, workspace, steps_run)
            return
        self._finish(run.id, SUCCESS, "Success", workspace, steps_run)

    def _install_packages(
        self,
        entry: ActiveRun,
        environment: Environment,
        workspace: RunWorkspace,
        env: dict[str, str],
        deadline: float | None,
    ) -> None:
        """
        ``dbt deps`` into the fresh working copy when the project declares packages.

        The working copy never carries ``dbt_packages/``. Output goes to ``<run>/deps.log``. It is
        not recorded as a run step, so the steps the API returns are exactly the planned ones.
        """
        if not any((workspace.project / name).exists() for name in PACKAGE_FILES):
            return
        executable = environment.dbt_executable
        log_path = workspace.deps_log
        deps_deadline = time.monotonic() + DEPS_TIMEOUT_SECONDS
        result = self.supervisor.run(
            [str(executable), "deps"],
            cwd=workspace.project,
            env=deps_paths(env, workspace),
            output=log_path,
            interrupt=entry.interrupt,
            deadline=deps_deadline if deadline is None else min(deadline, deps_deadline),
            heartbeat=lambda: self._heartbeat(entry.run_id),
        )
        if result.outcome is Outcome.NOT_STARTED:
            raise _RunEnded(
                ERROR,
                f"Could not install the project's packages with `dbt deps` ({executable}): "
                f"{result.start_error}",
            )
        self._raise_if_stopped(entry, result, "`dbt deps`", deadline)
        if result.outcome is Outcome.TIMED_OUT:
            raise _RunEnded(
                ERROR, f"`dbt deps` did not finish within {DEPS_TIMEOUT_SECONDS} seconds and was stopped"
            )
        if result.exit_code != 0:
            tail, _ = tail_text(log_path, 20)
            raise _RunEnded(ERROR, f"`dbt deps` failed with exit code {result.exit_code}:\n{tail}")

    def _run_step(
        self,
        entry: ActiveRun,
        run: RunRecord,
        planned: PlannedStep,
        index: int,
        environment: Environment,
        workspace: RunWorkspace,
        env: dict[str, str],
        deadline: float | None,
        threads: int | None,
    ) -> None:
        """Execute step ``index``; return if it succeeded, else raise ``_RunEnded``."""
        step = planned.to_step().with_threads(threads)
        workspace.prepare_step(index)
        workspace.carry_partial_parse(index)
        if planned.retry_of is not None:
            source = RunWorkspace(self.data_dir, planned.retry_of.run_id).target(planned.retry_of.step)
            # dbt retry reads <target-path>/run_results.json when --state is not given.
            (workspace.target(index) / "run_results.json").write_bytes(
                (source / "run_results.json").read_bytes()
            )
        record = self.store.add_step_record(run.id, index, step.name, step.command, list(step.args))
        if entry.server_stopping:
            self.store.update_step(record.id, status=ERROR, finished_at=utcnow())
            raise _RunEnded(ERROR, SERVER_STOPPED_MESSAGE)
        self._injected_step_delay(entry)
        argv = [str(environment.dbt_executable), *step.args]
        result = self.supervisor.run(
            argv,
            cwd=workspace.project,
            env=step_paths(env, workspace, index),
            output=workspace.console(index),
            interrupt=entry.interrupt,
            deadline=deadline,
            on_start=lambda pid: self.store.update_step(record.id, pid=pid),
            heartbeat=lambda: self._heartbeat(run.id),
        )
        finished = utcnow()
        if result.outcome is Outcome.NOT_STARTED:
            message = f"Could not start dbt ({argv[0]}): {result.start_error}"
            with workspace.console(index).open("ab") as console:
                console.write(message.encode() + b"\n")
            self.store.update_step(record.id, status=ERROR, finished_at=finished)
            raise _RunEnded(ERROR, message)
        if result.outcome is Outcome.EXITED and result.exit_code == 0:
            self.store.update_step(record.id, status=SUCCESS, finished_at=finished, exit_code=0)
            return
        cancelled = result.outcome is Outcome.INTERRUPTED and not entry.server_stopping
        self.store.update_step(
            record.id,
            status=CANCELLED if cancelled else ERROR,
            finished_at=finished,
            exit_code=result.exit_code,
        )
        self._raise_if_stopped(entry, result, f"step {index} (`{step.command}`)", deadline)
        summary = summarize_results(workspace.target(index))
        message = f"Step {index} (`{step.command}`) failed with exit code {result.exit_code}"
        raise _RunEnded(ERROR, f"{message}: {summary}" if summary else message)

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
