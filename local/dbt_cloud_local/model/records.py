"""
Typed, immutable views of the store's run and step rows, for the code that executes runs.

The store hands dicts to the API layer, whose serializers spread them into responses; the runner
instead reads these records, built once at its boundary (``Store.run_record`` and friends), so that a
misspelt key is an ``AttributeError`` at the line that made it rather than a ``None`` that travels on
to dbt. ``to_json`` writes exactly the JSON the ``trigger`` and ``plan`` columns always held, so rows
written before these types existed (a queued run surviving an upgrade) still read back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dbt_cloud_local.model.commands import Step


@dataclass(frozen=True)
class RetrySource:
    """The step of an earlier run whose ``run_results.json`` a ``dbt retry`` step replays."""

    run_id: int
    step: int

    def to_json(self) -> dict[str, int]:
        return {"run_id": self.run_id, "step": self.step}


#: What a planned step does: clone the project, write the run's profile, install the packages (dbt
#: Cloud's built-in steps, see ``model.anatomy``), or invoke dbt for one of the run's commands.
CLONE, PROFILE, DEPS, DBT = "clone", "profile", "deps", "dbt"


@dataclass(frozen=True)
class PlannedStep:
    """
    One entry of a run's plan, which numbers the run's steps (entry ``n`` is step ``n + 1``): a step
    dbt Cloud adds (``kind`` clone, profile or deps) or a dbt invocation. ``optional``: a
    checkbox step (``run_generate_sources``, ``generate_docs``) whose failure does not fail the run.
    For ``dbt retry``, ``retry_of`` is where its results come from.
    """

    command: str
    args: tuple[str, ...]
    retry_of: RetrySource | None = None
    kind: str = DBT
    optional: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlannedStep:
        state = data.get("retry_state")
        return cls(
            command=str(data["command"]),
            args=tuple(str(arg) for arg in data["args"]),
            retry_of=RetrySource(run_id=int(state["run_id"]), step=int(state["step"])) if state else None,
            kind=str(data.get("kind") or DBT),
            optional=bool(data.get("optional")),
        )

    @classmethod
    def from_step(cls, step: Step, *, optional: bool = False) -> PlannedStep:
        return cls(command=step.command, args=step.args, optional=optional)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"command": self.command, "args": list(self.args)}
        if self.kind != DBT:
            data["kind"] = self.kind
        if self.optional:
            data["optional"] = True
        if self.retry_of is not None:
            data["retry_state"] = self.retry_of.to_json()
        return data

    @property
    def invokes_dbt(self) -> bool:
        return self.kind in (DEPS, DBT)

    @property
    def built_in(self) -> bool:
        """One of the steps dbt Cloud adds to every run (clone, profile, ``dbt deps``)."""
        return self.kind != DBT

    def to_step(self) -> Step:
        return Step(command=self.command, args=self.args)


@dataclass(frozen=True)
class RunTrigger:
    """
    Why and how a run was requested: the ``trigger`` object of the run API, overrides included.

    Field order is the key order of ``to_json``, which the API shows as the run's ``trigger``.
    """

    cause: str
    cause_category: str
    job_definition_id: int
    git_branch: str | None = None
    git_sha: str | None = None
    schema_override: str | None = None
    dbt_version_override: str | None = None
    threads_override: int | None = None
    target_name_override: str | None = None
    generate_docs_override: bool | None = None
    timeout_seconds_override: int | None = None
    steps_override: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunTrigger:
        steps = data.get("steps_override")
        return cls(
            cause=str(data.get("cause") or ""),
            cause_category=str(data.get("cause_category") or "api"),
            job_definition_id=int(data["job_definition_id"]),
            git_branch=data.get("git_branch"),
            git_sha=data.get("git_sha"),
            schema_override=data.get("schema_override"),
            dbt_version_override=data.get("dbt_version_override"),
            threads_override=data.get("threads_override"),
            target_name_override=data.get("target_name_override"),
            generate_docs_override=data.get("generate_docs_override"),
            timeout_seconds_override=data.get("timeout_seconds_override"),
            steps_override=tuple(steps) if steps is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "cause_category": self.cause_category,
            "job_definition_id": self.job_definition_id,
            "git_branch": self.git_branch,
            "git_sha": self.git_sha,
            "schema_override": self.schema_override,
            "dbt_version_override": self.dbt_version_override,
            "threads_override": self.threads_override,
            "target_name_override": self.target_name_override,
            "generate_docs_override": self.generate_docs_override,
            "timeout_seconds_override": self.timeout_seconds_override,
            "steps_override": list(self.steps_override) if self.steps_override is not None else None,
        }


@dataclass(frozen=True)
class RunRecord:
    """A row of ``runs``, as far as executing and scheduling runs needs it."""

    id: int
    account_id: int
    project_id: int
    environment_id: int
    job_id: int
    status: int
    trigger: RunTrigger
    plan: tuple[PlannedStep, ...]
    git_branch: str | None
    retry_of_run_id: int | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord:
        return cls(
            id=row["id"],
            account_id=row["account_id"],
            project_id=row["project_id"],
            environment_id=row["environment_id"],
            job_id=row["job_id"],
            status=row["status"],
            trigger=RunTrigger.from_json({"job_definition_id": row["job_id"], **row["trigger"]}),
            plan=tuple(PlannedStep.from_json(entry) for entry in row["plan"]),
            git_branch=row["git_branch"],
            retry_of_run_id=row["retry_of_run_id"],
        )


@dataclass(frozen=True)
class StepRecord:
    """A row of ``run_steps``: one executed (or executing) step; ``index`` counts from 1."""

    id: int
    run_id: int
    index: int
    name: str
    command: str
    args: tuple[str, ...]
    status: int
    pid: int | None
    exit_code: int | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StepRecord:
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            index=row["idx"],
            name=row["name"],
            command=row["command"],
            args=tuple(row["args"]),
            status=row["status"],
            pid=row["pid"],
            exit_code=row["exit_code"],
        )


def plan_to_json(plan: Sequence[PlannedStep]) -> list[dict[str, Any]]:
    """The ``plan`` column's JSON for ``plan``."""
    return [step.to_json() for step in plan]
