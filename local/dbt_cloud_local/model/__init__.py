"""
What the local dbt Cloud is about, free of where it comes from or goes: the resources an account holds
(accounts, projects, environments, jobs), a job's definition and its defaults, run statuses and
records, the dbt commands a step may run, environment variable rules, and the field rules every input
is checked by.

Nothing here reads the config file, the database or the network; every other part builds on it.
"""
