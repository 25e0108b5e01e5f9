"""
Unit tests of the runner's parts, without a server and without real dbt.

* queueing: ``select_runs_to_start`` (the pure policy) and the ``Dispatcher`` applying it to a store;
* rerun planning: which steps ``/rerun/`` executes, given the failed run's steps and run results;
* cancellation: ``ProcessSupervisor`` against real short-lived processes (SIGTERM, then SIGKILL);
* execution: ``RunManager`` end to end with a fake ``dbt`` script: dbt Cloud's steps (clone, profile,
  ``dbt deps``) before the commands, a failure in any of them, checkbox steps that fail without
  failing the run, and a cancel during ``dbt deps``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dbt_cloud_local.config.settings import Config, ServerSettings
from dbt_cloud_local.faults import FaultSettings
from dbt_cloud_local.model.anatomy import (
    BUILT_IN_STEPS,
    DOCS_GENERATE_STEP,
    SOURCE_FRESHNESS_STEP,
    invoke_name,
    step_name,
)
from dbt_cloud_local.model.commands import parse_step
from dbt_cloud_local.model.records import PlannedStep, RetrySource, RunRecord, RunTrigger, StepRecord
from dbt_cloud_local.model.resources import Account, Environment, Job, Project
from dbt_cloud_local.model.statuses import CANCELLED, ERROR, QUEUED, RUNNING, STARTING, SUCCESS
from dbt_cloud_local.runs.dispatch import ActiveRun, Dispatcher, QueuedRun, resources, select_runs_to_start
from dbt_cloud_local.runs.environment import run_environment, warehouse_path, write_run_profile
from dbt_cloud_local.runs.manager import RunManager
from dbt_cloud_local.runs.plan import failure_details, plan_rerun, plan_run, rerun_trigger
from dbt_cloud_local.runs.recovery import SERVER_STOPPED_MESSAGE
from dbt_cloud_local.runs.supervisor import Outcome, ProcessSupervisor, kill_leftover
from dbt_cloud_local.runs.workspace import RunWorkspace
from dbt_cloud_local.store.database import Store

PYTHON = sys.executable


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# Config for RunManager tests ----------------------------------------------------------------------

FAKE_DBT = """\
#!{python}
# A stand-in for dbt: prints what it was asked, then behaves as FAKE_DBT_* variables say.
import json, os, sys, time

args = sys.argv[1:]
command = args[0]
print("fake dbt", " ".join(args), "pid", os.getpid(), flush=True)
print("run", os.environ.get("DBT_CLOUD_RUN_ID"), "target", os.environ.get("DBT_TARGET_PATH"), flush=True)
if command in os.environ.get("FAKE_DBT_SLEEP", "").split(","):
    time.sleep(60)
if command == "retry":
    results = os.path.join(os.environ["DBT_TARGET_PATH"], "run_results.json")
    sys.exit(0 if os.path.exists(results) else 3)
if command in os.environ.get("FAKE_DBT_FAIL", "").split(","):
    results = [{{"status": "error", "unique_id": "model.p.m"}}]
    with open(os.path.join(os.environ["DBT_TARGET_PATH"], "run_results.json"), "w") as out:
        json.dump({{"args": {{"which": command}}, "results": results}}, out)
    sys.exit(1)
