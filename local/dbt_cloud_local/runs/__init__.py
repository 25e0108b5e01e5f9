"""
The run engine: queue runs, start them when the rules allow, execute them with real dbt Core in an
isolated working copy, and end them cleanly on cancel, timeout, shutdown or crash. ``manager`` is the
entry point (``RunManager``); its docstring lists the other modules.
"""
