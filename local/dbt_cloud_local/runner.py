"""
Execute runs with real dbt Core: queueing, isolation, cancellation, rerun from failure and recovery.

Scheduling rules (what dbt Cloud does, plus one local constraint):

* Runs of one job execute one at a time, in the order they were triggered (dbt Cloud queues them).
* Runs whose environments write the same DuckDB file are serialized too, because DuckDB allows a
  single writing process per database file. The warehouse is the resolved value of the
  environment's ``warehouse_env_var`` (``DBT_DUCKDB_PATH`` by default). Whoever else writes that file
  (for example an Airflow task loading raw tables) must not overlap a run either.
* At most ``server.run_slots`` runs execute at once; a run that cannot start yet stays queued and
  blocks later runs that need the same job or warehouse, so nothing starves.

Each step is ``[dbt, *args]`` in its own process group, without a shell, in the run's working copy,
with a clean environment: only PATH/locale from the server, the environment's configured variables,
the project's environment variables (set through the API or the CLI) and dbt Cloud's ``DBT_CLOUD_*``
variables. ``HOME`` points into the data dir so dbt writes nothing elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dbt_cloud_local.commands import Step, parse_step
from dbt_cloud_local.config import Config, Environment, Job
from dbt_cloud_local.faults import FaultInjector
from dbt_cloud_local.store import (
    CANCELLED,
    ERROR,
    IN_FLIGHT,
    QUEUED,
    RUNNING,
    STARTING,
    SUCCESS,
    Store,
    utcnow,
)
from dbt_cloud_local.workspace import RunWorkspace, tail_text

log = logging.getLogger(__name__)

SERVER_STOPPED_MESSAGE = "the local dbt Cloud server stopped while this run was in progress"
#: Variables passed from the server's environment to dbt (nothing else leaks into runs).
PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")
HEARTBEAT_SECONDS = 5.0
#: Commands ``dbt retry`` can replay (dbt-core's ``dbt.task.retry.TASK_DICT``).
RETRYABLE_COMMANDS = frozenset(
    {"build", "compile", "clone", "generate", "seed", "snapshot", "test", "run", "run-operation"}
)
POLL_SECONDS = 0.2
#: Local packages install in seconds; hub packages need the network and may take longer.
DEPS_TIMEOUT_SECONDS = 300


class RunRequestError(ValueError):
    """The request cannot start a run (HTTP 400)."""


class RunConflictError(RuntimeError):
    """The run is in a state that does not allow the request."""


@dataclass
class _ActiveRun:
    run_id: int
    keys: frozenset[str]
    cancel: threading.Event
    process: subprocess.Popen[bytes] | None = None


def plan_steps(job: Job, steps: list[Step] | None, generate_docs: bool) -> list[dict[str, Any]]:
    """The steps a run executes: the job's (or the override's) plus ``dbt docs generate`` if asked."""
    chosen = steps if steps is not None else [parse_step(command) for command in job.execute_steps]
    plan = [{"command": step.command, "args": list(step.args)} for step in chosen]
    if generate_docs and not any(step.is_docs_generate for step in chosen):
        plan.append({"command": "dbt docs generate", "args": ["docs", "generate"]})
    return plan


def _pid_belongs_to(pid: int, workdir: Path) -> bool:
    """Whether ``pid`` is a process running in ``workdir`` (so killing it hits nothing else)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == workdir.resolve()
    except OSError:
        return False


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - not our process any more
        log.warning("Not allowed to signal process group %s", pid)