"""


def make_config(
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    steps: tuple[str, ...] = ("dbt seed", "dbt run", "dbt test"),
    packages: bool = False,
    profiles: bool = True,
    generate_docs: bool = False,
    run_generate_sources: bool = False,
    timeout_seconds: int = 0,
    run_slots: int = 2,
    grace: float = 5.0,
) -> Config:
    project = tmp_path / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "dbt_project.yml").write_text("name: p\n")
    if profiles:
        (project / "profiles.yml").write_text("p:\n  target: dev\n  outputs:\n    dev: {type: duckdb}\n")
    if packages:
        (project / "packages.yml").write_text("packages: []\n")
    dbt = tmp_path / "fake-dbt"
    dbt.write_text(FAKE_DBT.format(python=PYTHON))
    dbt.chmod(0o755)
    environment = Environment(
        id=1,
        account_id=1,
        project_id=1,
        name="Production",
        deployment_type="production",
        dbt_executable=dbt,
        dbt_version="1.11.0-latest",
        env={"DBT_DUCKDB_PATH": str(tmp_path / "warehouse" / "prod.duckdb"), **(env or {})},
        warehouse_env_var="DBT_DUCKDB_PATH",
        custom_branch="main",
    )
    job = Job(
        id=1,
        account_id=1,
        project_id=1,
        environment_id=1,
        name="job",
        description="",
        execute_steps=steps,
        generate_docs=generate_docs,
        run_generate_sources=run_generate_sources,
        threads=None,
        target_name=None,
        timeout_seconds=timeout_seconds,
        created_at="2025-01-01T00:00:00+00:00",
    )
    return Config(
        path=tmp_path / "config.yml",
        root=tmp_path,
        server=ServerSettings(run_slots=run_slots, cancel_grace_seconds=grace),
        api_tokens=("token",),
        accounts={1: Account(id=1, name="a")},
        projects={1: Project(id=1, account_id=1, name="p", dbt_project_dir=project)},
        environments={1: environment},
        jobs={1: job},
        faults=FaultSettings(),
    )


@pytest.fixture
def managers(tmp_path: Path) -> Iterator[Callable[..., RunManager]]:
    """Start ``RunManager``s on a fresh store; all are stopped at the end of the test."""
    started: list[tuple[RunManager, Store]] = []

    def make(**kwargs: object) -> RunManager:
        config = make_config(tmp_path, **kwargs)  # type: ignore[arg-type]
        store = Store(tmp_path / "data" / "state.sqlite3")
        manager = RunManager(config, store, tmp_path / "data")
        manager.start()
        started.append((manager, store))
        return manager

    yield make
    for manager, store in started:
        manager.stop()
        store.close()


def run_job(manager: RunManager, **request: object) -> int:
    job = manager.config.jobs[1]
    return manager.trigger(job, {"cause": "test", **request}, None)["id"]


def wait_for_end(manager: RunManager, run_id: int, timeout: float = 20.0) -> RunRecord:
    def ended() -> bool:
        run = manager.store.run_record(run_id)
        return run is not None and run.status in (SUCCESS, ERROR, CANCELLED)

    wait_until(ended, timeout, f"run {run_id} to end")
    run = manager.store.run_record(run_id)
    assert run is not None
    return run


# Queueing policy ----------------------------------------------------------------------------------


def queued(run_id: int, job_id: int, warehouse: str | None = None) -> QueuedRun:
    return QueuedRun(run_id, resources(job_id, Path(warehouse) if warehouse else None))


def ids(runs: list[QueuedRun]) -> list[int]:
    return [run.run_id for run in runs]


def test_no_more_runs_start_than_there_are_free_slots() -> None:
    waiting = [queued(1, 1), queued(2, 2), queued(3, 3)]
    assert ids(select_runs_to_start(waiting, [], slots=2)) == [1, 2]
    assert ids(select_runs_to_start(waiting, [resources(9, None)], slots=2)) == [1]
    assert select_runs_to_start(waiting, [resources(8, None), resources(9, None)], slots=2) == []


def test_one_run_per_job_at_a_time() -> None:
    waiting = [queued(1, 7), queued(2, 7), queued(3, 8)]
    assert ids(select_runs_to_start(waiting, [], slots=5)) == [1, 3]
    assert ids(select_runs_to_start(waiting, [resources(7, None)], slots=5)) == [3]


def test_runs_writing_the_same_duckdb_file_are_serialized() -> None:
    waiting = [queued(1, 1, "/w/prod.duckdb"), queued(2, 2, "/w/prod.duckdb"), queued(3, 3, "/w/dev.duckdb")]
    assert ids(select_runs_to_start(waiting, [], slots=5)) == [1, 3]
    busy_prod = [resources(9, Path("/w/prod.duckdb"))]
    assert ids(select_runs_to_start(waiting, busy_prod, slots=5)) == [3]


def test_a_waiting_run_is_not_overtaken_by_later_runs_that_need_its_resources() -> None:
    # Run 1 waits for job 1; run 2 needs only the warehouse run 1 will need, which is free right now.
    # Starting run 2 could starve run 1 forever, so run 2 waits too; run 3 shares nothing and starts.
    waiting = [queued(1, 1, "/w/a.duckdb"), queued(2, 2, "/w/a.duckdb"), queued(3, 3, "/w/b.duckdb")]
    assert ids(select_runs_to_start(waiting, [resources(1, None)], slots=5)) == [3]


def test_runs_start_in_queue_order() -> None:
    waiting = [queued(5, 3), queued(2, 1), queued(9, 2)]
    assert ids(select_runs_to_start(waiting, [], slots=2)) == [5, 2]


def test_warehouse_is_the_resolved_file_and_project_variables_win(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    environment = config.environments[1]
    prod = tmp_path / "warehouse" / "prod.duckdb"
    assert warehouse_path(environment, {}, tmp_path / "run1") == prod
    respelled = {"DBT_DUCKDB_PATH": str(tmp_path / "warehouse" / ".." / "warehouse" / "prod.duckdb")}
    assert warehouse_path(environment, respelled, tmp_path / "run1") == prod
    # A relative path is inside each run's own working copy: runs never share it.
    relative = {"DBT_DUCKDB_PATH": "local.duckdb"}
    assert warehouse_path(environment, relative, tmp_path / "run1") != warehouse_path(
        environment, relative, tmp_path / "run2"
    )
    assert warehouse_path(environment, {"DBT_DUCKDB_PATH": ""}, tmp_path) is None


class _Recorder:
    """An ``execute`` for the Dispatcher that records starts and holds each run until released."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.release: dict[int, threading.Event] = {}
        self.interrupted: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, entry: ActiveRun) -> None:
        with self._lock:
            self.started.append(entry.run_id)
            release = self.release.setdefault(entry.run_id, threading.Event())
        while not release.wait(0.02):
            if entry.interrupt.is_set():
                self.interrupted.append(entry.run_id)
                return


