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
