"""JobOperator at parse time: the pod the provider itself would build, docker limits, and bad inputs."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from ml_platform.errors import FlavorError, JobSpecError
from ml_platform.flavors import load_catalog
from ml_platform.job import JobOperator
from ml_platform.quantities import cpu_millicores, memory_bytes

ROOT = Path(__file__).resolve().parents[3]
K8S_VERSION = "1.37.0"
FLAVORS = load_catalog(ROOT / "flavors.yaml")


@pytest.fixture(autouse=True)
def _catalog(monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_FLAVORS", str(ROOT / "flavors.yaml"))
    monkeypatch.delenv("ML_PLATFORM_ALLOWED_FLAVORS", raising=False)


def make(dag_id="ml_dag", **kw):
    from airflow.sdk import DAG

    kw.setdefault("task_id", "train_model")
    kw.setdefault("docker_image", "registry.local/ml/churn:1.4.2")
    kw.setdefault("command", ["python", "-m", "churn.train"])
    with DAG(dag_id, schedule=None):
        return JobOperator(**kw)


def pod_of(op) -> dict:
    with mock.patch("airflow.providers.cncf.kubernetes.operators.pod.KubernetesPodOperator.hook") as hook:
        hook.is_in_cluster = False
        hook.get_namespace.return_value = "ml-jobs"
        pod = op.build_pod_request_obj(context=None)
    obj = ApiClient().sanitize_for_serialization(pod)
    obj.setdefault("apiVersion", "v1")
    obj.setdefault("kind", "Pod")
    return obj


@pytest.mark.parametrize("flavor", FLAVORS.names())
def test_provider_built_pod_carries_the_flavor_and_validates(flavor):
    f = FLAVORS.flavors[flavor]
    obj = pod_of(make(backend="kubernetes", resource_flavor=flavor, env={"EPOCHS": "3"}))
    spec = obj["spec"]
    c = spec["containers"][0]
    assert c["image"] == "registry.local/ml/churn:1.4.2" and c["command"] == ["python", "-m", "churn.train"]
    limits, requests = c["resources"]["limits"], c["resources"]["requests"]
    assert (requests["cpu"], limits["cpu"]) == (f.cpu.request, f.cpu.limit)
    assert (requests["memory"], limits["memory"]) == (f.memory.request, f.memory.limit)
    if f.gpu:
        assert limits[f.gpu.resource] == str(f.gpu.count) and f.gpu.resource not in requests
    assert spec.get("nodeSelector", {}) == f.node_selector
    assert [t["key"] for t in spec.get("tolerations", [])] == [t.key for t in f.tolerations]
    assert spec.get("priorityClassName") == f.priority_class
    assert {"name": "EPOCHS", "value": "3"} in c["env"]
    assert obj["metadata"]["labels"]["ml-platform/flavor"] == flavor
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)  # raises on any schema violation


def test_kubernetes_defaults_stream_logs_and_clean_up():
    op = make(backend="kubernetes", resource_flavor="cpu-small")
    assert op.get_logs is True and op.on_finish_action.value == "delete_pod"
    assert {"image", "cmds", "arguments", "env_vars"} <= set(op.template_fields)
    assert make(backend="kubernetes", resource_flavor="cpu-small", deferrable=True).deferrable is True


def test_docker_backend_maps_flavor_to_hard_limits():
    op = make(backend="docker", resource_flavor="cpu-large")
    f = FLAVORS.flavors["cpu-large"]
    assert op.nano_cpus == cpu_millicores(f.cpu.limit) * 10**6
    assert op.mem_limit == memory_bytes(f.memory.limit)
    client = mock.Mock()
    with mock.patch("airflow.providers.docker.operators.docker.DockerOperator.hook") as hook:
        hook.api_client = client
        op.cli.create_host_config(cpu_shares=2048, mem_limit=None)
    kwargs = client.create_host_config.call_args.kwargs
    assert kwargs["nano_cpus"] == 4 * 10**9 and kwargs["mem_limit"] == 8 * 2**30 and kwargs["memswap_limit"] == 8 * 2**30


def test_docker_backend_requests_gpus():
    op = make(backend="docker", resource_flavor="gpu-a100")
    (req,) = op.device_requests
    assert req["Count"] == 1 and req["Capabilities"] == [["gpu"]]


@pytest.mark.parametrize("backend", ["kubernetes", "docker"])
@pytest.mark.parametrize("kw,exc,words", [
    ({"resource_flavor": "gpu-a10"}, FlavorError, "'gpu-a10' is not in the flavor catalog (did you mean 'gpu-a100'?"),
    ({"resource_flavor": "cpu-small", "docker_image": "registry.local/ml/churn"}, JobSpecError, "has no tag"),
    ({"resource_flavor": "cpu-small", "docker_image": "localhost:5000/ml/churn"}, JobSpecError, "has no tag"),
    ({"resource_flavor": "cpu-small", "docker_image": "registry.local/ml/churn:latest"}, JobSpecError, "'latest'"),
])
def test_bad_inputs_fail_at_parse_time_naming_dag_and_task(backend, kw, exc, words):
    with pytest.raises(exc) as e:
        make(backend=backend, **kw)
    msg = str(e.value)
    assert msg.startswith("DAG 'ml_dag', task 'train_model': ") and words in msg


def test_flavor_forbidden_by_environment(monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_ALLOWED_FLAVORS", "cpu-small,cpu-large")
    with pytest.raises(FlavorError) as e:
        make(backend="kubernetes", resource_flavor="gpu-a100")
    assert "'gpu-a100' is not allowed in this environment (allowed: cpu-large, cpu-small)" in str(e.value)


def test_digest_pinned_and_templated_images_are_accepted():
    make(backend="kubernetes", resource_flavor="cpu-small", docker_image="r/ml/x@sha256:" + "a" * 64)
    make(backend="kubernetes", resource_flavor="cpu-small", docker_image="r/ml/x:{{ var.value.tag }}")


def test_unknown_backend(monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_BACKEND", "nomad")
    with pytest.raises(JobSpecError, match="backend 'nomad'"):
        make(resource_flavor="cpu-small")
