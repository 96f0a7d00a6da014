"""Issue 40's done-when, in Debian's Chromium against the real local stack: open example_failing, Run
(the studio deploys to local and starts the stack), its failing job turns red with its log -> fix the job
in the form, save (the diff first), Run again -> every job green; then churn_retrain's mapped job, each
map index's own log. Screenshots go to build/ (docs/img/ holds copies for docs/studio.md). One stack for
the whole module; it is removed at the end."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from platformctl.studio.runs import Runner
from platformctl.studio.server import make_server
from tests.conftest import require

from . import browser
from .conftest import ROOT, full_copy
from .test_browser import SHOTS, Page

PROJECT = f"mlp-studio-run-{uuid.uuid4().hex[:6]}"
F = "pipelines/example_failing.yaml"
M = "pipelines/churn_retrain.yaml"


@pytest.fixture(scope="module")
def served(tmp_path_factory, docker, image):
    require(browser.available(), "no headless browser: apt-get install chromium chromium-driver")
    require((ROOT / "build" / "build-record.json").exists(), "no build record: run make build first")
    project = full_copy(tmp_path_factory.mktemp("studio-run") / "project")
    httpd, url = make_server(project)
    studio = httpd.loader.get()
    studio.runner = Runner(studio.root, project=PROJECT, image=image)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield project, url, studio
    finally:
        httpd.shutdown()
        httpd.server_close()
        from platformctl.config import load_config
        from platformctl.services.stack import down

        down(studio.root, load_config(studio.root), PROJECT, volumes=True)


def node_state(d, name: str) -> str | None:
    return d.execute_script(f"const e = document.querySelector('.react-flow__node[data-id=\"{name}\"] .runinfo');"
                            "return e && e.dataset.state;")


def test_edit_run_fail_red_with_log_fix_run_green(served):
    project, url, studio = served
    SHOTS.mkdir(exist_ok=True)
    d = browser.start()
    t0 = time.monotonic()
    try:
        d.get(url)
        page = Page(d)
        browser.wait_for(d, f"document.querySelector('a[data-file=\"{F}\"]')", what="the pipeline list")
        page.click(f'a[data-file="{F}"]', "open example_failing")
        page.layout_settled(2)

        # run 1: the studio deploys to local, starts the stack (progress shown), triggers the DAG
        page.css("#run").click()
        browser.wait_for(d, "document.querySelector('#run-dialog')", what="the run dialog")
        page.css("#run-confirm").click()
        browser.wait_for(d, "document.querySelector('#run-progress')", what="the run's progress")
        browser.wait_for(d, "window.__studio.run && window.__studio.run.run_id", timeout=900,
                         what="the stack up and the DAG triggered")
        calls0, at0 = studio.runner.calls, time.monotonic()
        try:
            browser.wait_for(d, "!['none', undefined].includes(document.querySelector("
                                "'.react-flow__node[data-id=\"extract\"] .runinfo')?.dataset.state)", timeout=600,
                             what="extract given a state by the scheduler")
        finally:
            print("studio run status:", d.execute_script("return JSON.stringify(window.__studio.run);"))
        assert d.save_screenshot(str(SHOTS / "studio-run-in-progress.png"))
        try:
            browser.wait_for(d, "window.__studio.run && window.__studio.run.run_state === 'failed'", timeout=600,
                             what="run 1 to fail")
        finally:
            print("studio run status:", d.execute_script("return JSON.stringify(window.__studio.run);"))
        elapsed = time.monotonic() - at0
        calls = studio.runner.calls - calls0
        print(f"studio run polling: {calls} Airflow requests in {elapsed:.0f}s of a live run")
        assert calls <= elapsed + 2, "more than one Airflow request per second"
        browser.wait_for(d, "document.querySelector('.react-flow__node[data-id=\"transform\"] .runinfo')"
                            "?.dataset.state === 'failed'", what="transform drawn failed")
        assert node_state(d, "extract") == "success"
        red = d.execute_script("return getComputedStyle(document.querySelector("
                               "'.react-flow__node[data-id=\"transform\"] .job')).borderTopColor;")
        assert red == "rgb(221, 51, 51)", red  # #d33

        # its log, from Airflow
        page.css('.react-flow__node[data-id="transform"] .jname').click()
        page.css("#tab-log").click()
        browser.wait_for(d, "document.querySelector('#job-log') && document.querySelector('#job-log').textContent"
                            ".includes('failing on purpose (exit 3)')", timeout=60, what="transform's log")
        assert d.save_screenshot(str(SHOTS / "studio-run-failed-log.png"))

        # fix: drop --fail from transform's command in the form, save (diff first), run again
        page.css("#tab-form").click()
        browser.wait_for(d, "document.querySelector('#job-command')", what="transform's form")
        page.type_and_commit("#job-command", "python3\n/app/etl.py\ntransform", "transform's command")
        yaml_diff, _ = page.save(project, F)
        assert "-    command: [python3, /app/etl.py, transform, --fail]" in yaml_diff
        first_run = d.execute_script("return window.__studio.run.run_id;")
        page.css("#run").click()
        page.css("#run-confirm").click()
        browser.wait_for(d, f"window.__studio.run && window.__studio.run.run_id && "
                            f"window.__studio.run.run_id !== '{first_run}'", timeout=300, what="run 2 triggered")
        browser.wait_for(d, "window.__studio.run.run_state === 'success'", timeout=600, what="run 2 to succeed")
        browser.wait_for(d, "['extract', 'transform'].every((n) => document.querySelector("
                            "`.react-flow__node[data-id=\"${n}\"] .runinfo`)?.dataset.state === 'success')",
                         what="both jobs green")
        assert d.save_screenshot(str(SHOTS / "studio-run-fixed-green.png"))

        # opening the pipeline again shows its last run's states
        d.get(url)
        browser.wait_for(d, f"document.querySelector('a[data-file=\"{F}\"]')", what="the pipeline list")
        page.click(f'a[data-file="{F}"]', "open example_failing again")
        browser.wait_for(d, "document.querySelector('.react-flow__node[data-id=\"transform\"] .runinfo')"
                            "?.dataset.state === 'success'", timeout=60, what="the last run's states on open")

        # a mapped job (churn_retrain's train, one instance per segment): its indexes on the node, and the
        # Log tab shows the index picked, with that index's own output
        page.click(f'a[data-file="{M}"]', "open churn_retrain")
        page.layout_settled(2)
        page.css("#run").click()
        browser.wait_for(d, "document.querySelector('#param-epochs')", what="the run form with the params")
        page.css("#run-confirm").click()
        browser.wait_for(d, "window.__studio.run && window.__studio.run.run_id && window.__studio.run.stage === "
                            "'running'", timeout=300, what="churn_retrain triggered")
        browser.wait_for(d, "window.__studio.run.run_state === 'success'", timeout=600, what="churn_retrain to succeed")
        browser.wait_for(d, "[...document.querySelectorAll('.react-flow__node[data-id=\"train\"] .mapcells .cell')]"
                            ".map((c) => c.dataset.state).join() === 'success,success,success'",
                         what="train's three indexes drawn green")
        assert "×3 (3 success)" in page.css('.react-flow__node[data-id="train"] .runinfo').text
        page.css('.react-flow__node[data-id="train"] .jname').click()
        page.css("#tab-log").click()
        page.Select(page.css("#map-index")).select_by_value("2")
        browser.wait_for(d, "document.querySelector('#job-log[data-map-index=\"2\"]')?.textContent"
                            ".includes('train: done for apac')", timeout=60, what="map index 2's log (apac)")
        assert d.save_screenshot(str(SHOTS / "studio-run-map-index.png"))
        page.css('.mapindex .cell[data-index="0"]').click()
        browser.wait_for(d, "document.querySelector('#job-log[data-map-index=\"0\"]')?.textContent"
                            ".includes('train: done for eu')", timeout=60, what="map index 0's log (eu)")
    finally:
        print(f"studio run browser test: {time.monotonic() - t0:.0f}s")
        d.quit()