def test_dispatcher_claims_queued_runs_from_the_store_in_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite3")
    jobs = {}
    for job_id in (1, 1, 2, 3):
        run = store.create_run(
            account_id=1,
            project_id=1,
            environment_id=1,
            job_id=job_id,
            trigger=RunTrigger(cause="t", cause_category="api", job_definition_id=job_id).to_json(),
            plan=[],
            git_branch=None,
            git_sha=None,
        )
        jobs[run["id"]] = job_id
    first, second, third, fourth = sorted(jobs)
    recorder = _Recorder()
    dispatcher = Dispatcher(store, 2, lambda run: resources(run.job_id, None), recorder)
    dispatcher.start()
    try:
        wait_until(lambda: len(recorder.started) == 2, what="two runs to start")
        time.sleep(0.3)
        assert recorder.started == [first, third], "run 2 waits for job 1; runs 3 and 4 fill the slots"
        assert store.get_run(first)["status"] == STARTING
        assert store.get_run(first)["dequeued_at"]
        assert store.get_run(second)["status"] == QUEUED

        recorder.release.setdefault(first, threading.Event()).set()
        wait_until(lambda: len(recorder.started) == 3, what="the next run to start")
        assert recorder.started[2] == second, "job 1's next run goes first: it has waited longest"

        assert dispatcher.interrupt(third)
        wait_until(lambda: third in recorder.interrupted, what="the interrupt to reach the worker")
        wait_until(lambda: len(recorder.started) == 4, what="the freed slot to be reused")
        assert recorder.started[3] == fourth
        assert not dispatcher.interrupt(first), "a finished run has no worker to interrupt"
    finally:
        dispatcher.stop()
    assert sorted(recorder.interrupted) == sorted([third, second, fourth]), "stop interrupts what runs"
    store.close()


# Rerun planning -----------------------------------------------------------------------------------

COMMANDS = tuple(
    PlannedStep.from_step(parse_step(command)) for command in ("dbt seed", "dbt run", "dbt test")
)
#: A run's plan: steps 1-3 are dbt Cloud's (clone, profile, deps), the commands are steps 4, 5, 6.
PLAN = (*BUILT_IN_STEPS, *COMMANDS)
SEED, RUN, TEST = COMMANDS


def failed_run(plan: tuple[PlannedStep, ...] = PLAN, run_id: int = 7) -> RunRecord:
    trigger = RunTrigger(
        cause="nightly",
        cause_category="api",
        job_definition_id=1,
        schema_override="s",
        threads_override=4,
        steps_override=("dbt seed", "dbt run", "dbt test"),
    )
    return RunRecord(
        id=run_id,
        account_id=1,
        project_id=1,
        environment_id=1,
        job_id=1,
        status=ERROR,
        trigger=trigger,
        plan=plan,
        git_branch="main",
        retry_of_run_id=None,
    )


def executed(
    run_id: int, failed_index: int, plan: tuple[PlannedStep, ...] = PLAN, errored: tuple[int, ...] = ()
) -> list[StepRecord]:
    """The steps a run executed up to ``failed_index``, which failed (and ``errored`` checkbox steps)."""
    return [
        StepRecord(
            id=index,
            run_id=run_id,
            index=index,
            name=step_name(plan[index - 1]),
            command=plan[index - 1].command,
            args=plan[index - 1].args,
            status=ERROR if index == failed_index or index in errored else SUCCESS,
            pid=None,
            exit_code=1 if index == failed_index else 0,
        )
        for index in range(1, failed_index + 1)
    ]


def write_results(workspace: RunWorkspace, index: int, text: str) -> None:
    workspace.prepare_step(index)
    (workspace.target(index) / "run_results.json").write_text(text)


def test_rerun_retries_the_failed_step_from_its_results_then_runs_the_rest(tmp_path: Path) -> None:
    workspace = RunWorkspace(tmp_path, 7)
    write_results(workspace, 5, '{"args": {"which": "run"}, "results": []}')
    plan = plan_rerun(failed_run(), executed(7, 5), workspace)
    assert plan == (
        *BUILT_IN_STEPS,
        PlannedStep("dbt retry", ("retry",), RetrySource(run_id=7, step=5)),
        TEST,
    )


@pytest.mark.parametrize(
    "results",
    [
        None,  # dbt stopped before writing results (a parse error)
        "{not json",  # a truncated file (dbt was killed while writing)
        '{"args": {"which": "list"}, "results": []}',  # dbt retry cannot replay `dbt ls`
    ],
)
def test_without_usable_results_the_failed_step_reruns_as_planned(
    tmp_path: Path, results: str | None
) -> None:
    workspace = RunWorkspace(tmp_path, 7)
    if results is not None:
        write_results(workspace, 5, results)
    assert plan_rerun(failed_run(), executed(7, 5), workspace) == (*BUILT_IN_STEPS, RUN, TEST)


