"""JobOperator.partial(...).expand(...): dynamic task mapping on both backends, checked when the DAG is parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_platform.errors import FlavorError, JobSpecError
from ml_platform.job import JobOperator

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _catalog(monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_FLAVORS", str(ROOT / "flavors.yaml"))
    monkeypatch.delenv("ML_PLATFORM_ALLOWED_FLAVORS", raising=False)


def mapped(backend: str, **kw):
    from airflow.sdk import DAG

    kw.setdefault("docker_image", "registry.local/ml/churn:1.4.2")
    kw.setdefault("resource_flavor", "cpu-small")
    with DAG("mapped_dag", schedule=None):
        return JobOperator.partial(task_id="train", backend=backend, command=["train"], **kw).expand(
            env=[{"SEGMENT": s} for s in ("eu", "us", "apac")])


@pytest.mark.parametrize("backend,cls", [("kubernetes", "KubernetesJobOperator"), ("docker", "DockerJobOperator")])
def test_partial_expand_builds_a_mapped_job_of_the_backend(backend, cls):
    op = mapped(backend)
    assert op.operator_class.__name__ == cls
    assert op.expand_input.value == {"env": [{"SEGMENT": "eu"}, {"SEGMENT": "us"}, {"SEGMENT": "apac"}]}
    assert op.partial_kwargs["resource_flavor"] == "cpu-small"


@pytest.mark.parametrize("backend", ["kubernetes", "docker"])
def test_partial_takes_the_job_arguments_and_refuses_others(backend):
    """partial/expand check their keywords against the operator's constructor: the job's arguments are
    known to both backends (they are declared once, in backends/base.py), a misspelt one is refused."""
    op = mapped(backend, secrets_from_connections={"DB": "warehouse"}, arguments=["--fast"])
    assert op.partial_kwargs["secrets_from_connections"] == {"DB": "warehouse"}
    with pytest.raises(TypeError, match="unexpected keyword argument 'resource_flavour'"):
        mapped(backend, resource_flavour="cpu-small")


def test_mapped_jobs_are_checked_at_parse_time_like_the_others(monkeypatch):
    with pytest.raises(FlavorError, match="DAG 'mapped_dag', task 'train'.*gpu-a10"):
        mapped("kubernetes", resource_flavor="gpu-a10")
    with pytest.raises(JobSpecError, match="uses 'latest'"):
        mapped("docker", docker_image="registry.local/ml/churn:latest")
    monkeypatch.setenv("ML_PLATFORM_ALLOWED_FLAVORS", "cpu-small")
    with pytest.raises(FlavorError, match="gpu-a100"):
        mapped("kubernetes", resource_flavor="gpu-a100")


def test_docker_result_is_a_list_when_the_last_line_is_a_json_list():
    from ml_platform.backends.docker import json_list

    assert json_list('["eu", "us"]') == ["eu", "us"]
    assert json_list(b'[1, 2]') == [1, 2]
    assert json_list("[not json") == "[not json" and json_list("42") == "42" and json_list(None) is None
