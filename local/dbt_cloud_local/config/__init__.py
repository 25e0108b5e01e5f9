"""
The local dbt Cloud's configuration: ``settings`` (what a loaded config holds), ``loader`` (reading and
validating config.yml), ``keys`` (the keys it may hold), ``jobs_as_code`` (the dbt-jobs-as-code file it
may name) and ``serving`` (what only a serving server needs checked). The objects it declares are the
model's (:mod:`dbt_cloud_local.model.resources`).
"""
