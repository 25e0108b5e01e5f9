# Astro Runtime 3.3-8 carries Apache Airflow 3.3.2. Its ONBUILD steps install packages.txt and
# requirements.txt and copy this project to /usr/local/airflow (on PYTHONPATH: `import include.…`).
FROM astrocrpublic.azurecr.io/runtime:3.3-8

# dbt Core gets its own virtualenv so its pins never fight Airflow's. Only the local dbt Cloud
# service (docker-compose.override.yml) runs it; Airflow itself talks to dbt Cloud over HTTPS.
RUN python -m venv /usr/local/airflow/dbt_venv \
    && /usr/local/airflow/dbt_venv/bin/pip install --no-cache-dir -r /usr/local/airflow/requirements-dbt.txt
ENV DBT_CLOUD_LOCAL_DBT_EXECUTABLE=/usr/local/airflow/dbt_venv/bin/dbt
# The local dbt Cloud's state and TLS folders, created as the image's user so that the named volumes
# docker-compose.override.yml mounts on them start writable (Docker copies this ownership into them).
RUN mkdir -p /usr/local/airflow/.dbt-cloud-local/tls