def _retryable(results: Path) -> bool:
    """Whether ``dbt retry`` can replay the command recorded in a ``run_results.json``."""
    try:
        command = json.loads(results.read_text())["args"]["which"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return command in RETRYABLE_COMMANDS


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


class RunManager:
    """Owns the run queue and the worker threads that execute dbt."""

    def __init__(
        self, config: Config, store: Store, data_dir: Path, faults: FaultInjector | None = None
    ) -> None:
        self.config = config
        self.faults = faults
        self.store = store
        self.data_dir = data_dir
        self.home = data_dir / "home"
        self._executor = ThreadPoolExecutor(max_workers=config.server.run_slots, thread_name_prefix="dbt-run")
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._active: dict[int, _ActiveRun] = {}
        self._stopping = False
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="dbt-dispatch", daemon=True)

    # Lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self.home.mkdir(parents=True, exist_ok=True)
        self._dispatcher.start()

    def recover(self) -> list[int]:
        """Mark runs left starting/running by a previous server process as errored; kill leftovers."""
        interrupted = self.store.runs_with_status((STARTING, RUNNING))
        now = utcnow()
        for run in interrupted:
            workspace = RunWorkspace(self.data_dir, run["id"])
            for step in self.store.steps_for_runs([run["id"]])[run["id"]]:
                if step["status"] in IN_FLIGHT:
                    pid = step.get("pid")
                    if pid and _pid_belongs_to(pid, workspace.project):
                        log.warning("Killing dbt process %s left over from run %s", pid, run["id"])
                        _kill_group(pid, signal.SIGKILL)
                    self.store.update_step(step["id"], status=ERROR, finished_at=now)
            self.store.update_run(
                run["id"], status=ERROR, status_message=SERVER_STOPPED_MESSAGE, finished_at=now
            )
            log.warning("Run %s: %s", run["id"], SERVER_STOPPED_MESSAGE)
        return [run["id"] for run in interrupted]

    def stop(self) -> None:
        """Stop dispatching, terminate running dbt processes and mark their runs errored."""
        with self._wake:
            self._stopping = True
            active = list(self._active.values())
            self._wake.notify_all()
        for entry in active:
            entry.cancel.set()
        self._executor.shutdown(wait=True, cancel_futures=False)
        if self._dispatcher.is_alive():
            self._dispatcher.join(timeout=5)

    # Requests ---------------------------------------------------------------------------------

    def trigger(self, job: Job, request: dict[str, Any], steps: list[Step] | None) -> dict[str, Any]:
        """Queue a run of ``job`` for a validated ``/run/`` request."""
        environment = self.config.environments[job.environment_id]
        generate_docs = request.get("generate_docs_override")
        plan = plan_steps(job, steps, job.generate_docs if generate_docs is None else generate_docs)
        trigger = {
            "cause": request["cause"],
            "cause_category": "api",
            "job_definition_id": job.id,
            "git_branch": request.get("git_branch"),
            "git_sha": request.get("git_sha"),
            "schema_override": request.get("schema_override"),
            "dbt_version_override": request.get("dbt_version_override"),
            "threads_override": request.get("threads_override"),
            "target_name_override": request.get("target_name_override"),
            "generate_docs_override": generate_docs,
            "timeout_seconds_override": request.get("timeout_seconds_override"),
            "steps_override": [step.command for step in steps] if steps is not None else None,
        }
        return self._create(job, environment, trigger, plan, retry_of_run_id=None)

    def rerun(self, job: Job) -> dict[str, Any]:
        """
        ``/rerun/``: retry the job's latest run from its failed step if it errored, else run normally.

        The failed step becomes ``dbt retry`` pointed at that step's ``run_results.json`` (dbt then
        replays the original command and flags for the failed and skipped nodes only); the steps
        after it run as planned. Without run results (dbt never got that far) the step reruns as is.
        """
        environment = self.config.environments[job.environment_id]
        latest = self.store.latest_run_for_job(job.id)
        if latest is None or latest["status"] != ERROR:
            request = {"cause": "Rerun of job via API (no failed run to retry)"}
            return self.trigger(job, request, None)
        steps = self.store.steps_for_runs([latest["id"]])[latest["id"]]
        failed = next((step for step in steps if step["status"] == ERROR), None)
        original_plan = latest["plan"]
        if failed is None:
            plan = original_plan  # it failed before any step started: run everything again
        else:
            position = failed["idx"] - 1
            results = RunWorkspace(self.data_dir, latest["id"]).target(failed["idx"]) / "run_results.json"
            if _retryable(results):
                retry_entry = {
                    "command": "dbt retry",
                    "args": ["retry"],
                    "retry_state": {"run_id": latest["id"], "step": failed["idx"]},
                }
            else:
                # dbt stopped before writing results (e.g. a parse error): rerun the step as planned,
                # or, if it was a retry itself, retry again from the same earlier results.
                retry_entry = original_plan[position]
            plan = [retry_entry, *original_plan[position + 1 :]]
        previous = latest["trigger"]
        trigger = {
            **previous,
            "cause": f"Rerun from failure of run #{latest['id']}",
            "cause_category": "rerun",
            "steps_override": None,
        }
        return self._create(job, environment, trigger, plan, retry_of_run_id=latest["id"])

    def cancel(self, run_id: int) -> dict[str, Any]:
        """Cancel a run: queued runs end at once; running ones get their dbt process terminated."""
        if self.store.transition_run(
            run_id,
            (QUEUED,),
            status=CANCELLED,
            status_message="Cancelled before it started",
            finished_at=utcnow(),
        ):
            with self._wake:
                self._wake.notify_all()
        else:
            with self._lock:
                entry = self._active.get(run_id)
            if entry is not None:
                self.store.update_run(run_id, cancel_requested=1)
                entry.cancel.set()
        run = self.store.get_run(run_id)
        assert run is not None
        return run

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is queued or executing (used by tooling and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.store.runs_with_status(IN_FLIGHT):
                return True
            time.sleep(0.2)
        return False

    def _create(
        self,
        job: Job,
        environment: Environment,
        trigger: dict[str, Any],
        plan: list[dict[str, Any]],
        retry_of_run_id: int | None,
    ) -> dict[str, Any]:
        run = self.store.create_run(
            account_id=job.account_id,
            project_id=job.project_id,
            environment_id=job.environment_id,
            job_id=job.id,
            trigger=trigger,
            plan=plan,
            git_branch=trigger.get("git_branch") or environment.custom_branch,
            git_sha=trigger.get("git_sha"),
            retry_of_run_id=retry_of_run_id,
        )
        with self._wake:
            self._wake.notify_all()
        return run

    # Scheduling -------------------------------------------------------------------------------

    def _run_env(self, run: dict[str, Any], workspace: RunWorkspace) -> dict[str, str]:
        environment = self.config.environments[run["environment_id"]]
        job = self.config.jobs[run["job_id"]]
        trigger = run["trigger"]
        env = {name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ}
        env.update(environment.env)
        env.update(self.store.resolved_env_vars(run["project_id"], run["environment_id"]))
        env.update(
            {
                "HOME": str(self.home),
                "DBT_PROFILES_DIR": str(workspace.project),
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "DBT_VERSION_CHECK": "false",
                "DBT_USE_COLORS": "false",
                "DBT_PRINTER_WIDTH": "100",
                "PYTHONUNBUFFERED": "1",
                "DBT_CLOUD_ACCOUNT_ID": str(run["account_id"]),
                "DBT_CLOUD_PROJECT_ID": str(run["project_id"]),
                "DBT_CLOUD_ENVIRONMENT_ID": str(run["environment_id"]),
                "DBT_CLOUD_ENVIRONMENT_NAME": environment.name,
                "DBT_CLOUD_ENVIRONMENT_TYPE": "prod"
                if environment.deployment_type == "production"
                else "staging",
                "DBT_CLOUD_JOB_ID": str(run["job_id"]),
                "DBT_CLOUD_RUN_ID": str(run["id"]),
                "DBT_CLOUD_RUN_REASON": str(trigger.get("cause") or ""),
                "DBT_CLOUD_RUN_REASON_CATEGORY": str(trigger.get("cause_category") or "api"),
                "DBT_CLOUD_GIT_BRANCH": str(run.get("git_branch") or ""),
            }
        )
        target_name = trigger.get("target_name_override") or job.target_name
        if target_name:
            env["DBT_TARGET"] = target_name
        return env

    def _warehouse_key(self, run: dict[str, Any]) -> str | None:
        environment = self.config.environments[run["environment_id"]]
        env = dict(environment.env)
        env.update(self.store.resolved_env_vars(run["project_id"], run["environment_id"]))
        value = env.get(environment.warehouse_env_var)
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = RunWorkspace(self.data_dir, run["id"]).project / path
        return f"warehouse:{path.resolve()}"

    def _dispatch_loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                self._dispatch_ready()
                self._wake.wait(timeout=1.0)

    def _dispatch_ready(self) -> None:
        """Start every queued run whose job and warehouse are free (called with the lock held)."""
        busy = set().union(*(entry.keys for entry in self._active.values())) if self._active else set()
        blocked: set[str] = set()
        for run in self.store.runs_with_status((QUEUED,)):
            if len(self._active) >= self.config.server.run_slots:
                return
            keys = {f"job:{run['job_id']}"}
            warehouse = self._warehouse_key(run)
            if warehouse:
                keys.add(warehouse)
            if keys & (busy | blocked):
                blocked |= keys  # keep FIFO order for runs that need the same resources
                continue
            if not self.store.transition_run(
                run["id"],
                (QUEUED,),
                status=STARTING,
                status_message="Preparing the run's working copy",
                dequeued_at=utcnow(),
            ):
                continue
            entry = _ActiveRun(run_id=run["id"], keys=frozenset(keys), cancel=threading.Event())
            self._active[run["id"]] = entry
            busy |= keys
            self._executor.submit(self._execute_guarded, entry)

    def _execute_guarded(self, entry: _ActiveRun) -> None:
        try:
            self._execute(entry)
        except Exception as exc:
            log.exception("Run %s failed inside the local dbt Cloud server", entry.run_id)
            self.store.update_run(
                entry.run_id, status=ERROR, status_message=f"Internal error: {exc}", finished_at=utcnow()
            )
        finally:
            with self._wake:
                self._active.pop(entry.run_id, None)
                self._wake.notify_all()

    # Execution --------------------------------------------------------------------------------

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

    def _prepare_profile(self, workspace: RunWorkspace, schema_override: str | None) -> None:
        """Apply ``schema_override`` to every output of the working copy's ``profiles.yml``."""
        profiles = workspace.project / "profiles.yml"
        if not schema_override or not profiles.exists():
            return
        data = yaml.safe_load(profiles.read_text()) or {}
        for name, profile in data.items():
            if name == "config" or not isinstance(profile, dict):
                continue
            for output in (profile.get("outputs") or {}).values():
                if isinstance(output, dict):
                    output["schema"] = schema_override
        profiles.write_text(yaml.safe_dump(data, sort_keys=False))

    def _execute(self, entry: _ActiveRun) -> None:
        run = self.store.get_run(entry.run_id)
        assert run is not None
        job = self.config.jobs[run["job_id"]]
        environment = self.config.environments[run["environment_id"]]
        project = self.config.projects[run["project_id"]]
        trigger = run["trigger"]
        workspace = RunWorkspace(self.data_dir, run["id"])
        if entry.cancel.is_set():
            self._finish(run["id"], CANCELLED, "Cancelled by user", workspace, 0)
            return
        workspace.prepare(project.dbt_project_dir)
        self._prepare_profile(workspace, trigger.get("schema_override"))
        env = self._run_env(run, workspace)
        warehouse = env.get(environment.warehouse_env_var)
        if warehouse and Path(warehouse).is_absolute():
            Path(warehouse).parent.mkdir(parents=True, exist_ok=True)
        timeout = trigger.get("timeout_seconds_override") or job.timeout_seconds
        deadline = time.monotonic() + timeout if timeout else None
        threads = trigger.get("threads_override") or job.threads
        now = utcnow()
        self.store.update_run(
            run["id"], status=RUNNING, started_at=now, last_heartbeat_at=now, status_message=""
        )
        packages_error = self._install_packages(environment.dbt_executable, workspace, env)
        if packages_error:
            self._finish(run["id"], ERROR, packages_error, workspace, 0)
            return

        for index, planned in enumerate(run["plan"], start=1):
            step = Step(command=planned["command"], args=tuple(planned["args"])).with_threads(threads)
            workspace.prepare_step(index)
            workspace.carry_partial_parse(index)
            state = planned.get("retry_state")
            if state:
                source = (
                    RunWorkspace(self.data_dir, state["run_id"]).target(state["step"]) / "run_results.json"
                )
                # dbt retry reads <target-path>/run_results.json when --state is not given.
                (workspace.target(index) / "run_results.json").write_bytes(source.read_bytes())
            record = self.store.add_step(run["id"], index, step.name, step.command, list(step.args))
            if self._stopping:
                self.store.update_step(record["id"], status=ERROR, finished_at=utcnow())
                self._finish(run["id"], ERROR, SERVER_STOPPED_MESSAGE, workspace, index)
                return
            self._injected_step_delay(entry)
            outcome, detail = self._run_step(
                entry, record["id"], step, environment.dbt_executable, workspace, index, env, deadline
            )
            if outcome == SUCCESS:
                continue
            steps_run = index
            if outcome == CANCELLED:
                self._finish(run["id"], CANCELLED, "Cancelled by user", workspace, steps_run)
            else:
                self._finish(run["id"], ERROR, detail, workspace, steps_run)
            return
        self._finish(run["id"], SUCCESS, "Success", workspace, len(run["plan"]))

    def _injected_step_delay(self, entry: _ActiveRun) -> None:
        """Fault injection: hold the step back while ``step_delay_ms`` is set (up to that long).

        Lifting the fault (``DELETE /_local/faults``) releases waiting runs at once, so a test can keep
        a run in flight exactly as long as it needs; a cancel releases it too.
        """
        if self.faults is None or not self.faults.settings.step_delay_ms:
            return
        deadline = time.monotonic() + self.faults.settings.step_delay_ms / 1000
        while (
            self.faults.settings.step_delay_ms and time.monotonic() < deadline and not entry.cancel.is_set()
        ):
            entry.cancel.wait(POLL_SECONDS)

    def _install_packages(self, executable: Path, workspace: RunWorkspace, env: dict[str, str]) -> str | None:
        """
        ``dbt deps`` into the fresh working copy when the project declares packages; an error or None.

        dbt Cloud installs packages at the start of every run because each run starts from a clean
        checkout; so does this server (the copy never carries ``dbt_packages/``). The output is kept
        in ``<run>/deps.log``.
        """
        if not any((workspace.project / name).exists() for name in ("packages.yml", "dependencies.yml")):
            return None
        log_path = workspace.root / "deps.log"
        deps_env = {**env, "DBT_LOG_PATH": str(workspace.root / "deps-logs")}
        with log_path.open("wb") as log:
            try:
                result = subprocess.run(  # no shell: a fixed argument list
                    [str(executable), "deps"],
                    cwd=workspace.project,
                    env=deps_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=DEPS_TIMEOUT_SECONDS,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"Could not install the project's packages with `dbt deps` ({executable}): {exc}"
        if result.returncode != 0:
            tail, _ = tail_text(log_path, 20)
            return f"`dbt deps` failed with exit code {result.returncode}:\n{tail}"
        return None

    def _run_step(
        self,
        entry: _ActiveRun,
        step_id: int,
        step: Step,
        executable: Path,
        workspace: RunWorkspace,
        index: int,
        env: dict[str, str],
        deadline: float | None,
    ) -> tuple[int, str]:
        step_env = {
            **env,
            "DBT_TARGET_PATH": str(workspace.target(index)),
            "DBT_LOG_PATH": str(workspace.logs(index)),
        }
        argv = [str(executable), *step.args]
        with workspace.console(index).open("wb") as console:
            try:
                process = subprocess.Popen(  # no shell: argv is a validated argument list
                    argv,
                    cwd=workspace.project,
                    env=step_env,
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                message = f"Could not start dbt ({argv[0]}): {exc}"
                console.write(message.encode() + b"\n")
                self.store.update_step(step_id, status=ERROR, finished_at=utcnow())
                return ERROR, message
            entry.process = process
            self.store.update_step(step_id, pid=process.pid)
            reason = self._wait(entry, process, deadline)
        entry.process = None
        exit_code = process.returncode
        finished = utcnow()
        if reason == "stopped":
            self.store.update_step(step_id, status=ERROR, finished_at=finished, exit_code=exit_code)
            return ERROR, SERVER_STOPPED_MESSAGE
        if reason == "cancelled":
            self.store.update_step(step_id, status=CANCELLED, finished_at=finished, exit_code=exit_code)
            return CANCELLED, "Cancelled by user"
        if reason == "timeout":
            self.store.update_step(step_id, status=ERROR, finished_at=finished, exit_code=exit_code)
            return ERROR, f"Job run timed out: step {index} (`{step.command}`) exceeded the job's timeout"
        if exit_code == 0:
            self.store.update_step(step_id, status=SUCCESS, finished_at=finished, exit_code=0)
            return SUCCESS, ""
        self.store.update_step(step_id, status=ERROR, finished_at=finished, exit_code=exit_code)
        summary = summarize_results(workspace.target(index))
        message = f"Step {index} (`{step.command}`) failed with exit code {exit_code}"
        return ERROR, f"{message}: {summary}" if summary else message

    def _wait(self, entry: _ActiveRun, process: subprocess.Popen[bytes], deadline: float | None) -> str:
        """Wait for the step; on cancel/timeout terminate its process group (SIGTERM, then SIGKILL)."""
        next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
        while True:
            try:
                process.wait(timeout=POLL_SECONDS)
                return "exited"
            except subprocess.TimeoutExpired:
                pass
            reason = None
            if entry.cancel.is_set():
                reason = "cancelled"
            elif deadline is not None and time.monotonic() > deadline:
                reason = "timeout"
            if reason:
                self._terminate(process)
                if self._stopping:
                    return "stopped"
                return reason
            if time.monotonic() >= next_heartbeat:
                self.store.update_run(entry.run_id, last_heartbeat_at=utcnow())
                next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        _kill_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=self.config.server.cancel_grace_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid, signal.SIGKILL)
            process.wait()
