"""
A tiny dbt project that honours the demo project's contract, for tests that must not depend on it.

Contract (same as ``demo_dbt_project/``): project ``jaffle_shop``; ``profiles.yml`` in the project dir;
DuckDB path from ``DBT_DUCKDB_PATH``; reads ``raw.customers``/``raw.orders``/``raw.payments``;
``DBT_FAIL_MODEL=<model>`` makes that model fail at run time so downstream nodes are skipped; tags
``hourly``/``daily``. Raw tables come from seeds here (``dbt seed``), so a test needs nothing but dbt.
It adds ``slow_model`` (tag ``slow``), a Python model that sleeps ``DBT_SLOW_SECONDS``: a run that is
reliably in flight, for cancel, reuse and restart tests. Its source ``raw.payments`` declares a freshness
check on a column it lacks, so ``dbt source freshness`` always fails: how a run of a job with dbt
Cloud's source freshness checkbox shows that step failing without failing the run.
"""

from __future__ import annotations

from pathlib import Path

FILES = {
    "dbt_project.yml": """
name: jaffle_shop
version: "1.0.0"
config-version: 2
profile: jaffle_shop
model-paths: [models]
seed-paths: [seeds]
macro-paths: [macros]
models:
  jaffle_shop:
    +materialized: table
seeds:
  jaffle_shop:
    +schema: raw
""",
    "profiles.yml": """
jaffle_shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('DBT_DUCKDB_PATH') }}"
      schema: main
      threads: 2
""",
    "macros/generate_schema_name.sql": """
{% macro generate_schema_name(custom_schema_name, node) -%}
  {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
""",
    "macros/fail_if_requested.sql": """
{% macro fail_if_requested() %}
  {% if execute and env_var('DBT_FAIL_MODEL', '') == model.name %}
    {{ exceptions.raise_compiler_error("DBT_FAIL_MODEL asked model " ~ model.name ~ " to fail") }}
  {% endif %}
{% endmacro %}
""",
    "seeds/raw_customers.csv": "id,first_name\n1,Ada\n2,Grace\n3,Linus\n",
    "seeds/raw_orders.csv": "id,user_id,order_date,status\n1,1,2024-01-01,placed\n2,2,2024-01-02,shipped\n"
    "3,1,2024-01-03,completed\n",
    "seeds/raw_payments.csv": "id,order_id,amount\n1,1,1000\n2,2,2500\n3,3,700\n",
    "seeds/seeds.yml": """
version: 2
seeds:
  - name: raw_customers
    config: {alias: customers}
  - name: raw_orders
    config: {alias: orders}
  - name: raw_payments
    config: {alias: payments}
""",
    "models/sources.yml": """
version: 2
sources:
  - name: raw
    schema: raw
    tables:
      - {name: customers}
      - {name: orders}
      - name: payments
        loaded_at_field: _loaded_at
        config:
          freshness: {warn_after: {count: 1, period: day}}
models:
  - name: stg_orders
    columns:
      - name: order_id
        data_tests: [not_null]
""",
    "models/stg_customers.sql": """
{{ config(tags=["hourly"]) }}
{{ fail_if_requested() }}
select id as customer_id, first_name from {{ source('raw', 'customers') }}
""",
    "models/stg_orders.sql": """
{{ config(tags=["hourly"]) }}
{{ fail_if_requested() }}
select id as order_id, user_id as customer_id, order_date, status from {{ source('raw', 'orders') }}
""",
    "models/stg_payments.sql": """
{{ config(tags=["hourly"]) }}
{{ fail_if_requested() }}
select id as payment_id, order_id, amount / 100.0 as amount from {{ source('raw', 'payments') }}
""",
    "models/customers.sql": """
{{ config(tags=["daily"]) }}
{{ fail_if_requested() }}
select c.customer_id, c.first_name, count(o.order_id) as number_of_orders
from {{ ref('stg_customers') }} c left join {{ ref('stg_orders') }} o using (customer_id)
group by 1, 2
""",
    "models/orders.sql": """
{{ config(tags=["daily"]) }}
{{ fail_if_requested() }}
select o.order_id, o.customer_id, sum(p.amount) as amount
from {{ ref('stg_orders') }} o left join {{ ref('stg_payments') }} p using (order_id)
group by 1, 2
""",
    "models/slow_model.py": """
import os
import time


def model(dbt, session):
    dbt.config(materialized="table", tags=["slow"])
    time.sleep(float(os.environ.get("DBT_SLOW_SECONDS", "0")))
    return session.sql("select 1 as id")
""",
}


def write_tiny_project(path: Path) -> Path:
    for relative, content in FILES.items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content.lstrip("\n"))
    return path