@pytest.mark.parametrize("failed_index", [1, 2, 3])
def test_a_run_that_failed_in_a_built_in_step_reruns_everything(tmp_path: Path, failed_index: int) -> None:
    workspace = RunWorkspace(tmp_path, 7)
    assert plan_rerun(failed_run(), executed(7, failed_index), workspace) == PLAN
    assert plan_rerun(failed_run(), [], workspace) == PLAN, "stopped before any step"


def test_a_failed_retry_without_new_results_retries_again_from_the_earlier_results(tmp_path: Path) -> None:
    earlier = PlannedStep("dbt retry", ("retry",), RetrySource(run_id=3, step=5))
    retry_plan = (*BUILT_IN_STEPS, earlier, TEST)
    plan = plan_rerun(
        failed_run(plan=retry_plan, run_id=8), executed(8, 4, retry_plan), RunWorkspace(tmp_path, 8)
    )
    assert plan == retry_plan


def test_a_failed_checkbox_step_before_the_failure_is_not_the_failed_step(tmp_path: Path) -> None:
    """Source freshness (step 4) failed without failing the run; `dbt run` (step 6) failed it."""
    plan = (*BUILT_IN_STEPS, SOURCE_FRESHNESS_STEP, *COMMANDS, DOCS_GENERATE_STEP)
    workspace = RunWorkspace(tmp_path, 7)
    write_results(workspace, 6, '{"args": {"which": "run"}, "results": []}')
    steps = executed(7, 6, plan, errored=(4,))
    rerun = plan_rerun(failed_run(plan=plan), steps, workspace)
    assert rerun == (
        *BUILT_IN_STEPS,
        PlannedStep("dbt retry", ("retry",), RetrySource(7, 6)),
        TEST,
        DOCS_GENERATE_STEP,
    )
    assert failure_details(failed_run(plan=plan), steps) == (
        invoke_name("dbt run"),
        [invoke_name("dbt test"), invoke_name("dbt docs generate")],
    )


def test_a_run_numbered_by_an_older_server_is_resumed_by_its_own_numbers(tmp_path: Path) -> None:
    """Plans and steps stored before the built-in steps existed numbered the commands from 1."""
    legacy = failed_run(plan=COMMANDS)
    workspace = RunWorkspace(tmp_path, 7)
    write_results(workspace, 2, '{"args": {"which": "run"}, "results": []}')
    steps = executed(7, 2, COMMANDS)
    assert plan_rerun(legacy, steps, workspace) == (
        *BUILT_IN_STEPS,
        PlannedStep("dbt retry", ("retry",), RetrySource(7, 2)),
        TEST,
    )
    assert failure_details(legacy, steps) == (invoke_name("dbt run"), [invoke_name("dbt test")])


def test_a_rerun_keeps_the_overrides_but_not_the_steps_override() -> None:
    trigger = rerun_trigger(failed_run())
    assert trigger.cause == "Rerun from failure of run #7"
    assert trigger.cause_category == "rerun"
    assert trigger.steps_override is None
    assert (trigger.schema_override, trigger.threads_override) == ("s", 4)


def commands(plan: tuple[PlannedStep, ...]) -> list[str]:
    return [step_name(step) for step in plan]


def test_plan_numbers_steps_as_dbt_cloud_does(tmp_path: Path) -> None:
    job = make_config(tmp_path, steps=("dbt seed", "dbt build")).jobs[1]
    built_in = ["Clone git repository", "Create profile from connection DuckDB", invoke_name("dbt deps")]
    assert commands(plan_run(job, None, generate_docs=False)) == [
        *built_in,
        invoke_name("dbt seed"),
        invoke_name("dbt build"),
    ]
    plan = plan_run(job, None, generate_docs=True, generate_sources=True)
    assert commands(plan) == [
        *built_in,
        invoke_name("dbt source freshness"),  # the checkbox: first command step
        invoke_name("dbt seed"),
        invoke_name("dbt build"),
        invoke_name("dbt docs generate"),  # the checkbox: last
    ]
    assert [step.optional for step in plan] == [False] * 3 + [True, False, False, True]
    override = [parse_step("dbt docs generate")]
    listed = plan_run(job, override, generate_docs=True)
    assert commands(listed) == [*built_in, invoke_name("dbt docs generate")], "listed once, not optional"
    assert not listed[-1].optional
    assert commands(plan_run(job, [], generate_docs=False)) == built_in, "a job without commands"


