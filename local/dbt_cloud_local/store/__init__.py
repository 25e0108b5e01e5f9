"""
Durable state in SQLite: ``database`` holds the tables (runs, steps, jobs, environment variables,
webhook subscriptions); ``jobs`` is the job repository every part reads jobs from (declared and
API-created); ``env_vars`` reads and writes project environment variables by dbt Cloud's scopes.
"""
