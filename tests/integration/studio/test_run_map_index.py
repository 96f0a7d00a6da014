"""A mapped job's run in the studio, in Debian's Chromium, with the Airflow API answered by a stand-in
(tests/unit/studio/airflow_standin.py; the real stack's run is test_run_browser.py): the node shows the
instance count and each index's state; its Log tab picks a map index (the first failed one first) and
shows that index's log, of that index's try, followed while it runs, at no more than one Airflow request
per second for the open pipeline."""

from __future__ import annotations

import time

from platformctl.studio.runs import Runner
from tests.unit.studio.airflow_standin import StandinAirflow, ti

from . import browser
from .test_browser import Page, driver  # noqa: F401 - the fixture

F = "pipelines/churn_retrain.yaml"


def log_text(d) -> str:
    return d.execute_script("return document.querySelector('#job-log')?.textContent || '';")


def test_pick_a_map_index_and_follow_its_log(studio, driver):  # noqa: F811 - the fixture
    httpd, url, _ = studio
    with StandinAirflow() as airflow:
        airflow.runs["churn_retrain"] = [("manual__1", "running", [
            ti("training.train", "success", 1, 3.2, 0), ti("training.train", "failed", 2, 4.1, 1),
            ti("training.train", "running", 1, None, 2), ti("training.evaluate", None, 0)])]
        server = httpd.loader.get()
        server.runner = Runner(server.root, airflow_url=airflow.url)
        d, page = driver, Page(driver)
        d.get(url)
        browser.wait_for(d, f"document.querySelector('a[data-file=\"{F}\"]')", what="the pipeline list")
        page.click(f'a[data-file="{F}"]', "open churn_retrain")
        page.layout_settled(2)
        browser.wait_for(d, "document.querySelectorAll('.react-flow__node[data-id=\"train\"] .mapcells .cell')"
                            ".length === 3", what="train's three map indexes drawn")
        cells = d.execute_script("return [...document.querySelectorAll('.react-flow__node[data-id=\"train\"] "
                                 ".mapcells .cell')].map((c) => c.dataset.state);")
        assert cells == ["success", "failed", "running"]
        badge = page.css('.react-flow__node[data-id="train"] .runinfo').text
        assert "×3 (1 success, 1 failed, 1 running)" in badge, badge
        assert page.css('.react-flow__node[data-id="evaluate"] .runinfo').get_attribute("data-state") == "none"

        page.css('.react-flow__node[data-id="train"] .jname').click()
        page.css("#tab-log").click()
        # the first failed index first, with its own try number
        browser.wait_for(d, "document.querySelector('#job-log')?.textContent === "
                            "'log of training.train map index 1 try 2'", what="index 1's log")
        assert "train [1]: failed, try 2" in page.css(".runlog h3").text
        assert "(following)" not in page.css(".runlog h3").text

        page.Select(page.css("#map-index")).select_by_value("2")
        browser.wait_for(d, "document.querySelector('#job-log')?.textContent === "
                            "'log of training.train map index 2 try 1'", what="index 2's log")
        assert "train [2]: running, try 1 (following)" in page.css(".runlog h3").text

        # followed while it runs: read again, and the open pipeline costs <= 1 Airflow request a second
        asked0 = dict(airflow.requests)
        t0 = time.monotonic()
        time.sleep(9)
        elapsed = time.monotonic() - t0
        logs = airflow.requests["log"] - asked0.get("log", 0)
        lists = airflow.requests["task_instances"] - asked0.get("task_instances", 0)
        assert logs >= 2, f"the running index's log was read {logs} time(s) in {elapsed:.0f}s"
        assert logs + lists <= elapsed + 1, f"{logs} log and {lists} list requests in {elapsed:.1f}s"

        # a click on a cell picks that index
        page.css('.mapindex .cell[data-index="0"]').click()
        browser.wait_for(d, "document.querySelector('#job-log')?.textContent === "
                            "'log of training.train map index 0 try 1'", what="index 0's log")
        assert "(following)" not in page.css(".runlog h3").text
