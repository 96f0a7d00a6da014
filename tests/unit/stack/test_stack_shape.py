"""`make up`'s shape: the compose files and profiles each EXECUTOR / WORKERS / STORE selects, merged by docker
compose itself (`compose config`, no engine needed): who gets the Docker socket, how many of each service,
no bundle storage shared between containers, the S3 store in the stack's network."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from platformctl.errors import StackError
from platformctl.stack.compose import Shape, Stack, compose_binary, compose_env
from platformctl.stack.fleet import S3_SERVICE_URL, s3_environment, shape_for
from platformctl.environments import load_environment
from platformctl.deploy.managed import bundle_config, connection_var, helm_values

ROOT = Path(__file__).resolve().parents[3]
SOCKET = "/var/run/docker.sock"


def config(tmp_path: Path, shape: Shape) -> dict:
    stack = Stack(ROOT, "shape-test", "stack/compose.yaml")
    env_file = tmp_path / "state.env"
    extra = {"REDIS_IMAGE": "ml-platform/redis:7"}
    if shape.store == "s3":
        extra.update({"S3_PORT": "18333", "S3_CONFIG": str(tmp_path / "s3.json"), "WEED_BIN": "/usr/bin/true",
                      "SUPPORT_BASE_IMAGE": "local/python:3.11-slim-bookworm"})
    (tmp_path / "airflow.env").write_text("")
    state = {"STACK_PROJECT": "shape-test", "PLATFORM_IMAGE": "img:1", "POSTGRES_IMAGE": "pg:15", "AIRFLOW_PORT": "18080",
             "DOCKER_GID": "999", "REPO_DIR": str(ROOT), "BUNDLE_STORE": str(tmp_path), "DEPLOY_ENV_FILE":
             str(tmp_path / "airflow.env"), "POSTGRES_PASSWORD": "p", "FERNET_KEY": "f", "JWT_SECRET": "j",
             "EXECUTOR": shape.executor, "WORKERS": str(shape.workers), "SCHEDULERS": str(shape.schedulers),
             "STORE": shape.store, "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "s", **extra}
    env_file.write_text("".join(f"{k}={v}\n" for k, v in state.items()))
    files = [a for f in stack.compose_files(shape) for a in ("-f", str(f))]
    profiles = [a for p in shape.profiles() for a in ("--profile", p)]
    p = subprocess.run([*compose_binary(), "-p", "shape-test", *files, *profiles, "--env-file", str(env_file),
                        "config", "--format", "json"], capture_output=True, text=True, env=compose_env(), cwd=ROOT)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["services"]


def mounts(service: dict) -> set[str]:
    return {v["target"] for v in service.get("volumes", [])}


def test_default_is_the_managed_shape(tmp_path):
    shape = shape_for(ROOT, executor=None, workers=None, store=None)
    assert shape == Shape("CeleryExecutor", 2, 2, "folder")
    s = config(tmp_path, shape)
    assert set(s) == {"postgres", "redis", "airflow-init", "api-server", "scheduler", "dag-processor", "triggerer",
                      "worker"}
    assert s["worker"]["deploy"]["replicas"] == 2 and s["scheduler"]["deploy"]["replicas"] == 2
    assert s["worker"]["command"] == ["celery", "worker"]
    assert SOCKET in mounts(s["worker"]) and SOCKET not in mounts(s["scheduler"])  # workers run the tasks
    assert all(s[n]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor" for n in ("scheduler", "worker"))
    for name in ("worker", "dag-processor", "scheduler"):
        # the folder store (read-only, like a bucket), flavors, logs: never a bundle storage directory
        assert not any(m.startswith("/tmp/airflow") or "dag_bundles" in m for m in mounts(s[name])), s[name]["volumes"]
        assert str(tmp_path) in mounts(s[name])


def test_workers_scale_and_local_executor_keeps_the_small_stack(tmp_path):
    assert config(tmp_path, shape_for(ROOT, executor=None, workers=3, store=None))["worker"]["deploy"]["replicas"] == 3
    small = shape_for(ROOT, executor="LocalExecutor", workers=None, store=None)
    assert small == Shape("LocalExecutor", 0, 1, "folder")
    s = config(tmp_path, small)
    assert set(s) == {"postgres", "airflow-init", "api-server", "scheduler", "dag-processor", "triggerer"}
    assert SOCKET in mounts(s["scheduler"]) and s["scheduler"]["deploy"]["replicas"] == 1
    assert s["scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_s3_store_runs_seaweedfs_in_the_network_and_mounts_no_folder(tmp_path):
    shape = shape_for(ROOT, executor=None, workers=None, store="s3")
    s = config(tmp_path, shape)
    assert s["seaweedfs"]["entrypoint"] == ["/usr/local/bin/weed"] and "-s3" in s["seaweedfs"]["command"]
    assert s["seaweedfs"]["ports"][0]["host_ip"] == "127.0.0.1"
    assert "seaweedfs" in s["airflow-init"]["depends_on"]
    assert str(tmp_path) not in mounts(s["worker"])
    assert s["worker"]["environment"]["AWS_ACCESS_KEY_ID"] == "a"


def test_the_s3_environment_is_configured_as_the_helm_values_configure_an_instance():
    env = s3_environment(load_environment(ROOT, "local"))
    (bundle,) = bundle_config(env)
    assert bundle["kwargs"]["store"] == "s3" and bundle["kwargs"]["endpoint_url"] == S3_SERVICE_URL
    conn = json.loads(connection_var(env)["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn == {"conn_type": "aws", "extra": {"endpoint_url": S3_SERVICE_URL, "region_name": "us-east-1"}}
    values = helm_values(env, env.bundle.prefix, {"repository": "r", "tag": "1"})
    assert values["dagProcessor"]["dagBundleConfigList"] == [bundle] and values["executor"] == "CeleryExecutor"


@pytest.mark.parametrize("kw, words", [({"executor": "KubernetesExecutor"}, "no Kubernetes API server"),
                                       ({"executor": "Celery"}, "not an Airflow executor"),
                                       ({"workers": 0}, "at least one worker"), ({"store": "gcs"}, "not one of")])
def test_bad_shapes_are_one_line(kw, words):
    args = {"executor": None, "workers": None, "store": None, **kw}
    with pytest.raises(StackError, match=words):
        shape_for(ROOT, **args)


def test_an_old_state_file_keeps_the_small_stack():
    assert Shape.from_state({"PLATFORM_IMAGE": "x"}) == Shape("LocalExecutor", 0, 1, "folder")