def test_plan_and_trigger_round_trip_through_the_store_json() -> None:
    plan = (
        *BUILT_IN_STEPS,
        PlannedStep("dbt retry", ("retry",), RetrySource(3, 2)),
        *COMMANDS,
        DOCS_GENERATE_STEP,
    )
    run = failed_run(plan=plan)
    assert [PlannedStep.from_json(step.to_json()) for step in run.plan] == list(run.plan)
    assert RunTrigger.from_json(run.trigger.to_json()) == run.trigger
    assert run.plan[3].to_json() == {
        "command": "dbt retry",
        "args": ["retry"],
        "retry_state": {"run_id": 3, "step": 2},
    }
    assert [step.to_json() for step in run.plan[:3]] == [
        {"command": "", "args": [], "kind": "clone"},
        {"command": "", "args": [], "kind": "profile"},
        {"command": "dbt deps", "args": ["deps"], "kind": "deps"},
    ]
    assert run.plan[-1].to_json() == {
        "command": "dbt docs generate",
        "args": ["docs", "generate"],
        "optional": True,
    }
    assert PlannedStep.from_json({"command": "dbt seed", "args": ["seed"]}) == SEED, "rows of older servers"


# Run environment ----------------------------------------------------------------------------------


def test_run_environment_keeps_server_secrets_out_and_project_variables_win(tmp_path: Path) -> None:
    config = make_config(tmp_path, env={"DBT_MODE": "env"})
    run = failed_run()
    env = run_environment(
        run,
        job=config.jobs[1],
        environment=config.environments[1],
        project_vars={"DBT_MODE": "project"},
        home=tmp_path / "home",
        workspace=RunWorkspace(tmp_path, run.id),
        server_env={"PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "x"},
    )
    assert env["PATH"] == "/bin"
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["DBT_MODE"] == "project"
    assert env["DBT_CLOUD_RUN_ID"] == "7"
    assert env["DBT_CLOUD_RUN_REASON"] == "nightly"
    assert env["DBT_CLOUD_ENVIRONMENT_TYPE"] == "prod"
    assert env["HOME"] == str(tmp_path / "home")


def test_the_run_profile_carries_the_schema_override_and_names_no_values(tmp_path: Path) -> None:
    workspace = RunWorkspace(tmp_path, 1)
    workspace.project.mkdir(parents=True)
    profiles = workspace.project / "profiles.yml"
    profiles.write_text(
        "config: {send_anonymous_usage_stats: false}\n"
        "p:\n  target: a\n  outputs:\n    a: {type: duckdb, schema: main, password: s3cret}\n"
        "    b: {type: duckdb}\n"
    )
    lines = write_run_profile(workspace, "pr_42", "b")
    text = (workspace.profile_dir / "profiles.yml").read_text()
    assert text.count("schema: pr_42") == 2
    assert "send_anonymous_usage_stats: false" in text
    assert "schema: main" in profiles.read_text(), "the project's own file is untouched"
    log = "\n".join(lines)
    assert "profile p: outputs a (duckdb), b (duckdb); default target a" in log
    assert "schema override: pr_42" in log
    assert "target: b" in log
    assert "s3cret" not in log


# Cancellation -------------------------------------------------------------------------------------


def supervise_in_thread(
    supervisor: ProcessSupervisor, code: str, output: Path, **kwargs: object
) -> tuple[threading.Thread, dict[str, object], threading.Event]:
    """Run ``python -c code`` under ``supervisor`` in a thread; return it, its result box, the interrupt."""
    box: dict[str, object] = {}
    interrupt = threading.Event()

    def target() -> None:
        box["result"] = supervisor.run(
            [PYTHON, "-c", code],
            cwd=output.parent,
            env={},
            output=output,
            interrupt=interrupt,
            on_start=lambda pid: box.setdefault("pid", pid),
            **kwargs,  # type: ignore[arg-type]
        )

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box, interrupt


def test_cancel_terminates_with_sigterm_well_before_the_grace_period(tmp_path: Path) -> None:
    output = tmp_path / "out.log"
    thread, box, interrupt = supervise_in_thread(
        ProcessSupervisor(grace_seconds=30), "import time; print('ready', flush=True); time.sleep(60)", output
    )
    wait_until(lambda: "ready" in output.read_text() if output.exists() else False, what="the child")
    started = time.monotonic()
    interrupt.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    result = box["result"]
    assert result.outcome is Outcome.INTERRUPTED  # type: ignore[attr-defined]
    assert result.exit_code == -signal.SIGTERM  # type: ignore[attr-defined]
    assert time.monotonic() - started < 5, "SIGTERM ended it; nobody waited for the grace period"


def test_a_process_group_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    output = tmp_path / "out.log"
    # The grandchild inherits SIG_IGN, so only a SIGKILL to the whole group ends both.
    code = textwrap.dedent(
        f"""
        import signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([{PYTHON!r}, "-c", "import time; time.sleep(60)"])
        print("ready", child.pid, flush=True)
        time.sleep(60)
        """
    )
    thread, box, interrupt = supervise_in_thread(ProcessSupervisor(grace_seconds=1.0), code, output)
    wait_until(lambda: "ready" in output.read_text() if output.exists() else False, what="the child")
    grandchild = int(output.read_text().split()[1])
    started = time.monotonic()
    interrupt.set()
    thread.join(timeout=15)
    elapsed = time.monotonic() - started
    result = box["result"]
    assert result.outcome is Outcome.INTERRUPTED  # type: ignore[attr-defined]
    assert result.exit_code == -signal.SIGKILL  # type: ignore[attr-defined]
    assert 1.0 <= elapsed < 8, f"SIGKILL came after {elapsed:.1f}s, expected just after the 1s grace"
    wait_until(lambda: not alive(grandchild), timeout=5, what="the grandchild to be killed with its group")


def test_cancel_stops_the_whole_process_group(tmp_path: Path) -> None:
    output = tmp_path / "out.log"
    code = textwrap.dedent(
        f"""
        import subprocess, time
        child = subprocess.Popen([{PYTHON!r}, "-c", "import time; time.sleep(60)"])
        print("child", child.pid, flush=True)
        time.sleep(60)
        """
    )
    thread, _, interrupt = supervise_in_thread(ProcessSupervisor(grace_seconds=5), code, output)
    wait_until(lambda: "child" in output.read_text() if output.exists() else False, what="the grandchild")
    grandchild = int(output.read_text().split()[1])
    assert alive(grandchild)
    interrupt.set()
    thread.join(timeout=10)
    wait_until(lambda: not alive(grandchild), timeout=5, what="the grandchild to die with its group")


def test_the_deadline_times_a_process_out(tmp_path: Path) -> None:
    supervisor = ProcessSupervisor(grace_seconds=5)
    started = time.monotonic()
    result = supervisor.run(
        [PYTHON, "-c", "import time; time.sleep(60)"],
        cwd=tmp_path,
        env={},
        output=tmp_path / "out.log",
        interrupt=threading.Event(),
        deadline=time.monotonic() + 0.5,
    )
    assert result.outcome is Outcome.TIMED_OUT
    assert result.exit_code == -signal.SIGTERM
    assert time.monotonic() - started < 5


def test_exit_code_output_and_heartbeats_of_a_process_that_ends_by_itself(tmp_path: Path) -> None:
    beats: list[float] = []
    output = tmp_path / "out.log"
    result = ProcessSupervisor(grace_seconds=5, heartbeat_seconds=0.1).run(
        [PYTHON, "-c", "import sys, time; print('hello'); time.sleep(0.8); sys.exit(3)"],
        cwd=tmp_path,
        env={},
        output=output,
        interrupt=threading.Event(),
        heartbeat=lambda: beats.append(time.monotonic()),
    )
    assert (result.outcome, result.exit_code) == (Outcome.EXITED, 3)
    assert output.read_text() == "hello\n"
    assert len(beats) >= 2


def test_an_executable_that_cannot_start_is_reported_not_raised(tmp_path: Path) -> None:
    result = ProcessSupervisor(grace_seconds=1).run(
        [str(tmp_path / "missing-dbt"), "build"],
        cwd=tmp_path,
        env={},
        output=tmp_path / "out.log",
        interrupt=threading.Event(),
    )
    assert result.outcome is Outcome.NOT_STARTED
    assert isinstance(result.start_error, FileNotFoundError)


def test_leftover_processes_are_killed_only_in_their_run_directory(tmp_path: Path) -> None:
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run_dir.mkdir()
    elsewhere.mkdir()
    sleep = [PYTHON, "-c", "import time; time.sleep(60)"]
    ours = subprocess.Popen(sleep, cwd=run_dir, start_new_session=True)
    stranger = subprocess.Popen(sleep, cwd=elsewhere, start_new_session=True)
    try:
        assert not kill_leftover(stranger.pid, run_dir), "a reused pid in another directory survives"
        assert kill_leftover(ours.pid, run_dir)
        assert ours.wait(timeout=5) == -signal.SIGKILL
        assert stranger.poll() is None
    finally:
        for process in (ours, stranger):
            process.kill()
            process.wait()


# Execution with a fake dbt ------------------------------------------------------------------------


BUILT_IN_NAMES = [
    "Clone git repository",
    "Create profile from connection DuckDB",
    "Invoke dbt with `dbt deps`",
]


def test_steps_run_in_order_in_a_clean_environment(managers: Callable[..., RunManager]) -> None:
    manager = managers(packages=True)
    run_id = run_job(manager, threads_override=3)
    run = wait_for_end(manager, run_id)
    assert run.status == SUCCESS
    steps = manager.store.step_records(run_id)
    assert [(step.index, step.name, step.command, step.args, step.status) for step in steps] == [
        (1, "Clone git repository", "", (), SUCCESS),
        (2, "Create profile from connection DuckDB", "", (), SUCCESS),
        (3, "Invoke dbt with `dbt deps`", "dbt deps", ("deps",), SUCCESS),
        (4, "Invoke dbt with `dbt seed`", "dbt seed", ("seed", "--threads", "3"), SUCCESS),
        (5, "Invoke dbt with `dbt run`", "dbt run", ("run", "--threads", "3"), SUCCESS),
        (6, "Invoke dbt with `dbt test`", "dbt test", ("test", "--threads", "3"), SUCCESS),
    ]
    workspace = RunWorkspace(manager.data_dir, run_id)
    assert "Copied 3 files" in workspace.console(1).read_text()
    assert (workspace.project / "packages.yml").exists()
    assert f"Wrote {workspace.profile_dir / 'profiles.yml'}" in workspace.console(2).read_text()
    assert "fake dbt deps" in workspace.console(3).read_text()
    console = workspace.console(5).read_text()
    assert f"run {run_id} target {workspace.target(5)}" in console
    assert all(step.pid for step in steps[2:])


def test_the_first_failing_step_ends_the_run_and_a_rerun_retries_from_it(
    managers: Callable[..., RunManager],
) -> None:
    manager = managers(env={"FAKE_DBT_FAIL": "run"})
    first = wait_for_end(manager, run_job(manager))
    assert first.status == ERROR
    assert [step.status for step in manager.store.step_records(first.id)] == [SUCCESS] * 4 + [ERROR]
    message = manager.store.get_run(first.id)["status_message"]
    assert message == "Step 5 (`dbt run`) failed with exit code 1: 1 error; failed: model.p.m"

    rerun = manager.rerun(manager.config.jobs[1])
    assert rerun["retry_of_run_id"] == first.id
    assert rerun["trigger"]["cause_category"] == "rerun"
    second = wait_for_end(manager, rerun["id"])
    # The fake `dbt retry` exits 0 only if the failed step's run_results.json was copied for it.
    assert second.status == SUCCESS
    assert [step.name for step in manager.store.step_records(second.id)] == [
        *BUILT_IN_NAMES,
        "Invoke dbt with `dbt retry`",
        "Invoke dbt with `dbt test`",
    ]

    third = manager.rerun(manager.config.jobs[1])
    assert third["retry_of_run_id"] is None, "the latest run succeeded: a rerun is a normal run"
    assert [step["command"] for step in third["plan"]] == [
        "",
        "",
        "dbt deps",
        "dbt seed",
        "dbt run",
        "dbt test",
    ]


def test_checkbox_steps_that_fail_do_not_fail_the_run(managers: Callable[..., RunManager]) -> None:
    """Source freshness runs first and docs last; as in dbt Cloud, their failure leaves the run a success."""
    manager = managers(generate_docs=True, run_generate_sources=True, env={"FAKE_DBT_FAIL": "source,docs"})
    run = wait_for_end(manager, run_job(manager))
    assert run.status == SUCCESS
    steps = manager.store.step_records(run.id)
    assert [(step.name, step.status) for step in steps] == [
        *((name, SUCCESS) for name in BUILT_IN_NAMES),
        ("Invoke dbt with `dbt source freshness`", ERROR),
        ("Invoke dbt with `dbt seed`", SUCCESS),
        ("Invoke dbt with `dbt run`", SUCCESS),
        ("Invoke dbt with `dbt test`", SUCCESS),
        ("Invoke dbt with `dbt docs generate`", ERROR),
    ]
    assert manager.store.get_run(run.id)["status_message"] == "Success"


def test_a_failing_command_skips_the_docs_checkbox(managers: Callable[..., RunManager]) -> None:
    manager = managers(generate_docs=True, env={"FAKE_DBT_FAIL": "test"})
    run = wait_for_end(manager, run_job(manager))
    assert run.status == ERROR
    assert manager.store.step_records(run.id)[-1].name == "Invoke dbt with `dbt test`", "docs did not run"


def test_a_project_without_profiles_fails_the_profile_step(managers: Callable[..., RunManager]) -> None:
    manager = managers(profiles=False)
    run = wait_for_end(manager, run_job(manager))
    assert run.status == ERROR
    steps = manager.store.step_records(run.id)
    assert [(step.index, step.status) for step in steps] == [(1, SUCCESS), (2, ERROR)], "nothing ran after it"
    message = manager.store.get_run(run.id)["status_message"]
    assert message.startswith("Step 2 (Create profile from connection DuckDB) failed: the dbt project has no")
    console = RunWorkspace(manager.data_dir, run.id).console(2).read_text()
    assert "Error: the dbt project has no profiles.yml" in console


def test_a_missing_project_fails_the_clone_step(managers: Callable[..., RunManager]) -> None:
    manager = managers()
    shutil.rmtree(manager.config.projects[1].dbt_project_dir)
    run = wait_for_end(manager, run_job(manager))
    assert run.status == ERROR
    assert [(step.index, step.status) for step in manager.store.step_records(run.id)] == [(1, ERROR)]
    assert manager.store.get_run(run.id)["status_message"].startswith("Step 1 (Clone git repository) failed")


def test_a_failing_dbt_deps_fails_the_run_at_step_3(managers: Callable[..., RunManager]) -> None:
    manager = managers(env={"FAKE_DBT_FAIL": "deps"})
    run = wait_for_end(manager, run_job(manager))
    assert run.status == ERROR
    assert [step.status for step in manager.store.step_records(run.id)] == [SUCCESS, SUCCESS, ERROR]
    assert manager.store.get_run(run.id)["status_message"].startswith(
        "Step 3 (`dbt deps`) failed with exit code 1"
    )


def test_cancel_during_dbt_deps_stops_it_promptly(managers: Callable[..., RunManager]) -> None:
    manager = managers(packages=True, env={"FAKE_DBT_SLEEP": "deps"})
    run_id = run_job(manager)
    deps_log = RunWorkspace(manager.data_dir, run_id).console(3)
    wait_until(lambda: deps_log.exists() and "fake dbt deps" in deps_log.read_text(), what="dbt deps")
    pid = int(deps_log.read_text().split("pid", 1)[1].split()[0])
    started = time.monotonic()
    assert manager.cancel(run_id)["status"] == RUNNING
    run = wait_for_end(manager, run_id, timeout=10)
    assert time.monotonic() - started < 5, "deps was terminated, not waited for"
    assert run.status == CANCELLED
    assert manager.store.get_run(run_id)["status_message"] == "Cancelled by user"
    statuses = [step.status for step in manager.store.step_records(run_id)]
    assert statuses == [SUCCESS, SUCCESS, CANCELLED], "no step ran after the cancelled deps"
    wait_until(lambda: not alive(pid), timeout=5, what="dbt deps to exit")


def test_the_job_timeout_covers_dbt_deps(managers: Callable[..., RunManager]) -> None:
    manager = managers(packages=True, env={"FAKE_DBT_SLEEP": "deps"}, timeout_seconds=1)
    run = wait_for_end(manager, run_job(manager), timeout=15)
    assert run.status == ERROR
    assert manager.store.get_run(run.id)["status_message"] == (
        "Job run timed out: step 3 (`dbt deps`) exceeded the job's timeout"
    )


def test_a_server_stop_during_dbt_deps_ends_the_run_as_stopped(managers: Callable[..., RunManager]) -> None:
    manager = managers(packages=True, env={"FAKE_DBT_SLEEP": "deps"})
    run_id = run_job(manager)
    deps_log = RunWorkspace(manager.data_dir, run_id).console(3)
    wait_until(lambda: deps_log.exists() and "fake dbt deps" in deps_log.read_text(), what="dbt deps")
    started = time.monotonic()
    manager.stop()
    assert time.monotonic() - started < 5
    run = manager.store.get_run(run_id)
    assert (run["status"], run["status_message"]) == (ERROR, SERVER_STOPPED_MESSAGE)


def test_cancel_of_a_running_step_marks_step_and_run_cancelled(managers: Callable[..., RunManager]) -> None:
    manager = managers(env={"FAKE_DBT_SLEEP": "run"})
    run_id = run_job(manager)
    wait_until(lambda: len(manager.store.step_records(run_id)) == 5, what="step 5 to start")
    wait_until(lambda: manager.store.step_records(run_id)[4].pid, what="step 5's process")
    manager.cancel(run_id)
    run = wait_for_end(manager, run_id, timeout=10)
    assert run.status == CANCELLED
    assert [step.status for step in manager.store.step_records(run_id)] == [SUCCESS] * 4 + [CANCELLED]


def test_recovery_kills_a_leftover_step_and_errors_its_run(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = Store(tmp_path / "data" / "state.sqlite3")
    data_dir = tmp_path / "data"
    crashed = RunManager(config, store, data_dir)  # never started: a server that died mid-run
    run_id = crashed.trigger(config.jobs[1], {"cause": "test"}, None)["id"]
    store.update_run(run_id, status=RUNNING)
    step = store.add_step_record(run_id, 1, "Invoke dbt with `dbt seed`", "dbt seed", ["seed"])
    workspace = RunWorkspace(data_dir, run_id)
    workspace.project.mkdir(parents=True)
    orphan = subprocess.Popen(
        [PYTHON, "-c", "import time; time.sleep(60)"], cwd=workspace.project, start_new_session=True
    )
    try:
        store.update_step(step.id, pid=orphan.pid)
        assert RunManager(config, store, data_dir).recover() == [run_id]
        assert orphan.wait(timeout=5) == -signal.SIGKILL
    finally:
        if orphan.poll() is None:
            os.kill(orphan.pid, signal.SIGKILL)
            orphan.wait()
    run = store.get_run(run_id)
    assert (run["status"], run["status_message"]) == (ERROR, SERVER_STOPPED_MESSAGE)
    assert [s.status for s in store.step_records(run_id)] == [ERROR]
    store.close()
