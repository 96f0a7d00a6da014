from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def plugin(monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_FLAVORS", str(ROOT / "flavors.yaml"))
    spec = importlib.util.spec_from_file_location("ml_platform_plugin", ROOT / "plugins/ml_platform_plugin.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_plugin_registers_macros_link_and_app(plugin):
    p = plugin.MlPlatformPlugin()
    assert p.name == "ml_platform"
    assert {m.__name__ for m in p.macros} == {"image_version", "flavor_limits"}
    assert [type(link).__name__ for link in p.operator_extra_links] == ["FlavorLink"]
    from ml_platform.views import app

    assert p.fastapi_apps[0]["url_prefix"] == "/ml-platform" and p.fastapi_apps[0]["app"] is app
    assert p.external_views[0]["href"] == "/ml-platform/"


def test_plugin_only_registers(plugin):
    """The plugin holds no view code: loading it (every Airflow process does, for the macros) does not
    import the views nor the API server's security module; only asking for its FastAPI app does."""
    code = (ROOT / "plugins/ml_platform_plugin.py").read_text()
    assert len(code.splitlines()) < 40 and "<svg" not in code and "import ast" not in code
    script = ("import sys, importlib.util as u; s = u.spec_from_file_location('p', 'plugins/ml_platform_plugin.py'); "
              "m = u.module_from_spec(s); s.loader.exec_module(m); "
              "print(sorted(n for n in ('ml_platform.views', 'airflow.api_fastapi.core_api.security') if n in sys.modules))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]


def test_macros(plugin, monkeypatch):
    monkeypatch.delenv("ML_PLATFORM_IMAGE_VERSION", raising=False)
    image_version, flavor_limits = plugin.MlPlatformPlugin.macros
    assert image_version() == "unknown"
    monkeypatch.setenv("ML_PLATFORM_IMAGE_VERSION", "2.0.0")
    assert image_version() == "2.0.0"
    assert flavor_limits("cpu-small") == {"cpu": "1", "memory": "1Gi", "gpu": 0}


def test_flavor_link_points_at_the_view():
    from ml_platform.links import FlavorLink

    class Op:
        resource_flavor = "gpu-a100"

    assert FlavorLink().get_link(Op(), ti_key=None) == "/ml-platform/#flavor-gpu-a100"
