"""
A run as dbt Cloud shapes it (dbt Cloud's "Job commands" documentation): the steps it adds to every
run, their names and their numbers.

====  ===============================================================  ===========================
step  name                                                             when
====  ===============================================================  ===========================
1     ``Clone git repository``                                         always
2     ``Create profile from connection DuckDB``                        always
3     ``Invoke dbt with `dbt deps` ``                                  always
4     ``Invoke dbt with `dbt source freshness` ``                      ``run_generate_sources``
4…    ``Invoke dbt with `<command>` ``                                 each command of the job (or
                                                                       of ``steps_override``)
last  ``Invoke dbt with `dbt docs generate` ``                         ``generate_docs``
====  ===============================================================  ===========================

Steps 1 to 3 and the commands are chained: the first that fails ends the run (error), later steps do
not run. The two checkbox steps are ``optional``: their failure does not fail the run. The numbers
are the run step ``index`` of the API, of ``?step=`` on the artifact routes, of the run pages and of
run messages (``Step 5 (`dbt build`) failed``); reruns and retries number their steps the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from dbt_cloud_local.model.records import CLONE, DEPS, PROFILE, PlannedStep

#: The connection type of every local project (the API's ``connection`` of a project is DuckDB).
CONNECTION_TYPE = "DuckDB"
CLONE_STEP_NAME = "Clone git repository"

CLONE_STEP = PlannedStep(command="", args=(), kind=CLONE)
PROFILE_STEP = PlannedStep(command="", args=(), kind=PROFILE)
DEPS_STEP = PlannedStep(command="dbt deps", args=("deps",), kind=DEPS)
#: The steps dbt Cloud adds before every run's commands, in their order (steps 1, 2, 3).
BUILT_IN_STEPS = (CLONE_STEP, PROFILE_STEP, DEPS_STEP)
#: The index of a run's first step after the built-in ones.
FIRST_COMMAND_INDEX = len(BUILT_IN_STEPS) + 1

#: The checkbox steps: source freshness first, docs last; their failure does not fail the run.
SOURCE_FRESHNESS_STEP = PlannedStep(
    command="dbt source freshness", args=("source", "freshness"), optional=True
)
DOCS_GENERATE_STEP = PlannedStep(command="dbt docs generate", args=("docs", "generate"), optional=True)


def invoke_name(command: str) -> str:
    """The name of a step that invokes dbt: ``Invoke dbt with `dbt build` ``."""
    return f"Invoke dbt with `{command}`"


def profile_step_name(schema_override: str | None = None) -> str:
    """``Create profile from connection DuckDB``, suffixed as dbt Cloud does with a schema override."""
    name = f"Create profile from connection {CONNECTION_TYPE}"
    return f"{name} (override schema to '{schema_override}')" if schema_override else name


def step_name(step: PlannedStep, schema_override: str | None = None) -> str:
    """The name a run step gets for ``step`` (what the API shows as ``run_steps[].name``)."""
    if step.kind == CLONE:
        return CLONE_STEP_NAME
    if step.kind == PROFILE:
        return profile_step_name(schema_override)
    return invoke_name(step.command)


def with_built_in_steps(plan: Sequence[PlannedStep]) -> tuple[PlannedStep, ...]:
    """``plan`` starting with the built-in steps. A plan stored before they existed (a run queued by an
    older server) lacks them; it gets them, so that it runs and is numbered like any other."""
    if plan and plan[0].kind == CLONE:
        return tuple(plan)
    return (*BUILT_IN_STEPS, *plan)
