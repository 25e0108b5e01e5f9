"""Everything the DAGs use to talk to dbt Cloud, one module per role.

- ``hook``: the one connection and account, and a hook that retries transient API errors;
- ``operator``: the dbt task that resumes the run it launched when it runs again;
- ``rerun``: reading a failed run's steps and artifacts, planning the exact rerun, triggering it once;
- ``results``: what a run did, node by node, and the results table in the task log;
- ``assets``: one Airflow asset event per model, seed and snapshot a run built;
- ``webhooks``: the receiver of dbt Cloud's job webhooks, mounted on Airflow's api-server.

Every node of a job as an Airflow task, one dbt Cloud run (docs/models-as-tasks.md):

- ``job_manifest``: the job's manifest stored in the project (what a DAG parses, never the network);
  ``manifest_refresh``: refreshing it from the job's latest successful run (``make dbt-manifest``);
- ``job_graph``: which nodes become tasks, wired how, with which tests folded in; the exact rerun;
- ``task_group``: the task group (launcher, node tasks, finalize); ``launcher``: its setup task, the
  only one that starts a run; ``node_task``: a node's task; ``node_trigger``: the trigger they share
  one poller per run through; ``node_outcomes``: how each node task ends.

The artifacts-to-command logic itself (no Airflow, no network) is ``include.rerun_parser``.
"""
