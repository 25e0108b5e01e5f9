"""
Plain HTML pages for a browser on the developer's machine: the run page every run's ``href`` points at
and an index of recent runs (``routes``), with the run's nodes as a table and a DAG picture
(``nodes``). They build on the API's serializers and dependencies, and need no token.
"""
