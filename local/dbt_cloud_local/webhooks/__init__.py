"""
Outbound webhooks, as dbt Cloud sends them: ``job.run.started``, ``job.run.completed``, ``job.run.errored``.

What a receiver sees is what dbt Cloud documents ("Webhooks for your jobs"):

* a ``POST`` of a JSON body ``{accountId, webhooksID, eventId, timestamp, eventType, webhookName,
  data: {jobId, jobName, runId, environmentId, environmentName, dbtVersion, projectName, projectId,
  runStatus, runStatusCode, runStatusMessage, runReason, runStartedAt, runFinishedAt | runErroredAt}}``
  (ids in ``data`` are strings, as dbt Cloud sends them);
* an ``Authorization`` header holding the hex HMAC-SHA256 of the raw body, keyed with the
  subscription's ``hmac_secret`` (no scheme prefix);
* a 10 second timeout per attempt; an attempt that does not answer 2xx is retried up to 5 times with
  growing delays (``DBT_CLOUD_LOCAL_WEBHOOK_RETRY_DELAYS``, seconds, comma-separated, for tests);
* ``job.run.errored`` fires as soon as a run errors, ``job.run.completed`` after it (for every finished
  run: success, error or cancel). Each subscription gets its own ``eventId`` per event; retries of one
  event keep it, so a receiver can ignore replays by ``eventId``.

Modules: ``payloads`` (what an event carries), ``sending`` (one signed request), ``delivery``
(the background dispatcher and its retries), ``declared`` (config.yml's subscriptions). Deliveries
never hold up a run: the executor only enqueues ``(run_id, phase)``; a background thread
builds the payloads and a small pool of threads delivers them. Every attempt is logged (event, run,
subscription, URL without its query, HTTP status); secrets and bodies never are. Deliveries still
pending when the server stops are dropped (dbt Cloud keeps them; this local server does not).
"""
