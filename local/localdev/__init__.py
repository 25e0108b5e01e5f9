"""Running this Astro project without Docker: the demo runner, the local Airflow stack and the
seeding of airflow_settings.yaml, all from the project's virtualenv (see the Makefile)."""
