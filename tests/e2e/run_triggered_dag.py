"""Execute a DAG run that something else created (here: the webhook receiver), as the scheduler would.

The receiver only queues a DAG run in the metadata DB; in a deployment the scheduler then runs its
tasks. Tests have no scheduler, so this plays its part for that one run: schedule what is ready, run
each task instance for real (``_run_task``, as ``dag.test()`` does: the task's outlet events are
registered by Airflow's execution API), until the run finishes.

    python -m tests.e2e.run_triggered_dag DAG_ID RUN_ID
"""

from __future__ import annotations

import json
import sys
import time


def main() -> int:
    dag_id, run_id = sys.argv[1:3]
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    dag = DagBag().get_dag(dag_id)
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    deadline = time.monotonic() + 300
    with create_session() as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dag_run is None:
            raise SystemExit(f"No run {run_id} of {dag_id}")
        dag_run.dag = scheduler_dag
        while dag_run.state in (DagRunState.RUNNING, DagRunState.QUEUED) and time.monotonic() < deadline:
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
        print("DAG_RUN_RESULT " + json.dumps({"run_id": dag_run.run_id, "state": str(dag_run.state)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
