"""
Drive the provider's async path (the triggerer's) in a fresh process and print the outcome as JSON.

A separate process is the faithful setup: aiohttp builds its default SSL context when it is imported,
so ``SSL_CERT_FILE`` only takes effect if it is set before the process starts, exactly as the
triggerer's environment must carry it. Usage: ``python async_probe.py RUN_ID [RETRY_LIMIT]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

CONN_ID = "dbt_cloud_local"


async def probe(run_id: int, retry_limit: int) -> dict[str, Any]:
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook
    from airflow.providers.dbt.cloud.triggers.dbt import DbtCloudRunJobTrigger

    hook_params = {"retry_limit": retry_limit, "retry_delay": 0.1}
    trigger = DbtCloudRunJobTrigger(
        conn_id=CONN_ID,
        run_id=run_id,
        end_time=time.time() + 300,
        poll_interval=0.5,
        account_id=None,
        hook_params=hook_params,
    )
    events = [event.payload async for event in trigger.run()]
    hook = DbtCloudHook(CONN_ID, **hook_params)
    details = await hook.get_job_details(run_id, include_related=["run_steps", "job"])
    status = await hook.get_job_status(run_id)
    return {"events": events, "details": details, "status": status}


if __name__ == "__main__":
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    print(json.dumps(asyncio.run(probe(int(sys.argv[1]), limit))))
