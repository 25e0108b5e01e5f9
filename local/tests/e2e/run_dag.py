"""Execute DAG runs in their own process: ``dag.test()`` for a new run, or resume a cleared one.

A fresh process per run matters: the provider's async hook (aiohttp, in the in-process triggerer)
reads SSL_CERT_FILE when first imported, so trust settings must be in the environment from the start,
exactly as they are for a real triggerer. Overrides only change timing (retry delay, timeouts) so a
test does not wait minutes; what the tasks do is the DAG file's.

``dag.test()`` always starts a brand-new DAG run (it deletes any run at that logical date), so it
cannot show what happens when a user clears a task. ``--resume`` plays the scheduler's part instead:
after ``airflow tasks clear``, it schedules and runs the cleared task instances of the *existing* DAG
run, each try numbered as the scheduler numbers it, deferrals handled by an in-process triggerer.
``--run-id`` does the same for a run something else queued (the webhook receiver, which only creates
the DAG run in the metadata DB; in a deployment the scheduler then runs it).

``--clear TASK_ID`` (repeatable) clears those exact task ids with their downstream in ONE call, the way
the UI's Clear (and the REST API's ``clearTaskInstances``) does: relevant setup tasks and their
teardowns are cleared along, and the DAG run's ``clear_number`` goes up by one. ``airflow tasks clear
-t`` matches task ids as substrings in 3.3.2 (``customers`` would also clear ``customers_snapshot``).

    python local/tests/e2e/run_dag.py DAG_ID LOGICAL_DATE [--resume] [--set TASK.ATTR=SECONDS] [--conf JSON]
    python local/tests/e2e/run_dag.py DAG_ID LOGICAL_DATE --clear TASK_ID [--clear TASK_ID ...]
    python local/tests/e2e/run_dag.py DAG_ID --run-id RUN_ID
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time

TIMEDELTA_ATTRIBUTES = {"retry_delay", "execution_timeout"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dag_id")
    parser.add_argument("logical_date", type=dt.datetime.fromisoformat, nargs="?")
    parser.add_argument("--resume", action="store_true", help="run the cleared tasks of the existing run")
    parser.add_argument("--run-id", help="run the tasks of this existing (queued) DAG run")
    parser.add_argument("--set", action="append", default=[], help="TASK_ID.ATTRIBUTE=NUMBER")
    parser.add_argument("--conf", type=json.loads, default=None, help="DAG run conf (params), as JSON")
    parser.add_argument("--clear", action="append", default=[], help="clear TASK_ID with its downstream")
    args = parser.parse_args()

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag().get_dag(args.dag_id)
    for assignment in args.set:
        target, value = assignment.split("=", 1)
        task_id, attribute = target.rsplit(".", 1)
        number = float(value)
        converted = dt.timedelta(seconds=number) if attribute in TIMEDELTA_ATTRIBUTES else int(number)
        setattr(dag.get_task(task_id), attribute, converted)
    if args.clear:
        cleared = clear_with_downstream(dag, args.logical_date.replace(tzinfo=dt.UTC), args.clear)
        print("CLEARED " + json.dumps(cleared))
        return 0
    if args.run_id:
        dag_run = drive_existing_run(dag, run_id=args.run_id)
    elif args.resume:
        dag_run = drive_existing_run(dag, logical_date=args.logical_date.replace(tzinfo=dt.UTC))
    else:
        logical_date = args.logical_date.replace(tzinfo=dt.UTC)
        dag_run = dag.test(logical_date=logical_date, run_conf=args.conf)
    print("DAG_RUN_RESULT " + json.dumps({"run_id": dag_run.run_id, "state": str(dag_run.state)}))
    return 0


def drive_existing_run(dag, *, logical_date: dt.datetime | None = None, run_id: str | None = None):
    """Run the schedulable task instances of an existing DAG run (by logical date or run id) until it
    finishes, as the scheduler would."""
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    with create_session() as session:
        which = DagRun.run_id == run_id if run_id else DagRun.logical_date == logical_date
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, which))
        if dag_run is None:
            raise SystemExit(f"No run of {dag.dag_id} at {run_id or logical_date}: nothing to run")
        dag_run.dag = scheduler_dag
        while dag_run.state in (DagRunState.RUNNING, DagRunState.QUEUED):
            dag_run.state = DagRunState.RUNNING
            session.expire_all()
            schedulable, _ = dag_run.update_state(session=session)
            for ti in schedulable:
                if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                    ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            scheduled = [
                ti
                for ti in dag_run.get_task_instances(session=session)
                if ti.state == TaskInstanceState.SCHEDULED
            ]
            for ti in scheduled:
                try:
                    _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
                except Exception as exc:  # the task's own failure handling already ran
                    print(f"task {ti.task_id} failed: {exc}", file=sys.stderr)
            if not scheduled:
                time.sleep(1)
        return dag_run


def clear_with_downstream(dag, logical_date: dt.datetime, task_ids: list[str]) -> list[str]:
    """Clear ``task_ids`` and their downstream in one call, as the REST API's clearTaskInstances does
    (``include_downstream``, ``reset_dag_runs``); return the cleared task ids."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import clear_task_instances, find_relevant_relatives
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    with create_session() as session:
        dag_run = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.logical_date == logical_date)
        )
        if dag_run is None:
            raise SystemExit(f"No run of {dag.dag_id} at {logical_date}: nothing to clear")
        ids = set(task_ids)
        relatives = find_relevant_relatives(
            ids, set(), direction="downstream", dag=scheduler_dag, run_id=dag_run.run_id, session=session
        )
        ids.update(task for task in relatives if not isinstance(task, tuple))
        tis = scheduler_dag.clear(dry_run=True, task_ids=sorted(ids), run_id=dag_run.run_id, session=session)
        clear_task_instances(list(tis), session, DagRunState.QUEUED)
        session.commit()
        return sorted(ti.task_id for ti in tis)


if __name__ == "__main__":
    sys.exit(main())
