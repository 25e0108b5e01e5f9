#!/usr/bin/env bash
# Entry point of the `dbt-cloud-local` service in docker-compose.override.yml.
#
# The service runs from the Astro Runtime image that the project's Dockerfile starts from, so
# `astro dev start` has nothing to build for it. What the image lacks comes at first start:
#   1. The shared volumes are handed to the image's `astro` user (a fresh named volume is owned by
#      root, and the Airflow tasks, which run as `astro`, write the warehouse in it too).
#   2. The local dbt Cloud's virtualenv (dbt Core, dbt-duckdb and the server's few packages) is
#      installed from constraints/dbt.lock into its own named volume, and reinstalled only when the
#      lock or the image's Python changes. dbt never touches the Airflow image.
#   3. The server starts as `astro`: HTTPS on 8443, state and TLS files in named volumes.
# It runs as root for steps 1 and 2 only; `runuser` drops to `astro` for the server.
set -euo pipefail

: "${DBT_CLOUD_LOCAL_VENV:=/opt/dbt-cloud-local/venv}"
: "${DBT_CLOUD_LOCAL_DATA_DIR:=/opt/dbt-cloud-local/data}"
: "${DBT_CLOUD_LOCAL_LOCK:=/usr/local/airflow/constraints/dbt.lock}"
: "${DBT_CLOUD_LOCAL_USER:=astro}"
: "${ELTML_DATA_DIR:=/usr/local/airflow/.state/data}"

log() { echo "dbt-cloud-local: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "must start as root to prepare its volumes (the compose service sets user: root); it drops to" \
        "'$DBT_CLOUD_LOCAL_USER' for the server"
    exit 2
fi
if [ ! -r "$DBT_CLOUD_LOCAL_LOCK" ]; then
    log "no lock file at $DBT_CLOUD_LOCAL_LOCK: mount ./constraints/dbt.lock there (see docker-compose.override.yml)"
    exit 2
fi

mkdir -p "$DBT_CLOUD_LOCAL_DATA_DIR/tls" "$ELTML_DATA_DIR"
chown "$DBT_CLOUD_LOCAL_USER" "$DBT_CLOUD_LOCAL_DATA_DIR" "$DBT_CLOUD_LOCAL_DATA_DIR/tls" "$ELTML_DATA_DIR"

python=$(command -v python3 || command -v python)
wanted="$(sha256sum "$DBT_CLOUD_LOCAL_LOCK" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version)' | head -n1)"
stamp="$DBT_CLOUD_LOCAL_VENV/.installed-from"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    log "installing dbt and the server into $DBT_CLOUD_LOCAL_VENV from $(basename "$DBT_CLOUD_LOCAL_LOCK")" \
        "(first start, or the lock changed; about a minute)"
    "$python" -m venv --clear "$DBT_CLOUD_LOCAL_VENV"
    # Not the Airflow image's constraints (PIP_CONSTRAINT): this venv has its own lock.
    env -u PIP_CONSTRAINT "$DBT_CLOUD_LOCAL_VENV/bin/python" -m pip install --quiet --no-cache-dir \
        --disable-pip-version-check --no-deps --requirement "$DBT_CLOUD_LOCAL_LOCK"
    echo "$wanted" > "$stamp"
fi

# Every run's dbt subprocess finds the venv's dbt; the package itself is mounted from ./local.
export DBT_CLOUD_LOCAL_DBT_EXECUTABLE="$DBT_CLOUD_LOCAL_VENV/bin/dbt"
export PYTHONPATH="/usr/local/airflow/local"
HOME=$(getent passwd "$DBT_CLOUD_LOCAL_USER" | cut -d: -f6)
export HOME
exec runuser -u "$DBT_CLOUD_LOCAL_USER" -- "$DBT_CLOUD_LOCAL_VENV/bin/python" -m dbt_cloud_local serve \
    --host 0.0.0.0 --port 8443 --data-dir "$DBT_CLOUD_LOCAL_DATA_DIR" "$@"
