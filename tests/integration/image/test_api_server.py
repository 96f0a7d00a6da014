"""The Airflow API server starts from the image (the product's ApiServer: a fresh metadata DB migrated by
the image's Airflow, then `airflow api-server` with authentication on: SimpleAuthManager, not all admins)
and answers; the platform plugin's page answers a logged-in viewer only."""

from __future__ import annotations

import json
import urllib.request

import pytest

from platformctl.image import checks


@pytest.fixture(scope="package")
def api(started):
    api = started["api"]
    api.wait_healthy()
    return api


@pytest.fixture(scope="package")
def token(api) -> str:
    return api.token()  # POST /auth/token with the viewer's user name and password


def _get(url: str, headers: dict | None = None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
        return r.status, r.read().decode()


def test_api_server_answers_health(api):
    with urllib.request.urlopen(api.url + "/api/v2/monitor/health", timeout=10) as r:
        body = json.load(r)
    assert body["metadatabase"]["status"] == "healthy"


def test_the_platform_page_refuses_requests_without_credentials(api):
    """Issue 33, defect 10: every route of the plugin's app answers as Airflow's own API does without a
    user (401), or with a token the server did not sign (403); it was 200 with every DAG, image and store."""
    assert checks._status(api.url + "/api/v2/dags") == 401  # Airflow's own, for comparison
    assert checks.anonymous_statuses(api.url) == {path: 401 for path in checks.PLATFORM_ROUTES}
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}
    assert {checks._status(api.url + p, 10, forged) for p in checks.PLATFORM_ROUTES} == {403}


def test_the_platform_page_answers_a_viewer_by_token_and_by_the_ui_cookie(api, token):
    """A viewer (may read DAGs) gets every route with the bearer token an API client sends, and the page
    with the `_token` cookie the UI's login sets (what the browser sends when the Browse menu opens it)."""
    for path in checks.PLATFORM_ROUTES:
        assert checks._status(api.url + path, 30, {"Authorization": f"Bearer {token}"}) == 200, path
    status, page = _get(api.url + "/ml-platform/", {"Cookie": f"_token={token}"})
    assert status == 200 and "<h1>ML platform</h1>" in page


def test_platform_view_answers_from_the_api_server(api, token):
    flavors = checks._get_json(api.url + "/ml-platform/flavors", 10, token)[1]
    assert {"cpu-small", "gpu-a100"} <= set(flavors["flavors"])
    assert checks._get_json(api.url + "/ml-platform/build", 10, token)[1]["airflow_version"]


def test_platform_page_draws_the_image_pipelines_from_their_yaml(api, token):
    """The page draws example_etl from the pipeline YAML the image ships beside its dags folder (the
    bundle Airflow is configured with here: the image's dags folder)."""
    pipelines = checks._get_json(api.url + "/ml-platform/pipelines", 30, token)[1]["pipelines"]
    etl = {p["dag_id"]: p for p in pipelines}["example_etl"]
    assert etl["source"] == "pipelines/example_etl.yaml"
    assert [j["name"] for j in etl["jobs"]] == ["extract", "transform", "train", "load"]
    assert etl["edges"] == [["extract", "transform"], ["transform", "train"], ["train", "load"]]
    page = _get(api.url + "/ml-platform/", {"Authorization": f"Bearer {token}"})[1]
    assert "<table id='status'" in page  # this environment's status heads the page (no platform bundle here)
    svg = page[page.index("id='graph-example_etl'"):]
    svg = svg[: svg.index("</svg>")]
    assert svg.count("<g class='job'") == 4 and svg.count("class='edge'") == 3
    assert "cpu-medium · 2 cpu · 2Gi" in svg


def test_the_product_api_rule_passes(api, token):
    # the rule make build applies to the same answers
    health = checks._get_json(api.url + "/api/v2/monitor/health", 10)[1]
    flavors, build = (checks._get_json(api.url + path, 10, token)[1]
                      for path in ("/ml-platform/flavors", "/ml-platform/build"))
    assert checks.api_problem(health, flavors, build, checks.anonymous_statuses(api.url)) is None
    assert "without credentials" in checks.api_problem(health, flavors, build, {"/ml-platform/": 200})
