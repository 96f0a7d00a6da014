from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from platformctl.deploy.managed import helm_values, write_config
from platformctl.deploy.policy import JobUse, PolicyError, check_policy, job_uses
from platformctl.environments import load_environment
from platformctl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "ab" * 32


def test_helm_values_parse_and_pin_the_digest(tmp_path):
    env = load_environment(ROOT, "dev")
    image = {"repository": "127.0.0.1:5000/ml-platform/airflow", "tag": "1.2.3", "digest": DIGEST,
             "airflow_version": "3.3.2"}
    values_path, env_path = write_config(tmp_path, env, env.bundle.prefix, image)
    values = yaml.safe_load(values_path.read_text())
    assert values["airflowVersion"] == values["defaultAirflowTag"] == "3.3.2"
    assert values["images"]["airflow"] == {"repository": image["repository"], "tag": "1.2.3", "digest": DIGEST,
                                           "pullPolicy": "IfNotPresent"}
    assert "dag_bundle_config_list" not in values["config"].get("dag_processor", {})  # the chart's own value instead
    bundles = values["dagProcessor"]["dagBundleConfigList"]
    assert bundles == [{"name": "ml-platform", "classpath": "ml_platform.bundle.PlatformDagBundle",
                        "kwargs": {"store": "s3", "aws_conn_id": "aws_default", "bucket_name": "ml-platform-dags",
                                   "prefix": "airflow/dev", "refresh_interval": 30}}]
    assert values["config"]["core"]["load_examples"] == "False"
    env_vars = {e["name"]: e["value"] for e in values["env"]}
    assert env_vars["ML_PLATFORM_ALLOWED_FLAVORS"] == "cpu-small,cpu-medium,cpu-large,mem-large"
    assert env_vars["AIRFLOW_VAR_ENVIRONMENT"] == "dev"
    assert json.loads(env_vars["AIRFLOW_CONN_AWS_DEFAULT"]) == {"conn_type": "aws"}  # no credentials, ever
    assert "secret" not in values  # no credentials secret named: the usual AWS chain
    assert f"ML_PLATFORM_IMAGE=127.0.0.1:5000/ml-platform/airflow@{DIGEST}" in env_path.read_text()
    assert "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST='[" in env_path.read_text()


def test_charts_before_1_19_get_the_bundle_list_as_a_config_override(tmp_path):
    env = load_environment(ROOT, "dev")
    new = helm_values(env, env.bundle.prefix, {"repository": "r/airflow", "tag": "1.2.3"})
    env = env.model_copy(update={"managed": env.managed.model_copy(update={"chart_version": "1.18.0"})})
    old = helm_values(env, env.bundle.prefix, {"repository": "r/airflow", "tag": "1.2.3"})
    assert "dagProcessor" not in old
    assert json.loads(old["config"]["dag_processor"]["dag_bundle_config_list"]) == new["dagProcessor"]["dagBundleConfigList"]


def test_endpoint_connection_and_credentials_secret_reach_the_instance(tmp_path):
    env = load_environment(ROOT, "dev")
    env = env.model_copy(update={"bundle": env.bundle.model_copy(update={
        "endpoint_url": "http://seaweed.store:8333", "region": "eu-west-1", "aws_conn_id": "dags_store",
        "credentials_secret": "dags-store-credentials"})})
    image = {"repository": "r/airflow", "tag": "1.2.3", "digest": DIGEST, "airflow_version": "3.3.2"}
    values_path, env_path = write_config(tmp_path, env, env.bundle.prefix, image)
    values = yaml.safe_load(values_path.read_text())
    kwargs = values["dagProcessor"]["dagBundleConfigList"][0]["kwargs"]
    assert kwargs["endpoint_url"] == "http://seaweed.store:8333" and kwargs["aws_conn_id"] == "dags_store"
    conn = json.loads({e["name"]: e["value"] for e in values["env"]}["AIRFLOW_CONN_DAGS_STORE"])
    assert conn == {"conn_type": "aws", "extra": {"endpoint_url": "http://seaweed.store:8333",
                                                  "region_name": "eu-west-1"}}
    assert values["secret"] == [
        {"envName": "AWS_ACCESS_KEY_ID", "secretName": "dags-store-credentials", "secretKey": "AWS_ACCESS_KEY_ID"},
        {"envName": "AWS_SECRET_ACCESS_KEY", "secretName": "dags-store-credentials",
         "secretKey": "AWS_SECRET_ACCESS_KEY"}]
    assert "AIRFLOW_CONN_DAGS_STORE=" in env_path.read_text() and "SECRET" not in env_path.read_text()


def test_config_does_not_depend_on_the_live_version(tmp_path):
    env = load_environment(ROOT, "dev")
    image = {"repository": "r/airflow", "tag": "1.2.3", "digest": DIGEST, "airflow_version": "3.3.2"}
    a = [p.read_bytes() for p in write_config(tmp_path / "a", env, env.bundle.prefix, image)]
    b = [p.read_bytes() for p in write_config(tmp_path / "b", env, env.bundle.prefix, image)]
    assert a == b


def test_no_image_is_refused_instead_of_tag_null(tmp_path):
    from platformctl.deploy.managed import ImageMissing

    env = load_environment(ROOT, "dev")
    with pytest.raises(ImageMissing) as exc:
        write_config(tmp_path, env, env.bundle.prefix, {"repository": "r/airflow", "tag": None, "digest": None})
    assert "no image for dev" in exc.value.message and "make build" in exc.value.hint
    assert not (tmp_path / "deploy/dev/values.yaml").exists()


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
    from platformctl.config import load_config
    from platformctl.deploy.images import environment_image

    def image_info(root, env, cfg):  # what deploy writes into the managed config
        return environment_image(root, cfg, env).for_deploy()

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


def test_the_env_file_reads_back_as_written_by_dotenv_and_sh(tmp_path):
    import shlex
    import subprocess

    from dotenv import dotenv_values

    from platformctl.deploy.managed import env_vars

    env = load_environment(ROOT, "dev")
    image = {"repository": "r/airflow", "tag": "1.2.3", "digest": DIGEST, "airflow_version": "3.3.2"}
    _, env_path = write_config(tmp_path, env, env.bundle.prefix, image)
    want = env_vars(env, env.bundle.prefix, image)
    assert dotenv_values(env_path, interpolate=False) == want  # compose's env_file reads it the same way
    names = " ".join(f'"${k}"' for k in want)
    out = subprocess.run(["sh", "-c", f"set -a; . {shlex.quote(str(env_path))}; printf '%s\\0' {names}"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split("\0")[:-1] == list(want.values())
