"""Task logic of the ``dbt_cloud_provider_eltml`` DAG: extract, load and the ML step.

The DAG file only wires these functions into tasks, so each can be tested and reused on its own.
"""
