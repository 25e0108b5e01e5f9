"""Refresh a job's stored manifest from its latest successful run, through the dbt Cloud API v2.

    python -m include.dbt_cloud.manifest_refresh --account-id 1 --job-id 1 \\
        --out include/dbt_manifests/eltml_build.json

``make dbt-manifest`` runs it against the local dbt Cloud of ``make up`` (or ``make demo``'s state);
the same command refreshes it from dbt Cloud: set ``DBT_BASE_URL`` (your host, e.g.
``https://cloud.getdbt.com`` or ``https://ab123.us1.dbt.com``) and ``DBT_API_KEY`` (a service token
that can read runs and artifacts), as ``make jobs-plan`` does. In CI, ``--check`` writes nothing and
exits 1 when the stored file no longer matches the job (nodes or tests added or removed, other steps
or flags), so a job whose models changed in dbt Cloud cannot ship with a stale graph. A refresh that
finds the same graph in a newer run leaves the file as it is (no diff to commit).

It reads: the job (name, steps), its newest successful run that ran the job as configured
(``runs/?job_definition_id=…&status=10&order_by=-id``, skipping partial reruns: a ``steps_override``
or a retry of another run), that run's steps, and for each step that invoked a dbt command
building or testing nodes (by name, ``Invoke dbt with `dbt build` ``: dbt Cloud's own clone, profile
and ``dbt deps`` steps are skipped) its ``run_results.json``, then the last such step's
``manifest.json``. The run's run_results are the job's selection (dbt selectors can only be evaluated
by dbt); the manifest is pruned (``include.dbt_cloud.job_manifest``). Nothing secret is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import requests

from include.dbt_cloud.job_manifest import (
    build_stored_document,
    is_node_step,
    same_graph,
    write_stored_document,
)

DEFAULT_BASE_URL = "https://cloud.getdbt.com"
SUCCESS = 10
#: How many of the job's latest successful runs are searched for one that ran the job as configured.
RUNS_SCANNED = 100


class RefreshError(RuntimeError):
    """What stopped the refresh, with what to do."""


class DbtCloudReader:
    """The handful of API v2 GETs the refresh needs (plain requests: no Airflow connection needed)."""

    def __init__(self, base_url: str, token: str, account_id: int, timeout: float = 60) -> None:
        self.base = f"{base_url.rstrip('/')}/api/v2/accounts/{account_id}"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})
        self.timeout = timeout

    def get(self, path: str, **params: Any) -> Any:
        url = f"{self.base}/{path}"
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise RefreshError(f"GET {url} failed: {error}") from None
        if response.status_code in (401, 403):
            raise RefreshError(
                f"GET {url} answered {response.status_code}: check DBT_API_KEY (a service token that "
                "can read this account's jobs, runs and artifacts)"
            )
        if response.status_code >= 400:
            raise RefreshError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
        return response.json()


def partial_run_reason(run: dict[str, Any]) -> str | None:
    """Why a run did not run the job as configured (so its nodes are not the job's selection), or None.

    Reruns of part of a job succeed too: a models-as-tasks launcher's or the rerun parser's
    ``steps_override``, dbt Cloud's retry of a failed run (``retrying_run_id``, ``dbt retry``).
    """
    trigger = run.get("trigger") or {}
    if trigger.get("steps_override"):
        return "ran a steps_override (" + "; ".join(trigger["steps_override"])[:120] + ")"
    if run.get("retrying_run_id"):
        return f"retried run {run['retrying_run_id']}"
    return None


def refresh(
    reader: DbtCloudReader, account_id: int, job_id: int, run_id: int | None = None
) -> dict[str, Any]:
    """The stored document of ``job_id`` from its latest full successful run (or ``run_id``)."""
    job = reader.get(f"jobs/{job_id}/")["data"]
    if run_id is None:
        runs = reader.get(
            "runs/",
            job_definition_id=job_id,
            status=SUCCESS,
            order_by="-id",
            limit=RUNS_SCANNED,
            include_related='["trigger"]',
        )["data"]
        full = next((run for run in runs if partial_run_reason(run) is None), None)
        if full is None:
            found = (
                f"{len(runs)} successful run(s), each a partial rerun" if runs else "no successful run yet"
            )
            raise RefreshError(
                f"job {job_id} ({job.get('name')}) has {found} among its latest {RUNS_SCANNED}: trigger it "
                "once as configured (e.g. `make demo`, or Run now in dbt Cloud), then refresh"
            )
        run_id = int(full["id"])
    run = reader.get(f"runs/{run_id}/", include_related='["run_steps","trigger"]')["data"]
    if run.get("job_definition_id") not in (None, job_id):
        raise RefreshError(f"run {run_id} belongs to job {run.get('job_definition_id')}, not {job_id}")
    if run["status"] != SUCCESS:
        raise RefreshError(
            f"run {run_id} did not succeed ({run.get('status_humanized')}): pick a successful one"
        )
    if (reason := partial_run_reason(run)) is not None:
        raise RefreshError(f"run {run_id} {reason}: its nodes are not the job's selection; pick a full run")
    steps = [
        (step["index"], step["name"])
        for step in run.get("run_steps") or []
        if is_node_step(step.get("name") or "")
    ]
    if not steps:
        raise RefreshError(f"run {run_id} has no step that invoked a dbt command building nodes")
    results = [
        (index, name, reader.get(f"runs/{run_id}/artifacts/run_results.json", step=index))
        for index, name in steps
    ]
    manifest = reader.get(f"runs/{run_id}/artifacts/manifest.json", step=steps[-1][0])
    return build_stored_document(
        job=job, run=run, manifest=manifest, step_run_results=results, account_id=account_id
    )


def _previous(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def describe_changes(previous: dict[str, Any] | None, document: dict[str, Any]) -> str:
    """What a refresh changes, in a line: nodes and tests added or removed, or other changes."""
    if previous is None:
        return "created"

    def executed(doc: dict[str, Any]) -> set[str]:
        return {uid for step in doc.get("steps") or [] for uid in step.get("executed") or []}

    before, after = executed(previous), executed(document)
    parts = []
    if added := sorted(after - before):
        parts.append(f"{len(added)} node(s)/test(s) added (e.g. {added[0]})")
    if removed := sorted(before - after):
        parts.append(f"{len(removed)} removed (e.g. {removed[0]})")
    return "updated: " + ("; ".join(parts) or "the job's steps, flags or manifest changed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.dbt_cloud.manifest_refresh", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--account-id", type=int, default=int(os.environ.get("DBT_ACCOUNT_ID") or 1))
    parser.add_argument("--job-id", type=int, required=True)
    parser.add_argument("--run-id", type=int, help="a successful run to read (default: the job's latest)")
    parser.add_argument("--out", type=Path, required=True, help="the stored manifest to write")
    parser.add_argument("--base-url", default=os.environ.get("DBT_BASE_URL") or DEFAULT_BASE_URL)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the file is stale (for CI)"
    )
    args = parser.parse_args(argv)
    token = os.environ.get("DBT_API_KEY", "").strip()
    if not token:
        print(
            "Set DBT_API_KEY to a dbt Cloud service token (make dbt-manifest sets the local one).",
            file=sys.stderr,
        )
        return 2
    reader = DbtCloudReader(args.base_url, token, args.account_id)
    try:
        document = refresh(reader, args.account_id, args.job_id, args.run_id)
    except RefreshError as error:
        print(f"dbt-manifest: {error}", file=sys.stderr)
        return 1
    previous = _previous(args.out)
    executed = {uid for step in document["steps"] for uid in step["executed"]}
    built = sum(uid.split(".", 1)[0] in ("model", "seed", "snapshot") for uid in executed)
    source = document["source_run"]
    what = (
        f"job {args.job_id} ({document['job']['name']}), run {source['id']} of {source['finished_at']}: "
        f"{built} models/seeds/snapshots, {len(executed) - built} tests, {len(document['steps'])} dbt step(s)"
    )
    if previous is not None and same_graph(previous, document):
        print(f"{args.out}: unchanged ({what}).")
        return 0
    changes = describe_changes(previous, document)
    if args.check:
        print(
            f"{args.out} is stale: {changes}. Refresh it with `make dbt-manifest` and commit it.",
            file=sys.stderr,
        )
        return 1
    path = write_stored_document(document, args.out)
    print(f"{path}: {changes} ({what}; {path.stat().st_size // 1024} KiB).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
