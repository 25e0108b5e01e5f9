"""Start stack components in the background and stop them again without leaving anything behind.

Each component runs in its own session (so its own process group), with stdout and stderr appended to
``<state>/logs/stack/<name>.log``, and is recorded in ``<state>/run/<name>.json`` with its pid and its
kernel start time: a pid that was recycled by an unrelated process is never signalled.

Stopping sends SIGTERM to each component's main process (as ``docker stop`` does), then to whatever
they leave behind, and SIGKILLs what is left after the grace period. Some descendants leave their
parent's group on purpose: Airflow's task supervisor puts each task process in a new group, and the
local dbt Cloud starts every dbt step in a new session with a scrubbed environment. They are found by
scanning ``/proc`` (no psutil needed): a process belongs to the stack if it descends from a recorded
component, carries the stack's marker variable (inherited by everything a component starts; its
orphans keep it) or has an environment that points into the stack's dbt Cloud data folder (every dbt
step's does). The marker alone is not enough: ``setproctitle`` (api-server, executor workers, task
supervisors) overwrites the environment that ``/proc/<pid>/environ`` shows, for the process and its
forks, hence the ancestry. Every process seen once is tracked by pid and start time until it is gone,
so one that loses its parent during shutdown is still waited for and killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    argv: list[str]
    log: str
    #: Where this start's output begins in the (appended) log file.
    log_offset: int


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str
    ppid: int
    pgrp: int
    start_ticks: int


def proc_stat(pid: int) -> ProcStat | None:
    """Fields of /proc/<pid>/stat; None when the process is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or parentheses.
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[19]))


def all_pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def _alive(stat: ProcStat | None) -> bool:
    return stat is not None and stat.state not in ("Z", "X")


def is_running(record: ProcessRecord) -> bool:
    """True when the recorded process still runs (and is the same process, not a recycled pid)."""
    stat = proc_stat(record.pid)
    return _alive(stat) and stat is not None and stat.start_ticks == record.start_ticks


