"""The Airflow API server starts from the image (the product's ApiServer: a fresh metadata DB migrated by
the image's Airflow, then `airflow api-server`) and answers."""

from __future__ import annotations

import json
import urllib.request

import pytest

from platformctl.image import checks

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def api_url(started) -> str:
    api = started["api"]
    api.wait_healthy()
    return api.url


def test_api_server_answers_health(api_url):
    with urllib.request.urlopen(api_url + "/api/v2/monitor/health", timeout=10) as r:
        body = json.load(r)
    assert body["metadatabase"]["status"] == "healthy"


def test_platform_view_answers_from_the_api_server(api_url):
    with urllib.request.urlopen(api_url + "/ml-platform/flavors", timeout=10) as r:
        body = json.load(r)
    assert {"cpu-small", "gpu-a100"} <= set(body["flavors"])
    with urllib.request.urlopen(api_url + "/ml-platform/build", timeout=10) as r:
        assert json.load(r)["airflow_version"]


def test_the_product_api_rule_passes(api_url):
    # the rule make build applies to the same three answers
    health, flavors, build = (checks._get_json(api_url + path, 10)[1]
                              for path in ("/api/v2/monitor/health", "/ml-platform/flavors", "/ml-platform/build"))
    assert checks.api_problem(health, flavors, build) is None
