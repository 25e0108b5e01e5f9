{#- Demo failure switches, driven by environment variables so that a dbt Cloud job (or a test) can
    make a run fail without editing the project. Both take a comma-separated list of names; a name is
    either `node_name` (any package) or `package.node_name` (exactly one package); a model version
    is `name.v1` (only that version) while `name` fails every version. -#}

{% macro _requested_names(env_var_name) -%}
  {%- set raw = env_var(env_var_name, '') -%}
  {{- return(raw.replace(' ', '').split(',') | reject('equalto', '') | list) -}}
{%- endmacro %}

{% macro _is_requested(env_var_name, node) -%}
  {%- set names = _requested_names(env_var_name) -%}
  {%- set node_names = [node.name, node.package_name ~ '.' ~ node.name] -%}
  {%- if node.version is not none -%}
    {%- do node_names.extend([node.name ~ '.v' ~ node.version, node.package_name ~ '.' ~ node.name ~ '.v' ~ node.version]) -%}
  {%- endif -%}
  {{- return(node_names | select('in', names) | list | length > 0) -}}
{%- endmacro %}

{#- DBT_FAIL_MODEL: used as a project-wide pre-hook on models, seeds and snapshots. -#}
{% macro fail_if_requested() -%}
  {%- if execute and _is_requested('DBT_FAIL_MODEL', model) -%}
    select error('DBT_FAIL_MODEL asked {{ model.package_name }}.{{ model.name }} to fail (demo failure switch)')
  {%- endif -%}
{%- endmacro %}

{#- DBT_FAIL_TEST: every data test's query goes through get_test_sql; a requested test gets one
    failing row instead of its real query, so it fails with "Got 1 result". -#}
{% macro default__get_test_sql(main_sql, fail_calc, warn_if, error_if, limit) -%}
  {%- if _is_requested('DBT_FAIL_TEST', model) -%}
    {%- set main_sql = "select 'DBT_FAIL_TEST asked this test to fail (demo failure switch)' as reason" -%}
  {%- endif -%}
  {{ dbt.default__get_test_sql(main_sql, fail_calc, warn_if, error_if, limit) }}
{%- endmacro %}
