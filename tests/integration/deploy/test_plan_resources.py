"""make plan's per-job resources: built inside the platform image by the providers, validated for Kubernetes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from ml_platform.flavors import load_catalog
from ml_platform.quantities import cpu_millicores, memory_bytes
from tests.integration.helpers import working_tree_copy


def test_plan_shows_the_pod_and_the_docker_limits_each_job_would_get(image, docker, tmp_path):
    root = working_tree_copy(tmp_path / "repo")
    (root / "environments" / "cluster.yaml").write_text("bundle: {kind: local, path: .platform/bundles/cluster}\n")
    (root / "build").mkdir(exist_ok=True)
    (root / "build" / "build-record.json").write_text(json.dumps({
        "tags": ["ml-platform-airflow:test"], "image_id": image, "digest": None, "revision": None,
        "version": "test"}))
    env = {**os.environ, "DOCKER": docker, "REGISTRY": "127.0.0.1:9/none/airflow"}  # no registry: noted
    env.pop("PLATFORM_ROOT", None)

    def plan(name: str) -> dict:
        p = subprocess.run([sys.executable, "build.py", "plan", "--env", name, "--json"], cwd=root,
                           capture_output=True, text=True, env=env, timeout=600)
        assert p.returncode == 50, p.stdout + p.stderr
        return json.loads(p.stdout)

    flavors = load_catalog(root / "flavors.yaml").flavors
    k8s = plan("cluster")["resources"]
    assert k8s["computed"] and k8s["backend"] == "kubernetes" and k8s["image"] == image, k8s["reason"]
    train = k8s["jobs"]["pipelines/churn_model.yaml:train"]
    assert train["valid"] is True and train["error"] is None
    big = flavors["cpu-large"]
    assert train["fragment"]["resources"] == {
        "requests": {"cpu": big.cpu.request, "memory": big.memory.request, "ephemeral-storage": big.ephemeral_storage},
        "limits": {"cpu": big.cpu.limit, "memory": big.memory.limit, "ephemeral-storage": big.ephemeral_storage}}
    shipped = {f"pipelines/{f.name}:{job}" for f in (root / "pipelines").glob("*.yaml")
               for job in yaml.safe_load(f.read_text())["jobs"]}
    assert set(k8s["jobs"]) == shipped and all(j["valid"] for j in k8s["jobs"].values())

    local = plan("local")["resources"]
    assert local["backend"] == "docker"
    d = local["jobs"]["pipelines/example_etl.yaml:train"]["docker"]
    medium = flavors["cpu-medium"]
    assert d["nano_cpus"] == cpu_millicores(medium.cpu.limit) * 10**6
    assert d["mem_limit"] == d["memswap_limit"] == memory_bytes(medium.memory.limit)
