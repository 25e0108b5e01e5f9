"""Everything the DAGs use to talk to dbt Cloud, one module per role.

- ``hook``: the one connection and account, and a hook that retries transient API errors;
- ``operator``: the dbt task that resumes the run it launched when it runs again;
- ``rerun``: reading a failed run's steps and artifacts, planning the exact rerun, triggering it once;
- ``results``: what a run did, node by node, and the results table in the task log;
- ``assets``: one Airflow asset event per model, seed and snapshot a run built;
- ``webhooks``: the receiver of dbt Cloud's job webhooks, mounted on Airflow's api-server.

The artifacts-to-command logic itself (no Airflow, no network) is ``include.rerun_parser``.
"""
