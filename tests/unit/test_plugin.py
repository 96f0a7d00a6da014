from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def plugin(monkeypatch, tmp_path):
    monkeypatch.setenv("ML_PLATFORM_FLAVORS", str(ROOT / "flavors.yaml"))
    monkeypatch.setenv("ML_PLATFORM_ALLOWED_FLAVORS", "cpu-small,cpu-large")
    spec = importlib.util.spec_from_file_location("ml_platform_plugin", ROOT / "plugins/ml_platform_plugin.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for var in mod.BUILD_ENV.values():  # read when called: a test sets what it needs
        monkeypatch.delenv(var, raising=False)
    return mod


def test_plugin_registers_macros_link_and_app(plugin):
    p = plugin.MlPlatformPlugin
    assert p.name == "ml_platform"
    assert {m.__name__ for m in p.macros} == {"image_version", "flavor_limits"}
    assert [type(link).__name__ for link in p.operator_extra_links] == ["FlavorLink"]
    assert p.fastapi_apps[0]["url_prefix"] == "/ml-platform" and p.fastapi_apps[0]["app"] is plugin.app


def test_view_lists_flavors_and_the_build_record(plugin, monkeypatch):
    c = TestClient(plugin.app)
    r = c.get("/flavors").json()
    assert r["allowed"] == ["cpu-large", "cpu-small"] and "gpu-a100" in r["flavors"]
    missing = c.get("/build")
    assert missing.status_code == 404 and "ML_PLATFORM_IMAGE_VERSION is not set" in missing.json()["detail"]
    monkeypatch.setenv("ML_PLATFORM_IMAGE_VERSION", "1.2.3")
    monkeypatch.setenv("ML_PLATFORM_LOCK_FINGERPRINT", "sha256:x")
    build = c.get("/build").json()
    assert build["version"] == "1.2.3" and build["lock_fingerprint"] == "sha256:x" and build["revision"] == ""
    page = c.get("/").text
    assert "id='flavor-gpu-a100'" in page and "1.2.3" in page and "sha256:x" in page


def test_macros(plugin, monkeypatch):
    assert plugin.image_version() == "unknown"
    monkeypatch.setenv("ML_PLATFORM_IMAGE_VERSION", "2.0.0")
    assert plugin.image_version() == "2.0.0"
    assert plugin.flavor_limits("cpu-small") == {"cpu": "1", "memory": "1Gi", "gpu": 0}


def test_flavor_link_points_at_the_view():
    from ml_platform.links import FlavorLink

    class Op:
        resource_flavor = "gpu-a100"

    assert FlavorLink().get_link(Op(), ti_key=None) == "/ml-platform/#flavor-gpu-a100"


def test_page_draws_the_running_pipelines(plugin, monkeypatch, tmp_path):
    """/ml-platform/ draws each rendered DAG of the bundle: example_etl's 4 jobs, its 3 edges, flavor badges
    with limits, a flavor this environment does not allow marked; other .py files are ignored, never run."""
    bundle = tmp_path / "versions/b-0123456789abcdef"
    (bundle / "dags").mkdir(parents=True)
    (bundle / "dags/example_etl.py").write_text((ROOT / "dags/example_etl.py").read_text())
    (bundle / "dags/hand_written.py").write_text("raise SystemExit('a page view must not run DAG code')\n")
    monkeypatch.setenv("ML_PLATFORM_PIPELINE_DIRS", str(bundle))
    c = TestClient(plugin.app)

    (p,) = c.get("/pipelines").json()["pipelines"]
    assert p["dag_id"] == "example_etl" and p["source"] == "pipelines/example_etl.yaml"
    assert [(j["name"], j["flavor"]) for j in p["jobs"]] == [
        ("extract", "cpu-small"), ("transform", "cpu-small"), ("train", "cpu-medium"), ("load", "cpu-small")]
    assert p["edges"] == [["extract", "transform"], ["transform", "train"], ["train", "load"]]

    page = c.get("/").text
    svg = page[page.index("<svg class='graph' id='graph-example_etl'"):]
    svg = svg[: svg.index("</svg>")]
    assert svg.count("<g class='job'") == 4
    for name in ("extract", "transform", "train", "load"):
        assert f"data-id='{name}'" in svg
    for a, b in p["edges"]:
        assert f"data-source='{a}' data-target='{b}'" in svg
    assert svg.count("class='edge'") == 3
    train = svg[svg.index("data-id='train'"):svg.index("data-id='load'")]
    assert "cpu-medium · 2 cpu · 2Gi<" in train and "✕ not allowed here" in train  # allowed: cpu-small, cpu-large
    assert svg.count("not allowed here") == 1
    assert svg.count("cpu-small · 1 cpu · 1Gi<") == 3
    assert "ml-platform/etl-job:0.1.0" in svg
    x = {name: int(svg.split(f"data-id='{name}' transform='translate(")[1].split(",")[0])
         for name in ("extract", "transform", "train", "load")}
    assert x["extract"] < x["transform"] < x["train"] < x["load"]  # one layer per step, left to right
    assert "<script" not in page and "<link" not in page and " src=" not in page  # self-contained, nothing fetched


def test_page_layers_a_fan_out_and_fan_in(plugin):
    pos = plugin.layered(["a", "b", "c", "d"], [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]])
    assert pos == {"a": (0, 0), "b": (1, 0), "c": (1, 1), "d": (2, 0)}


def test_status_shows_each_platform_bundle_and_the_image(plugin, monkeypatch):
    class Bundle:
        def __init__(self, live, here, error=None):
            self.s = {"bundle": "ml-platform", "store": "/store", "prefix": "airflow/dev", "served_here": here,
                      "live": live and {"version": live, "switched_at": "2026-12-03T10:00:00Z", "commit": "abc123",
                                        "image_digest": None, "history": ["b-old"]}, "error": error}

        def status(self):
            return self.s

    class Other:  # a bundle of another class: not ours, not shown
        pass

    monkeypatch.setenv("ML_PLATFORM_IMAGE_VERSION", "1.2.3")
    monkeypatch.setenv("AIRFLOW_VAR_ENVIRONMENT", "dev")
    monkeypatch.setattr(plugin, "configured_bundles", lambda: [Bundle("b-2", "b-1"), Other()])
    c = TestClient(plugin.app)
    st = c.get("/status").json()
    assert st["environment"] == "dev" and st["image"]["version"] == "1.2.3"
    assert [b["live"]["version"] for b in st["bundles"]] == ["b-2"]
    page = c.get("/").text
    status = page[page.index("<table id='status'"):]
    status = status[:status.index("</table>")]
    assert "b-2" in status and "serving b-1: the live version arrives within the refresh interval" in status
    monkeypatch.setattr(plugin, "configured_bundles", lambda: [Bundle(None, None, "no current.json: nothing is deployed")])
    assert "nothing is deployed" in c.get("/").text
