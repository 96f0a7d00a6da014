"""`airflow plugins` in the built image lists the platform plugin with all its parts."""

from __future__ import annotations

import json
import subprocess

import pytest

from platformctl.image import checks

pytestmark = pytest.mark.integration


def test_airflow_plugins_lists_the_platform_plugin(code_facts):
    out = code_facts["plugins_cli"]  # `airflow plugins --output json`, run in the probe's process
    start = out.index("[")
    plugins = {p["name"]: p for p in json.loads(out[start:])}
    p = plugins["ml_platform"]
    text = json.dumps(p)
    assert "image_version" in text and "flavor_limits" in text
    assert "FlavorLink" in text or "Flavor" in text
    assert "/ml-platform" in text
    assert checks.plugin_problem(out) is None


def test_platform_page_draws_the_image_pipelines(docker, image):
    """The plugin's /ml-platform/ page, served by its FastAPI app in the image, draws example_etl from the
    DAG files of the bundles Airflow is configured with (here the image's dags folder)."""
    script = ("import json, sys; sys.path.insert(0, '/opt/airflow/plugins'); from fastapi.testclient import TestClient; "
              "import ml_platform_plugin as p; c = TestClient(p.app); "
              "print(json.dumps({'pipelines': c.get('/pipelines').json()['pipelines'], 'page': c.get('/').text}))")
    out = subprocess.run([docker, "run", "--rm", "--entrypoint", "python", image, "-c", script],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    body = json.loads(out[out.index('{"pipelines"'):])
    etl = {p["dag_id"]: p for p in body["pipelines"]}["example_etl"]
    assert [j["name"] for j in etl["jobs"]] == ["extract", "transform", "train", "load"]
    assert etl["edges"] == [["extract", "transform"], ["transform", "train"], ["train", "load"]]
    page = body["page"]
    assert "<table id='status'" in page  # this environment's status heads the page (no platform bundle here)
    svg = page[page.index("id='graph-example_etl'"):]
    svg = svg[: svg.index("</svg>")]
    assert svg.count("<g class='job'") == 4 and svg.count("class='edge'") == 3
    assert "cpu-medium · 2 cpu · 2Gi" in svg
