"""Rerun exactly what failed in a dbt step, with parity to ``dbt retry``, as a plain dbt command.

Why not just call ``dbt retry``? On dbt Cloud (and anywhere the target folder of the failed run is
gone) there is no previous run_results.json next to the project; the artifacts come from an API. This
package turns those artifacts into an explicit ``dbt <cmd> --select <exact nodes> --indirect-selection
empty <replayed flags>`` that selects the same nodes retry would.

With a manifest that has its graph (``child_map``), the command is the shortest one proven exact:
``fqn:<failed node>+`` for what failed and everything skipped below it, intersected with the original
``tag:`` selection or minus ``--exclude`` nodes where that is what retry reruns (``compact.py``); the
one-selector-per-node form stays available as ``StepRerun.enumerated_command``.

    plan = plan_step_rerun(load_run_results(path), load_manifest(manifest_path))
"""

from include.rerun_parser.artifacts import (
    Manifest,
    ManifestNode,
    NodeResult,
    RunResults,
    load_manifest,
    load_run_results,
    parse_manifest,
    parse_run_results,
)
from include.rerun_parser.errors import (
    AmbiguousSelectionError,
    ArtifactError,
    MismatchedArtifactsError,
    RerunParserError,
    UnsupportedCommandError,
)
from include.rerun_parser.plan import (
    DbtCommand,
    ExactSelection,
    JobRerun,
    JobStep,
    NothingToRerun,
    StepRerun,
    plan_job_rerun,
    plan_step_rerun,
    select_exactly,
)
from include.rerun_parser.retry_set import DBT_RETRY_STATUSES

__all__ = [
    "DBT_RETRY_STATUSES",
    "AmbiguousSelectionError",
    "ArtifactError",
    "DbtCommand",
    "ExactSelection",
    "JobRerun",
    "JobStep",
    "Manifest",
    "ManifestNode",
    "MismatchedArtifactsError",
    "NodeResult",
    "NothingToRerun",
    "RerunParserError",
    "RunResults",
    "StepRerun",
    "UnsupportedCommandError",
    "load_manifest",
    "load_run_results",
    "parse_manifest",
    "parse_run_results",
    "plan_job_rerun",
    "plan_step_rerun",
    "select_exactly",
]
