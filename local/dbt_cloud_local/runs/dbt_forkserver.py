"""
A dbt fork server: import dbt once, then fork a fresh dbt process for every invocation.

Starting ``dbt`` costs about a second of imports before it does anything, and a run invokes it at
least twice (``dbt deps``, then each command). This script runs under the dbt executable's own Python
(it is started by path and uses only the standard library, so it needs nothing from the server's
environment), imports ``dbt.cli.main`` once, and forks a child per request. The child is what a
``dbt`` process would be: its own session (process group), the requested working directory and
environment, stdin from /dev/null, stdout and stderr appended to the step's console file, and
``dbt.cli.main.cli`` run on the arguments, exactly as the ``dbt`` console script runs it.

The protocol is JSON lines on stdin and stdout, one request at a time:

- request ``{"args": [...], "cwd": "...", "env": {...}, "output": "..."}``
- answer ``{"pid": 123}`` as soon as the child exists, or ``{"error": "..."}``
- later, for every child, ``{"exited": 123, "code": 0}`` (``-N`` when signal N ended it, as Popen says)

The server signals the children directly by process group (cancel, timeout); this process only reaps
them and reports their exit codes. It exits when its stdin closes (the server stopped or died); the
children it leaves behind are what a dead server leaves anyway (``runs.recovery`` kills them).
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import sys

# Run by path, Python put this folder first on sys.path: its modules must not shadow what dbt imports.
if sys.path and os.path.realpath(sys.path[0]) == os.path.dirname(os.path.realpath(__file__)):
    del sys.path[0]


def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _child(request: dict, wakeup: tuple[int, int]) -> None:
    """In the forked child: become a dbt process and never return (stdin and stdout are replaced)."""
    code = 1
    try:
        for fd in wakeup:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # dbt's cancel on Ctrl-C, as in a shell
        os.setsid()
        output = os.open(request["output"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
        os.close(devnull)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["dbt", *request["args"]]
        from dbt.cli.main import cli

        try:
            cli()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # the child reports everything through its exit code
        import traceback

        traceback.print_exc()
    finally:
        atexit._run_exitfuncs()  # what a dbt process does on its way out (logging, multiprocessing)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: S110 - nothing left to tell
                pass
        os._exit(code)


def main() -> int:
    import dbt.cli.main  # noqa: F401 - the point of this process: dbt imported once, before any fork

    requests, answers = sys.stdin.buffer.fileno(), sys.stdout.buffer.fileno()
    wakeup = os.pipe()
    os.set_blocking(wakeup[1], False)
    signal.set_wakeup_fd(wakeup[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the server's terminal is the server's

    def answer(message: dict) -> None:
        os.write(answers, (json.dumps(message) + "\n").encode())

    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ)
    selector.register(wakeup[0], selectors.EVENT_READ)
    pending = b""
    answer({"ready": os.getpid()})
    while True:
        for key, _ in selector.select():
            if key.fd == wakeup[0]:
                os.read(wakeup[0], 4096)
                continue
            chunk = os.read(requests, 65536)
            if not chunk:
                return 0
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                try:
                    request = json.loads(line)
                    os.stat(request["cwd"])
                    sys.stdout.flush()
                    sys.stderr.flush()
                    pid = os.fork()
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    answer({"error": f"{type(exc).__name__}: {exc}"})
                    continue
                if pid == 0:
                    _child(request, wakeup)
                answer({"pid": pid})
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            answer({"exited": pid, "code": _exit_code(status)})


if __name__ == "__main__":
    sys.exit(main())
