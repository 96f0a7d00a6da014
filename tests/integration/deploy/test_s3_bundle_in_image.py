"""`build.py deploy` to a real S3 server (SeaweedFS) and the platform's bundle class inside the built image,
configured exactly as the written airflow.env says (bundle list, connection without credentials; the
credentials from the usual AWS chain): it follows the pointer, parses with zero import errors, serves a
pinned version, refuses a tampered one and keeps serving the last good version, also after a restart and
with the store unreachable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.bundle_tamper import tamper
from tests.conftest import ROOT


BUNDLE = """
import json, logging, os, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="LOG %(levelname)s %(message)s")
from ml_platform.bundle import PlatformDagBundle, BundleFault
from airflow.dag_processing.dagbag import DagBag
cfg = json.loads(os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])[0]
kwargs = dict(cfg["kwargs"])
if os.environ.get("ENDPOINT_OVERRIDE"):
    kwargs["endpoint_url"] = os.environ["ENDPOINT_OVERRIDE"]
out = {}
b = PlatformDagBundle(name=cfg["name"], **kwargs)
b.initialize()
v = b.get_current_version()
out["version"] = getattr(v, "version", v)  # Airflow 3.2: the bare string
out["files"] = sorted(str(p.relative_to(b.path)) for p in b.path.rglob("*") if p.is_file())
bag = DagBag(str(b.path), safe_mode=False)
out["dags"] = sorted(bag.dag_ids)
out["errors"] = {k: str(v)[-1500:] for k, v in bag.import_errors.items()}
out["pinned"] = {}
for v in filter(None, os.environ.get("PINNED", "").split(",")):
    try:
        p = PlatformDagBundle(name=cfg["name"], version=v, **kwargs)
        p.initialize()
        out["pinned"][v] = (p.path / "dags/p.py").read_text()
    except BundleFault as exc:
        out["pinned"][v] = "FAULT " + str(exc)
print("RESULT " + json.dumps(out))
"""


def env_file_vars(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v or "" for k, v in dotenv_values(path, interpolate=False).items()}


@pytest.fixture
def repo_copy(tmp_path: Path, s3_server, bucket) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for item in ("dags", "pipelines", "templates", "flavors.yaml", "platform.yaml", "requirements", "build"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, repo / item)
        elif src.exists():
            shutil.copy(src, repo / item)
    (repo / "dags/p.py").write_text("# airflow dag helper\nVALUE = 'v1'\n")
    (repo / "environments").mkdir()
    (repo / "environments/s3test.yaml").write_text(yaml.safe_dump({
        "bundle": {"kind": "s3", "bucket": bucket, "prefix": "airflow/s3test", "endpoint_url": s3_server.endpoint},
    }))
    return repo


def in_image(docker, image, storage: Path, repo: Path, s3_env, **extra) -> tuple[dict, str]:
    env = env_file_vars(repo / "deploy/s3test/airflow.env")
    args = [docker, "run", "--rm", "--network", "host", "-v", f"{storage}:/bundles",
            "-e", "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH=/bundles",
            "-e", f"AWS_ACCESS_KEY_ID={s3_env.access_key}", "-e", f"AWS_SECRET_ACCESS_KEY={s3_env.secret_key}",
            "-e", "AWS_DEFAULT_REGION=us-east-1", "-e", "ML_PLATFORM_BACKEND=kubernetes"]
    for k, v in {**env, **extra}.items():  # everything the written airflow.env sets, as a host would
        args += ["-e", f"{k}={v}"]
    run = subprocess.run([*args, image, "python", "-c", BUNDLE], capture_output=True, text=True, timeout=300)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(line[len("RESULT "):]), run.stdout + run.stderr


def deploy(repo: Path, s3_env) -> subprocess.CompletedProcess:
    env = {"PLATFORM_ROOT": str(repo), "PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": s3_env.access_key,
           "AWS_SECRET_ACCESS_KEY": s3_env.secret_key}
    p = subprocess.run([sys.executable, str(ROOT / "build.py"), "deploy", "--env", "s3test"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_the_bundle_in_the_image_follows_s3_and_refuses_tampering(docker, image, s3_env, bucket, repo_copy,
                                                                  tmp_path):
    deploy(repo_copy, s3_env)
    values = yaml.safe_load((repo_copy / "deploy/s3test/values.yaml").read_text())
    bundles = values["dagProcessor"]["dagBundleConfigList"]
    assert bundles[0]["classpath"] == "ml_platform.bundle.PlatformDagBundle"
    assert bundles[0]["kwargs"]["endpoint_url"] == s3_env.endpoint and bundles[0]["kwargs"]["prefix"] == "airflow/s3test"
    env = env_file_vars(repo_copy / "deploy/s3test/airflow.env")
    conn = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn == {"conn_type": "aws", "extra": {"endpoint_url": s3_env.endpoint}}  # no credentials written

    storage = tmp_path / "storage"
    storage.mkdir()
    storage.chmod(0o777)
    first, _ = in_image(docker, image, storage, repo_copy, s3_env)
    v1 = first["version"]
    expected = sorted(p.relative_to(repo_copy).as_posix() for p in (repo_copy / "dags").rglob("*.py"))
    assert set(expected) <= set(first["files"]) and "bundle-manifest.json" in first["files"]
    assert first["errors"] == {} and len(first["dags"]) >= 3

    (repo_copy / "dags/p.py").write_text("# airflow dag helper\nVALUE = 'v2'\n")
    deploy(repo_copy, s3_env)
    client = s3_env.client()
    v2 = json.loads(client.get_object(Bucket=bucket, Key="airflow/s3test/current.json")["Body"].read())["version"]
    tamper(lambda k: client.get_object(Bucket=bucket, Key=k)["Body"].read(),
           lambda k, d: client.put_object(Bucket=bucket, Key=k, Body=d),
           f"airflow/s3test/bundles/{v2}", "dags/p.py", b"VALUE = 'evil'\n")  # the file and its archive

    # a restarted DAG processor (same bundle storage): the last good version serves, one line names the file
    second, log = in_image(docker, image, storage, repo_copy, s3_env, PINNED=f"{v1},{v2}")
    assert second["version"] == v1 and second["errors"] == {}
    refused = [ln for ln in log.splitlines() if f"keeping {v1} live" in ln]
    assert len(refused) == 1 and f"{v2}: file dags/p.py has sha256" in refused[0], log[-3000:]
    assert "VALUE = 'v1'" in second["pinned"][v1]  # a worker on a v1 run gets v1
    assert second["pinned"][v2].startswith("FAULT ") and "dags/p.py" in second["pinned"][v2]

    # the store unreachable: still the last good version
    third, log = in_image(docker, image, storage, repo_copy, s3_env, ENDPOINT_OVERRIDE="http://127.0.0.1:9")
    assert third["version"] == v1 and f"keeping {v1} live: cannot read" in log
