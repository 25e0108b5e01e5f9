"""
The dbt Cloud API v2/v3, as dbt Cloud's official specs describe it, one router per resource, laid out
like FastAPI's "bigger applications":

* ``accounts``, ``projects``, ``environments``, ``environment_variables``, ``connections``
  (connections, credentials, profiles), ``repositories``, ``users``, ``jobs``, ``runs``, ``steps`` (run
  steps and artifacts), ``webhook_subscriptions``: the routes served; ``unsupported``: the one table of
  the specs' other routes, each refused on purpose with its reason; ``local``: the server's own
  ``/_local/*`` routes;
* ``dependencies``: what routes declare with ``Depends``: the server context, the token (401), the
  account (403/404) and the objects a path names (404);
* ``body`` and ``requests``: the request body read and checked, then validated into a declared request
  model by the shared field rules; ``query``: query parameters as clients encode them;
* ``serializers`` and ``envelopes``: responses shaped as dbt Cloud's; ``errors``: every error in its
  status envelope.

Every input is checked before anything is written or a run is queued, and every refusal is a 4xx in
dbt Cloud's status envelope that names the field. Route handlers that touch SQLite or files are plain
``def`` functions, which FastAPI runs in its thread pool, so the event loop stays free.
"""
