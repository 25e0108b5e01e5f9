"""The image's test suite (``astro dev pytest`` runs ``pytest tests/`` in the built image).

Everything under ``tests/`` runs with only what the Astro image holds: the project's folders, Airflow
and ``requirements.txt``, no services, no network. Suites that need the local dbt Cloud, dbt Core or
the no-Docker stack live in ``local/tests/``; ``test_image_suite.py`` keeps local-only imports out.
"""

from tests.airflow_test_env import airflow_db  # noqa: F401  (session fixture; importing sets up Airflow)
