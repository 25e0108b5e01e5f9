"""CLI: ``python -m include.rerun_parser RUN_RESULTS_JSON [--manifest MANIFEST_JSON] ...``.

Prints the dbt command that reruns exactly what ``dbt retry`` would, one command per line, shell-quoted.
Exit codes: 0 with a command on stdout; 0 with nothing on stdout and the reason on stderr when nothing
needs rerunning (a retry of a green run is not an error: the caller simply runs nothing); 2 for bad
usage or bad/mismatched artifacts, with the file and the problem on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from include.rerun_parser.artifacts import load_manifest, load_run_results
from include.rerun_parser.errors import RerunParserError
from include.rerun_parser.plan import NothingToRerun, plan_step_rerun
from include.rerun_parser.retry_set import DBT_RETRY_STATUSES

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m include.rerun_parser",
        description="Print the dbt command that reruns exactly the nodes `dbt retry` would rerun.",
    )
    parser.add_argument("run_results", metavar="RUN_RESULTS_JSON", help="run_results.json of the failed step")
    parser.add_argument(
        "--manifest",
        metavar="MANIFEST_JSON",
        help="manifest.json of the same step: makes selectors exact (fqn-based); without it, "
        "package- and type-qualified names are used and a warning is printed",
    )
    parser.add_argument(
        "--statuses",
        nargs="+",
        metavar="STATUS",
        help=f"statuses to rerun (default, as dbt retry: {', '.join(sorted(DBT_RETRY_STATUSES))})",
    )
    parser.add_argument(
        "--include-warn",
        action="store_true",
        help="also rerun 'warn' results, and run with --warn-error (as `dbt retry --warn-error`)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        run_results = load_run_results(options.run_results)
        manifest = load_manifest(options.manifest) if options.manifest else None
        plan = plan_step_rerun(
            run_results, manifest, statuses=options.statuses, warn_error=options.include_warn
        )
    except RerunParserError as error:
        print(f"rerun_parser: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if isinstance(plan, NothingToRerun):
        print(f"rerun_parser: nothing to rerun: {plan.reason}", file=sys.stderr)
        return 0
    if not plan.exact:
        print(
            "rerun_parser: warning: no --manifest, so selectors are name+package+type; they can "
            "over-select where a folder shares a node's name",
            file=sys.stderr,
        )
    print(plan.command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
