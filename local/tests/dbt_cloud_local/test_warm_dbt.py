"""dbt started warm (runs/warm_dbt.py, runs/dbt_forkserver.py): the same dbt process, without the imports.

Real dbt Core on the tiny project, through the real supervisor: a forked dbt answers exactly as a
plain ``dbt`` process does (output, exit codes, its own working directory, environment and process
group), a cancel stops it, and a fork server that dies (killed for real) loses no run: its children
are still waited for, and dbt starts as a plain process from then on.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import DBT_EXECUTABLE
from test_runner_units import alive, wait_until
from tiny_project import write_tiny_project

from dbt_cloud_local.runs.supervisor import Outcome, ProcessResult, ProcessSupervisor
from dbt_cloud_local.runs.warm_dbt import ForkedProcess, WarmDbt, console_script_python, popen


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_tiny_project(tmp_path / "project")


@pytest.fixture
def warm() -> Iterator[WarmDbt]:
    launcher = WarmDbt()
    yield launcher
    launcher.close()


def dbt_env(project: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(project),
        "DBT_PROFILES_DIR": str(project),
        "DBT_DUCKDB_PATH": str(project / "warehouse.duckdb"),
        "DBT_USE_COLORS": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def run_dbt(launcher, project: Path, *args: str, output: Path, **env: str) -> ProcessResult:
    return ProcessSupervisor(grace_seconds=5, launcher=launcher).run(
        [str(DBT_EXECUTABLE), *args],
        cwd=project,
        env=dbt_env(project, **env),
        output=output,
        interrupt=threading.Event(),
    )


def without_timestamps(log: str) -> list[str]:
    return [re.sub(r"^\d\d:\d\d:\d\d\s+", "", line) for line in log.splitlines()]


def test_pip_dbt_scripts_are_recognised_and_anything_else_is_not(tmp_path: Path) -> None:
    assert console_script_python(DBT_EXECUTABLE) == DBT_EXECUTABLE.parent / "python"
    wrapper = tmp_path / "dbt"
    wrapper.write_text(f'#!/bin/sh\nexec {DBT_EXECUTABLE} "$@"\n')
    wrapper.chmod(0o755)
    assert console_script_python(wrapper) is None  # a wrapper (or dbt Fusion's binary) starts plainly
    assert console_script_python(tmp_path / "missing") is None


def test_a_forked_dbt_answers_as_a_plain_dbt_process(project: Path, warm: WarmDbt, tmp_path: Path) -> None:
    listing = ("ls", "--resource-type", "model", "--no-partial-parse")
    plain = run_dbt(popen, project, *listing, output=tmp_path / "plain.log")
    forked = run_dbt(warm, project, *listing, output=tmp_path / "warm.log")
    assert (plain.outcome, plain.exit_code) == (forked.outcome, forked.exit_code) == (Outcome.EXITED, 0)
    listed = without_timestamps((tmp_path / "warm.log").read_text())
    assert "jaffle_shop.customers" in listed
    assert listed == without_timestamps((tmp_path / "plain.log").read_text())

    unknown = run_dbt(warm, project, "no-such-command", output=tmp_path / "unknown.log")
    assert unknown.exit_code == 2
    assert "No such command 'no-such-command'" in (tmp_path / "unknown.log").read_text()


def test_a_forked_dbt_gets_its_runs_environment_and_fails_as_dbt_does(
    project: Path, warm: WarmDbt, tmp_path: Path
) -> None:
    seeded = run_dbt(warm, project, "seed", output=tmp_path / "seed.log")
    assert seeded.exit_code == 0, (tmp_path / "seed.log").read_text()
    failed = run_dbt(warm, project, "run", output=tmp_path / "run.log", DBT_FAIL_MODEL="stg_orders")
    log = (tmp_path / "run.log").read_text()
    assert failed.exit_code == 1, log
    assert "stg_orders" in log
    assert "ERROR=1" in log
    assert (project / "target" / "run_results.json").exists()  # written in the run's own directory
    fixed = run_dbt(warm, project, "run", output=tmp_path / "fixed.log")  # the variable is gone again
    assert fixed.exit_code == 0, (tmp_path / "fixed.log").read_text()


def test_a_cancel_stops_a_forked_dbt_and_its_process_group(
    project: Path, warm: WarmDbt, tmp_path: Path
) -> None:
    assert run_dbt(warm, project, "seed", output=tmp_path / "seed.log").exit_code == 0
    interrupt, box = threading.Event(), {}
    output = tmp_path / "slow.log"

    def slow_run() -> None:
        box["result"] = ProcessSupervisor(grace_seconds=5, launcher=warm).run(
            [str(DBT_EXECUTABLE), "run", "--select", "slow_model"],
            cwd=project,
            env=dbt_env(project, DBT_SLOW_SECONDS="120"),
            output=output,
            interrupt=interrupt,
            on_start=lambda pid: box.setdefault("pid", pid),
        )

    thread = threading.Thread(target=slow_run)
    thread.start()
    wait_until(lambda: "slow_model" in output.read_text() if output.exists() else False, timeout=60,
               what="dbt to start the slow model")  # fmt: skip
    pid = box["pid"]
    assert os.getpgid(pid) == pid, "a forked dbt leads a process group of its own"
    assert Path(os.readlink(f"/proc/{pid}/cwd")) == project
    interrupt.set()
    thread.join(timeout=30)
    assert box["result"].outcome is Outcome.INTERRUPTED
    wait_until(lambda: not alive(pid), timeout=10, what="the cancelled dbt to end")


def test_a_fork_server_killed_mid_run_loses_no_run(project: Path, warm: WarmDbt, tmp_path: Path) -> None:
    assert run_dbt(warm, project, "seed", output=tmp_path / "seed.log").exit_code == 0
    fork_server = warm._servers[console_script_python(DBT_EXECUTABLE)]
    assert fork_server is not None
    child = warm([str(DBT_EXECUTABLE), "run", "--select", "slow_model"], cwd=project,
                 env=dbt_env(project, DBT_SLOW_SECONDS="120"), output=tmp_path / "slow.log")  # fmt: skip
    assert isinstance(child, ForkedProcess)
    os.kill(fork_server._process.pid, signal.SIGKILL)
    fork_server._process.wait()
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=1)  # still running: nobody pretends it ended
    os.killpg(child.pid, signal.SIGKILL)
    started = time.monotonic()
    assert child.wait(timeout=15) == 255  # ended, its exit code lost with the fork server
    assert time.monotonic() - started < 15
    after = run_dbt(warm, project, "ls", "--resource-type", "seed", output=tmp_path / "after.log")
    assert after.exit_code == 0  # dbt still starts: as a plain process now
    assert warm._servers[console_script_python(DBT_EXECUTABLE)] is None
