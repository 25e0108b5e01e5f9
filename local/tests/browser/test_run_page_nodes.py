"""The local dbt Cloud's run page, in a real (headless) Chromium: the run's nodes as a table and a DAG.

A run of the demo project's eltml job where ``stg_orders`` fails (``DBT_FAIL_MODEL``): the page must
show every node with its status and time, draw the DAG with the failed model in red and the models it
skipped (``orders``, ``customer_features``, ...) highlighted, and say which error failed it. Only the
local dbt Cloud is needed (no Airflow stack), so this takes well under a minute.

The screenshot goes to ``$BROWSER_SCREENSHOTS_DIR`` (``make screenshots``: docs/screenshots).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from dbt_cloud_local.testing import run_local_dbt_cloud
from include.eltml.load import load_raw_tables

SHOT = "5-local-dbt-cloud-run-nodes.png"


@pytest.mark.timeout(300)
def test_run_page_shows_nodes_and_highlights_the_failure_and_what_it_skipped(
    page: Page, screenshots: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse" / "jaffle_shop.duckdb"
    warehouse.parent.mkdir()
    load_raw_tables(warehouse, n_customers=100)
    with run_local_dbt_cloud(tmp_path / "dbt-cloud", env={"JAFFLE_SHOP_WAREHOUSE": str(warehouse)}) as server:
        with server.client(timeout=30) as client:
            client.post(
                "/api/v3/accounts/1/projects/1/environment-variables/bulk/",
                json={"env_var": [{"new_name": "DBT_FAIL_MODEL", "Production": "stg_orders"}]},
            ).raise_for_status()
            run = client.post("/api/v2/accounts/1/jobs/1/run/", json={"cause": "Browser test"}).json()["data"]
            for _ in range(600):
                current = client.get(f"/api/v2/accounts/1/runs/{run['id']}/").json()["data"]
                if current["is_complete"]:
                    break
                page.wait_for_timeout(300)
        assert current["status"] == 20, current["status_message"]

        page.goto(run["href"])
        expect(page.get_by_role("heading", name="Nodes")).to_be_visible()
        failed_row = page.locator("#nodes tr[data-unique-id='model.jaffle_shop.stg_orders']")
        expect(failed_row).to_have_class("node failed")
        expect(failed_row.locator(".msg")).to_contain_text(
            "DBT_FAIL_MODEL asked jaffle_shop.stg_orders to fail"
        )
        for skipped in ("model.jaffle_shop.orders", "model.jaffle_shop.customer_features"):
            expect(page.locator(f"#nodes tr[data-unique-id='{skipped}']")).to_have_class("node blocked")
            expect(page.locator(f"#dag g[data-unique-id='{skipped}']")).to_have_class("dagnode blocked")
        built = page.locator("#nodes tr[data-unique-id='model.jaffle_shop.stg_customers']")
        expect(built).to_have_class("node success")
        expect(built.locator("td").nth(3)).to_have_text(re.compile(r"^\d+\.\d\ds$"))  # its time

        dag = page.locator("#dag")
        expect(dag).to_be_visible()
        expect(dag.locator("g.dagnode.failed")).to_have_count(1)
        expect(dag.locator("g.dagnode.failed")).to_have_attribute(
            "data-unique-id", "model.jaffle_shop.stg_orders"
        )
        assert dag.locator("path.edge.hit").count() >= 2, (
            "edges into what the failure skipped are highlighted"
        )
        box = dag.bounding_box()
        assert box is not None
        assert box["width"] > 400, "the picture is drawn, not collapsed"
        # Rows = every node of run_results (tests included); the picture omits passing tests.
        rows = page.locator("#nodes tr.node").count()
        assert rows > page.locator("#dag g.dagnode").count() > 10

        page.locator("h2", has_text="Nodes").scroll_into_view_if_needed()
        top = page.locator("h1").bounding_box()
        table = page.locator("#nodes").bounding_box()
        assert top is not None
        assert table is not None
        height = min(table["y"] + 260, top["y"] + 1500)
        page.screenshot(
            path=screenshots / SHOT, full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height}
        )
        # The page needs no token: it is what a run's href (Airflow's "Monitor Job Run") opens.
        assert httpx.get(run["href"], verify=server.trust).status_code == 200
