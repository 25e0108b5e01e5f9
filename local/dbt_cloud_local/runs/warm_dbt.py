"""
Start dbt processes warm: through a fork server that imported dbt once (``dbt_forkserver.py``).

A ``dbt`` process spends about a second importing dbt before it reads a file, and every run starts at
least two (``dbt deps``, then each command): a run of a small project spent most of its time in those
imports. ``WarmDbt`` is the ``ProcessSupervisor``'s launcher: for a pip-installed ``dbt`` console
script it starts one fork server under that script's own Python and has it fork each dbt process, so
each starts with dbt already imported. The process is the same as before to everyone else: its own
process group, its working directory and environment, its output in the step's console file, a pid
the supervisor signals and the store records (``runs.recovery`` kills a dead server's leftovers by
it), an exit code as ``subprocess.Popen`` reports it.

Anything that is not such a script (dbt Fusion's binary, a wrapper) starts as a plain subprocess, as
does everything when the fork server cannot start: speed is never a reason for a run to fail.
``bench/bench_warm_dbt.py`` measures the difference.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from dbt_cloud_local.runs.environment import PASSTHROUGH_ENV

log = logging.getLogger(__name__)

FORKSERVER_SCRIPT = Path(__file__).with_name("dbt_forkserver.py")
#: What pip writes into the ``dbt`` console script of dbt Core 1.5 and later.
CONSOLE_SCRIPT_IMPORT = "from dbt.cli.main import cli"
#: How long the fork server may take to import dbt before it is given up on (a cold disk is slow).
READY_TIMEOUT_SECONDS = 60.0
#: The exit code reported for a child whose fork server died before it could say (never expected).
LOST_EXIT_CODE = 255


def console_script_python(executable: Path) -> Path | None:
    """The Python that runs ``executable`` when it is pip's ``dbt`` console script, else ``None``."""
    try:
        with executable.open("rb") as script:
            head = script.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return None
    shebang, _, body = head.partition("\n")
    if not shebang.startswith("#!") or CONSOLE_SCRIPT_IMPORT not in body:
        return None
    words = shebang[2:].split()
    python = Path(words[0]) if len(words) == 1 else None  # `#!/usr/bin/env python`: not this venv's
    return python if python and python.is_absolute() and os.access(python, os.X_OK) else None


class ForkServerGone(RuntimeError):
    """The fork server is not running (it never started, or it ended)."""


class ForkedProcess:
    """A fork server's child, with what the supervisor uses of ``subprocess.Popen``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = threading.Event()

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"dbt (pid {self.pid})", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def exited(self, code: int) -> None:
        self.returncode = code
        self._exited.set()


class DbtForkServer:
    """One fork server process (one per dbt Python) and the thread that reads its answers."""

    def __init__(self, python: Path, env: Mapping[str, str]) -> None:
        self._process = subprocess.Popen(
            [str(python), str(FORKSERVER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(env),
            start_new_session=True,  # a Ctrl-C meant for the server does not reach it
        )
        self._lock = threading.Lock()  # one request at a time: an answer belongs to the last request
        self._answers: queue.Queue[ForkedProcess | str | None] = queue.Queue()
        self._children: dict[int, ForkedProcess] = {}
        self._ready = threading.Event()
        self._gone = False  # set once its answers ended: it exited, or is about to
        self._reader = threading.Thread(target=self._read, name="dbt-forkserver", daemon=True)
        self._reader.start()
        if not self._ready.wait(READY_TIMEOUT_SECONDS) or self._gone:
            self.close()
            raise ForkServerGone(f"the dbt fork server under {python} did not start")

    def start(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str], output: Path) -> ForkedProcess:
        request = {"args": list(args), "cwd": str(cwd), "env": dict(env), "output": str(output)}
        with self._lock:
            if self._gone or self._process.stdin is None:
                raise ForkServerGone("the dbt fork server has ended")
            try:
                self._process.stdin.write(json.dumps(request).encode() + b"\n")
                self._process.stdin.flush()
            except (BrokenPipeError, ValueError) as exc:
                raise ForkServerGone("the dbt fork server has ended") from exc
            answer = self._answers.get()
        if answer is None:
            raise ForkServerGone("the dbt fork server ended before it answered")
        if isinstance(answer, str):
            raise OSError(answer)  # the supervisor reports it as a dbt that could not start
        return answer

    def close(self) -> None:
        """Close its stdin (it exits); children already forked run on as independent processes."""
        if self._process.stdin is not None:
            try:
                self._process.stdin.close()
            except OSError:
                pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            message = json.loads(line)
            if "ready" in message:
                self._ready.set()
            elif "pid" in message:
                child = self._children[message["pid"]] = ForkedProcess(message["pid"])
                self._answers.put(child)
            elif "error" in message:
                self._answers.put(str(message["error"]))
            elif "exited" in message:
                child = self._children.pop(message["exited"], None)
                if child is not None:
                    child.exited(int(message["code"]))
        self._ended()

    def _ended(self) -> None:
        """The fork server is gone: no exit code will come for its children; wait for them by pid."""
        self._gone = True
        self._ready.set()
        self._answers.put(None)  # to a request it could not answer: start it as a plain process
        for child in list(self._children.values()):
            threading.Thread(target=_wait_for_orphan, args=(child,), daemon=True).start()
        if self._children:
            log.error("The dbt fork server ended with %d dbt processes running", len(self._children))


def _wait_for_orphan(child: ForkedProcess) -> None:
    while _running(child.pid):
        threading.Event().wait(0.5)
    child.exited(LOST_EXIT_CODE)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (an init that does not reap, as in some containers) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def popen(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], output: Path) -> subprocess.Popen[bytes]:
    """A plain subprocess: its own session, no shell, stdout and stderr into ``output`` (truncated)."""
    with output.open("wb") as sink:
        return subprocess.Popen(  # no shell: argv is a validated argument list
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class WarmDbt:
    """The supervisor's launcher: dbt console scripts through a fork server, the rest through ``popen``."""

    def __init__(self, server_env: Mapping[str, str] | None = None) -> None:
        self._env = dict(server_env if server_env is not None else _fork_server_env())
        self._servers: dict[Path, DbtForkServer | None] = {}
        self._lock = threading.Lock()

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], output: Path
    ) -> subprocess.Popen[bytes] | ForkedProcess:
        python = console_script_python(Path(argv[0]))
        server = self._server(python) if python is not None else None
        if server is not None:
            output.write_bytes(b"")
            try:
                return server.start(argv[1:], cwd=cwd, env=env, output=output)
            except ForkServerGone:
                log.warning("The dbt fork server ended; dbt starts as a plain process from now on")
                with self._lock:
                    self._servers[python] = None  # type: ignore[index]
        return popen(argv, cwd=cwd, env=env, output=output)

    def close(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            if server is not None:
                server.close()

    def _server(self, python: Path) -> DbtForkServer | None:
        with self._lock:
            if python not in self._servers:
                try:
                    self._servers[python] = DbtForkServer(python, self._env)
                except (OSError, ForkServerGone) as exc:
                    log.warning("dbt starts as a plain process: %s", exc)
                    self._servers[python] = None
            return self._servers[python]


def _fork_server_env() -> dict[str, str]:
    """What the fork server imports dbt with: no secrets (each child gets its run's environment)."""
    env = {name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ}
    env["PYTHONUNBUFFERED"] = "1"  # a step's log reaches its console file as dbt writes it
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return env
