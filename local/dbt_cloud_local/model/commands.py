"""
Validate job steps and ``steps_override`` entries, and turn them into argument lists.

Every step is executed without a shell, as ``[dbt_executable, *args]``, so shell syntax can never
run. We still refuse shell metacharacters outright: a step that contains them was written for a
shell and would silently mean something else here, and refusing them keeps the API's contract simple
("a dbt command, nothing else"). Flags that would move dbt's files outside the run's directory are
refused too: the server owns ``--project-dir``, ``--profiles-dir``, ``--target-path`` and
``--log-path``, and path-valued flags such as ``--state`` must stay inside the run directory.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

#: Subcommands a step may invoke (first word after ``dbt``; ``docs``/``source`` need their verb).
ALLOWED_SUBCOMMANDS = frozenset(
    {
        "build",
        "run",
        "test",
        "seed",
        "snapshot",
        "compile",
        "retry",
        "ls",
        "list",
        "parse",
        "deps",
        "run-operation",
        "clone",
        "show",
    }
)
ALLOWED_VERBS = {"docs": frozenset({"generate"}), "source": frozenset({"freshness"})}

#: Characters that only mean something to a shell.
SHELL_METACHARACTERS = frozenset(";|&$`<>\n\r")

#: Flags whose value the server sets for each step; a step may not set them.
SERVER_MANAGED_FLAGS = frozenset({"--project-dir", "--profiles-dir", "--target-path", "--log-path"})

#: Flags that take a path; the path must be relative and stay inside the run directory.
PATH_FLAGS = frozenset({"--state", "--defer-state", "--output", "-o", "--output-path", "--favor-state-path"})

#: Subcommands that accept ``--threads``.
THREADED_SUBCOMMANDS = frozenset(
    {"build", "run", "test", "seed", "snapshot", "compile", "retry", "clone", "docs", "source"}
)

MAX_STEP_LENGTH = 4096
MAX_STEPS = 20


class CommandError(ValueError):
    """A step is not an allowed dbt command; the message says why."""


@dataclass(frozen=True)
class Step:
    """One validated dbt invocation: ``args`` excludes the executable."""

    command: str
    args: tuple[str, ...]

    @property
    def subcommand(self) -> str:
        return self.args[0]

    @property
    def name(self) -> str:
        """The run step name dbt Cloud shows, e.g. ``Invoke dbt with `dbt build```."""
        return f"Invoke dbt with `{self.command}`"

    @property
    def is_docs_generate(self) -> bool:
        return self.args[:2] == ("docs", "generate")

    def with_threads(self, threads: int | None) -> Step:
        """Append ``--threads`` unless unset, unsupported by the subcommand or already given."""
        if threads is None or self.subcommand not in THREADED_SUBCOMMANDS:
            return self
        if any(arg == "--threads" or arg.startswith("--threads=") for arg in self.args):
            return self
        return Step(command=self.command, args=(*self.args, "--threads", str(threads)))


def _check_path_value(flag: str, value: str) -> None:
    if not value:
        raise CommandError(f"{flag} needs a value")
    if value.startswith("~") or PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute():
        raise CommandError(f"{flag} {value!r} must be a relative path inside the run directory")
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        raise CommandError(f"{flag} {value!r} must not contain '..'")


def _check_flags(args: list[str]) -> None:
    for position, arg in enumerate(args):
        flag, has_inline, inline_value = arg.partition("=")
        if flag in SERVER_MANAGED_FLAGS:
            raise CommandError(f"{flag} is set by the local dbt Cloud server for every step; remove it")
        if flag in PATH_FLAGS:
            if has_inline:
                value = inline_value
            elif position + 1 < len(args):
                value = args[position + 1]
            else:
                value = ""
            _check_path_value(flag, value)


def parse_step(command: str) -> Step:
    """
    Validate one step and split it into arguments.

    :raises CommandError: the step is not an allowed dbt command.
    """
    if not isinstance(command, str) or not command.strip():
        raise CommandError("a step must be a non-empty string such as 'dbt build'")
    if len(command) > MAX_STEP_LENGTH:
        raise CommandError(f"a step may be at most {MAX_STEP_LENGTH} characters long")
    bad = sorted({char for char in command if char in SHELL_METACHARACTERS})
    if bad:
        shown = ", ".join(repr(char) for char in bad)
        raise CommandError(
            f"shell metacharacters are not allowed in a step ({shown}); steps run without a shell"
        )
    try:
        tokens = shlex.split(command)
    except ValueError as exc:
        raise CommandError(f"cannot parse step {command!r}: {exc}") from exc
    if not tokens or tokens[0] != "dbt":
        raise CommandError(f"a step must start with 'dbt', got {command!r}")
    args = tokens[1:]
    if not args:
        raise CommandError("a step needs a dbt subcommand, e.g. 'dbt build'")
    subcommand = args[0]
    if subcommand in ALLOWED_VERBS:
        verb = args[1] if len(args) > 1 else ""
        if verb not in ALLOWED_VERBS[subcommand]:
            allowed = ", ".join(f"'dbt {subcommand} {v}'" for v in sorted(ALLOWED_VERBS[subcommand]))
            raise CommandError(f"'dbt {subcommand} {verb}'".rstrip() + f" is not allowed; use {allowed}")
    elif subcommand not in ALLOWED_SUBCOMMANDS:
        allowed = ", ".join(sorted(ALLOWED_SUBCOMMANDS | {"docs generate", "source freshness"}))
        raise CommandError(f"dbt subcommand {subcommand!r} is not allowed; allowed: {allowed}")
    _check_flags(args)
    return Step(command=command.strip(), args=tuple(args))


def parse_steps_override(value: object) -> list[Step] | None:
    """Validate a ``steps_override`` request value (``None`` keeps the job's own steps)."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise CommandError("steps_override must be a non-empty list of dbt commands, or null")
    if len(value) > MAX_STEPS:
        raise CommandError(f"steps_override may hold at most {MAX_STEPS} steps")
    steps = []
    for index, command in enumerate(value):
        try:
            steps.append(parse_step(command))
        except CommandError as exc:
            raise CommandError(f"steps_override[{index}]: {exc}") from exc
    return steps
