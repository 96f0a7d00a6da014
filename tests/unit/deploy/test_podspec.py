"""ml_platform.podspec (run inside the image by make plan): the provider's pod per job, valid for Kubernetes."""

from __future__ import annotations

import os

import pytest

from ml_platform.flavors import load_catalog
from ml_platform.podspec import build
from platformctl.deploy.pods import fragment, validate_pod
from tests.conftest import ROOT

FLAVORS = load_catalog(ROOT / "flavors.yaml")


@pytest.fixture(autouse=True)
def _env(monkeypatch):  # build() sets the catalog variables for its process: keep them to this test
    monkeypatch.setenv("ML_PLATFORM_FLAVORS", "unset")
    monkeypatch.delenv("ML_PLATFORM_ALLOWED_FLAVORS", raising=False)


def request(flavors: list[str], allowed=None) -> dict:
    return {"flavors_yaml": (ROOT / "flavors.yaml").read_text(), "allowed": allowed,
            "jobs": [{"key": f"p.yaml:{f}", "dag_id": "p", "task_id": f"job_{i}", "image": "ml/x:1.0", "flavor": f}
                     for i, f in enumerate(flavors)]}


def test_every_flavor_gives_a_valid_pod_with_its_resources_and_placement():
    answer = build(request(FLAVORS.names()))["jobs"]
    for name in FLAVORS.names():
        f = FLAVORS.flavors[name]
        pod = answer[f"p.yaml:{name}"]["pod"]
        assert validate_pod(pod) is None
        frag = fragment(pod)
        assert frag["resources"]["limits"]["cpu"] == f.cpu.limit
        assert frag["resources"]["requests"]["memory"] == f.memory.request
        assert frag.get("nodeSelector", {}) == f.node_selector
        assert frag.get("priorityClassName") == f.priority_class
        assert [t["key"] for t in frag.get("tolerations", [])] == [t.key for t in f.tolerations]
        if f.gpu:
            assert frag["resources"]["limits"][f.gpu.resource] == str(f.gpu.count)
        d = answer[f"p.yaml:{name}"]["docker"]
        assert d["mem_limit"] == d["memswap_limit"] and d["gpus"] == (f.gpu.count if f.gpu else 0)


def test_a_flavor_the_environment_forbids_is_an_error_for_that_job_only():
    answer = build(request(["cpu-small", "gpu-a100"], allowed=["cpu-small"]))["jobs"]
    assert "pod" in answer["p.yaml:cpu-small"]
    assert "not allowed in this environment" in answer["p.yaml:gpu-a100"]["error"]


def test_an_invalid_pod_is_reported():
    pod = build(request(["cpu-small"]))["jobs"]["p.yaml:cpu-small"]["pod"]
    pod["spec"]["containers"][0]["resources"]["limits"]["cpu"] = {"not": "a quantity"}
    assert validate_pod(pod) is not None


def test_build_leaves_the_process_environment_as_it_was(monkeypatch):
    from ml_platform import podspec

    monkeypatch.setenv("ML_PLATFORM_FLAVORS", "/somewhere/flavors.yaml")
    monkeypatch.delenv("ML_PLATFORM_ALLOWED_FLAVORS", raising=False)
    podspec.build({"flavors_yaml": (ROOT / "flavors.yaml").read_text(), "allowed": ["cpu-small"], "jobs": []})
    assert os.environ["ML_PLATFORM_FLAVORS"] == "/somewhere/flavors.yaml"
    assert "ML_PLATFORM_ALLOWED_FLAVORS" not in os.environ
