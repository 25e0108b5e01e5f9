# Astro Runtime 3.3-8 carries Apache Airflow 3.3.2. Its ONBUILD steps install packages.txt and
# requirements.txt and copy this project to /usr/local/airflow (on PYTHONPATH: `import include.…`).
# Nothing else goes in: the deployed image holds only what the DAGs need at run time. dbt and the
# local dbt Cloud never enter it (see docker-compose.override.yml and .dockerignore).
FROM astrocrpublic.azurecr.io/runtime:3.3-8