def spawn(
    name: str, argv: list[str], *, env: dict[str, str], cwd: Path, logs_dir: Path, run_dir: Path
) -> ProcessRecord:
    """Start ``argv`` detached in a new session, log to ``logs_dir/<name>.log``, record it in ``run_dir``."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = logs_dir / f"{name}.log"
    with log_path.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n===== {stamp} localdev.stack starts {name}: {' '.join(argv)}\n".encode())
        log.flush()
        offset = log.tell()
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stat = proc_stat(process.pid)
    record = ProcessRecord(name, process.pid, stat.start_ticks if stat else 0, argv, str(log_path), offset)
    tmp = run_dir / f".{name}.json.tmp"
    tmp.write_text(json.dumps(asdict(record)))
    tmp.replace(run_dir / f"{name}.json")
    return record


def read_records(run_dir: Path) -> list[ProcessRecord]:
    records = []
    for path in sorted(run_dir.glob("*.json")):
        if path.name == "stack.json":
            continue
        try:
            records.append(ProcessRecord(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue  # a torn or foreign file: nothing we started can be identified by it
    return records


def forget_records(run_dir: Path) -> None:
    for path in run_dir.glob("*.json"):
        path.unlink(missing_ok=True)


def log_tail(record: ProcessRecord | Path, lines: int = 25) -> str:
    """The last lines of a component's output since it was started (for error messages)."""
    path, offset = (record, 0) if isinstance(record, Path) else (Path(record.log), record.log_offset)
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def log_since_start(record: ProcessRecord) -> str:
    try:
        with Path(record.log).open("rb") as handle:
            handle.seek(record.log_offset)
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _protected() -> set[int]:
    """This process and its ancestors (make, a shell, pytest): never ours to signal."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        stat = proc_stat(pid)
        pid = stat.ppid if stat else 0
    pids.add(1)
    return pids


def _environ(pid: int) -> list[bytes]:
    try:
        return (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return []


def stack_members(
    marker: str,
    state_dir: Path,
    private_dirs: Iterable[Path],
    shared_dirs: Iterable[Path] = (),
    roots: Iterable[ProcessRecord] = (),
) -> set[int]:
    """Live processes that belong to the stack, wherever their process group is (see module doc).

    ``roots``: the recorded components; all their descendants belong. ``private_dirs``: a process whose
    environment holds a path inside one of them is the stack's (dbt steps). ``shared_dirs`` inside them
    are exempt: a developer's shell may well export the dbt Cloud CA path, and must not be killed for it.
    """
    tag = f"{marker}={state_dir}".encode()
    private = [f"={directory}/".encode() for directory in private_dirs]
    shared = [f"={directory}/".encode() for directory in shared_dirs]
    protected = _protected()
    stats = {pid: stat for pid in all_pids() if _alive(stat := proc_stat(pid))}
    found = {record.pid for record in roots if is_running(record)}
    for pid in stats:
        if pid in protected:
            continue
        for entry in _environ(pid):
            if entry == tag or (
                any(prefix in entry for prefix in private) and not any(prefix in entry for prefix in shared)
            ):
                found.add(pid)
                break
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        if stat is not None:
            children.setdefault(stat.ppid, []).append(pid)
    pending = list(found)
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found - protected


def group_members(pgids: set[int]) -> set[int]:
    members = set()
    protected = _protected()
    for pid in all_pids():
        stat = proc_stat(pid)
        if _alive(stat) and stat is not None and stat.pgrp in pgids and pid not in protected:
            members.add(pid)
    return members


def _signal(pgids: set[int], pids: set[int], signum: int) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def stop(
    records: list[ProcessRecord],
    find_members: Callable[[], set[int]],
    *,
    grace: float,
    say: Callable[[str], None] = print,
) -> list[str]:
    """SIGTERM every group and member, SIGKILL after ``grace`` seconds; return what survived (if any)."""
    pgids = {record.pid for record in records if is_running(record)}
    tracked: dict[int, int] = {}  # pid -> start time of every member seen so far

    def remaining() -> set[int]:
        for pid in group_members(pgids) | find_members():
            stat = proc_stat(pid)
            if stat is not None:
                tracked.setdefault(pid, stat.start_ticks)
        for pid, ticks in list(tracked.items()):
            stat = proc_stat(pid)
            if not _alive(stat) or stat is None or stat.start_ticks != ticks:
                del tracked[pid]
        return set(tracked)

    left = remaining()
    if not left:
        return []
    say(f"Stopping {len(left)} processes (SIGTERM, SIGKILL after {grace:g}s)...")
    # Like `docker stop`: SIGTERM to each component's main process only, so it shuts its own workers
    # down in order (a LocalExecutor signalled along with its workers can hang on them).
    _signal(set(), pgids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    rest_signalled = False
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = remaining()
        if left and not rest_signalled and not any(is_running(record) for record in records):
            # Every main process is gone; whatever they left behind gets SIGTERM and a few seconds.
            _signal(pgids, left, signal.SIGTERM)
            rest_signalled = True
            deadline = min(deadline, time.monotonic() + 5)
    for attempt in range(3):
        if not left:
            return []
        if attempt == 0:
            say(f"{len(left)} processes ignored SIGTERM for {grace:g}s; sending SIGKILL: {sorted(left)}")
        _signal(pgids, left, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = remaining()
    return [f"pid {pid}: {cmdline(pid)}" for pid in sorted(left)]


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on ``port`` (any address, IPv4 or IPv6), from /proc/net/tcp{,6}."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def port_owners(port: int) -> list[str]:
    """``pid N: command`` for every process listening on ``port``; empty when the port is free."""
    inodes = listening_inodes(port)
    if not inodes:
        return []
    owners = []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in all_pids():
        try:
            fds = list((PROC / str(pid) / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    owners.append(f"pid {pid}: {cmdline(pid)[:160]}")
                    break
            except OSError:
                continue
    return owners or ["a process this user cannot see"]
