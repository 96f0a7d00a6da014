"""`airflow plugins` in the built image lists the platform plugin with all its parts."""

from __future__ import annotations

import json


from platformctl.image import checks


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
