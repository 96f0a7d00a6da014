from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from platformctl.deploy.managed import write_config
from platformctl.deploy.policy import JobUse, PolicyError, check_policy, job_uses
from platformctl.environments import load_environment
from platformctl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "ab" * 32


def test_helm_values_parse_and_pin_the_digest(tmp_path):
    env = load_environment(ROOT, "dev")
    image = {"repository": "127.0.0.1:5000/ml-platform/airflow", "tag": "1.2.3", "digest": DIGEST}
    values_path, env_path = write_config(tmp_path, env, "airflow/dev/bundles/b-1", image)
    values = yaml.safe_load(values_path.read_text())
    assert values["images"]["airflow"] == {"repository": image["repository"], "tag": "1.2.3", "digest": DIGEST,
                                           "pullPolicy": "IfNotPresent"}
    bundles = json.loads(values["config"]["dag_processor"]["dag_bundle_config_list"])
    assert bundles == [{"name": "ml-platform", "classpath": "airflow.providers.amazon.aws.bundles.s3.S3DagBundle",
                        "kwargs": {"aws_conn_id": "aws_default", "bucket_name": "ml-platform-dags",
                                   "prefix": "airflow/dev/bundles/b-1", "refresh_interval": 300}}]
    assert values["config"]["core"]["load_examples"] == "False"
    env_vars = {e["name"]: e["value"] for e in values["env"]}
    assert env_vars["ML_PLATFORM_ALLOWED_FLAVORS"] == "cpu-small,cpu-medium,cpu-large,mem-large"
    assert env_vars["AIRFLOW_VAR_ENVIRONMENT"] == "dev"
    assert f"ML_PLATFORM_IMAGE=127.0.0.1:5000/ml-platform/airflow@{DIGEST}" in env_path.read_text()
    assert "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST='[" in env_path.read_text()


def test_policy_refuses_forbidden_flavors_and_images():
    env = load_environment(ROOT, "dev").model_copy(update={"allowed_images": ["registry.local/ml/"]})
    uses = [JobUse("pipelines/a.yaml", "train", "gpu-a100", "registry.local/ml/x:1"),
            JobUse("pipelines/a.yaml", "load", "cpu-small", "docker.io/evil:1")]
    with pytest.raises(PolicyError) as exc:
        check_policy(env, uses)
    assert exc.value.message.startswith("pipelines/a.yaml: jobs.train uses flavor 'gpu-a100', which dev does not allow")
    assert "docker.io/evil:1" in exc.value.message and "nothing was deployed" in exc.value.hint
    check_policy(load_environment(ROOT, "prod"), uses[:1])  # prod allows every flavor


def test_job_uses_apply_defaults(tmp_path):
    import shutil

    (tmp_path / "pipelines").mkdir()
    shutil.copy(ROOT / "flavors.yaml", tmp_path)
    (tmp_path / "pipelines/p.yaml").write_text(
        "dag: {name: p}\ndefaults: {docker_image: 'r/i:1', resource_flavor: cpu-small}\n"
        "jobs:\n  a: {command: [x]}\n  b: {resource_flavor: gpu-a100, command: [y]}\n")
    assert job_uses(tmp_path) == [JobUse("pipelines/p.yaml", "a", "cpu-small", "r/i:1"),
                                  JobUse("pipelines/p.yaml", "b", "gpu-a100", "r/i:1")]


def test_environment_errors_name_file_and_line(tmp_path):
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments/qa.yaml").write_text("bundle:\n  kind: s3\n  prefix: x\n  buckett: y\n")
    with pytest.raises(ConfigError) as exc:
        load_environment(tmp_path, "qa")
    assert exc.value.where == "environments/qa.yaml:4" and "bundle.buckett" in exc.value.message
    assert load_environment(tmp_path, "local").bundle.kind == "local"


def test_deploy_uses_the_promoted_release_over_the_local_build(tmp_path):
    from platformctl.commands.deploy import image_info
    from platformctl.config import load_config

    env = load_environment(ROOT, "prod")
    cfg = load_config(ROOT, {})
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "build-record.json").write_text(json.dumps(
        {"tags": ["ml-platform-airflow:0.1.0-dev.3"], "digest": None, "image_id": "sha256:local"}))
    assert image_info(tmp_path, env, cfg)["tag"] == "0.1.0-dev.3"
    (tmp_path / "deploy" / "prod").mkdir(parents=True)
    (tmp_path / "deploy" / "prod" / "image.json").write_text(json.dumps(
        {"repository": "r.example/ml/airflow-prod", "version": "1.2.3", "digest": DIGEST}))
    assert image_info(tmp_path, env, cfg) == {"repository": "r.example/ml/airflow-prod", "tag": "1.2.3",
                                              "digest": DIGEST}
