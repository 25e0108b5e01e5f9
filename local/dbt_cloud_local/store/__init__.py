"""
Durable state in SQLite. ``sqlite`` reaches the database (schema, connections, the write lock); each
table has its rows module (``run_rows``: runs and steps, ``job_rows``, ``env_var_rows``,
``subscription_rows``), all of them in ``database.Store``. On top of the rows: ``jobs``, the job
repository every part reads jobs from (declared and API-created), and ``env_vars``, project environment
variables by dbt Cloud's scopes.
"""
