"""
Start a dbt process, watch it, and stop it on cancel or timeout; kill processes a dead server left.

Every dbt invocation of a run (``dbt deps`` and each step) goes through ``ProcessSupervisor.run``, so
all of them honour a cancel, a server stop and the job's timeout the same way:

* the process starts in its own session (process group) without a shell, its output going to a file
  (``runs.warm_dbt`` starts dbt with dbt already imported; anything else is a plain subprocess);
* when the run's interrupt event is set, or the deadline passes, the whole group gets SIGTERM (dbt
  then cancels its open queries and exits) and, if it is still alive after the grace period, SIGKILL;
* the group, not only the process, is signalled, because dbt's Python models and adapters may fork.

Knowing nothing about runs or the store, it is testable with any short-lived command.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dbt_cloud_local.runs.warm_dbt import popen

log = logging.getLogger(__name__)

#: How often a waiting supervisor looks at the interrupt event and the deadline.
POLL_SECONDS = 0.2
#: How often ``heartbeat`` is called while a process runs (the run's ``last_heartbeat_at``).
HEARTBEAT_SECONDS = 5.0


class Outcome(enum.Enum):
    EXITED = "exited"  # the process ended by itself; see ``exit_code``
    INTERRUPTED = "interrupted"  # the interrupt event was set; the process group was terminated
    TIMED_OUT = "timed out"  # the deadline passed; the process group was terminated
    NOT_STARTED = "not started"  # the executable could not be started; see ``start_error``


@dataclass(frozen=True)
class ProcessResult:
    outcome: Outcome
    exit_code: int | None = None
    start_error: OSError | None = None


class Process(Protocol):
    """What the supervisor uses of a started process (``subprocess.Popen`` has it)."""

    pid: int
    returncode: int | None

    def wait(self, timeout: float | None = None) -> int: ...


class Launcher(Protocol):
    """Starts ``argv`` in its own process group, stdout and stderr into ``output``; OSError if it can't."""

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], output: Path
    ) -> Process: ...


def _noop(*_: object) -> None:
    return None


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group ``pid`` leads; a group that is already gone is fine."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - not our process any more
        log.warning("Not allowed to signal process group %s", pid)


class ProcessSupervisor:
    """Runs one process at a time per call; thread-safe (each call only touches its own process)."""

    def __init__(
        self,
        grace_seconds: float,
        *,
        poll_seconds: float = POLL_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        launcher: Launcher = popen,
    ) -> None:
        self.grace_seconds = grace_seconds
        self.launcher = launcher
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        output: Path,
        interrupt: threading.Event,
        deadline: float | None = None,
        on_start: Callable[[int], None] = _noop,
        heartbeat: Callable[[], None] = _noop,
    ) -> ProcessResult:
        """
        Run ``argv`` to completion, interruption or ``deadline`` (a ``time.monotonic()`` value).

        stdout and stderr go to ``output`` (truncated first). ``on_start`` receives the pid, which is
        also the process group id, as soon as the process exists.
        """
        try:
            process = self.launcher(argv, cwd=cwd, env=env, output=output)
        except OSError as exc:
            return ProcessResult(Outcome.NOT_STARTED, start_error=exc)
        on_start(process.pid)
        outcome = self._watch(process, interrupt, deadline, heartbeat)
        return ProcessResult(outcome, exit_code=process.returncode)

    def _watch(
        self,
        process: Process,
        interrupt: threading.Event,
        deadline: float | None,
        heartbeat: Callable[[], None],
    ) -> Outcome:
        next_heartbeat = time.monotonic() + self.heartbeat_seconds
        while True:
            try:
                process.wait(timeout=self.poll_seconds)
                return Outcome.EXITED
            except subprocess.TimeoutExpired:
                pass
            if interrupt.is_set():
                self.terminate(process)
                return Outcome.INTERRUPTED
            if deadline is not None and time.monotonic() > deadline:
                self.terminate(process)
                return Outcome.TIMED_OUT
            if time.monotonic() >= next_heartbeat:
                heartbeat()
                next_heartbeat = time.monotonic() + self.heartbeat_seconds

    def terminate(self, process: Process) -> None:
        """SIGTERM the process group, then SIGKILL it if the leader outlives the grace period."""
        signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=self.grace_seconds)
        except subprocess.TimeoutExpired:
            signal_group(process.pid, signal.SIGKILL)
            process.wait()


def process_runs_in(pid: int, workdir: Path) -> bool:
    """Whether ``pid`` is a process whose working directory is ``workdir`` (Linux ``/proc``)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == workdir.resolve()
    except OSError:
        return False


def kill_leftover(pid: int, workdir: Path) -> bool:
    """
    SIGKILL the process group of a dbt process a previous server started; return whether it did.

    The pid comes from the state database and may have been reused since by an unrelated process, so
    it is only killed while its working directory is still ``workdir`` (the run's working copy).
    """
    if not process_runs_in(pid, workdir):
        return False
    signal_group(pid, signal.SIGKILL)
    return True
