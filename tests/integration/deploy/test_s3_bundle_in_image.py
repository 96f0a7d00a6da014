"""`build.py deploy` to a real S3 server delivers a bundle that the amazon provider's S3DagBundle,
run inside the built image, fetches and parses with zero import errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

FETCH_AND_PARSE = """
import json, os
from airflow.providers.amazon.aws.bundles.s3 import S3DagBundle
from airflow.dag_processing.dagbag import DagBag
b = S3DagBundle(name="ml-platform", bucket_name=os.environ["BUCKET"], prefix=os.environ["PREFIX"], refresh_interval=300)
b.initialize()
files = sorted(str(p.relative_to(b.path)) for p in b.path.rglob("*") if p.is_file())
bag = DagBag(str(b.path), safe_mode=False)
print("RESULT " + json.dumps({"files": files, "dags": sorted(bag.dag_ids),
                              "errors": {k: str(v)[-1500:] for k, v in bag.import_errors.items()}}))
"""


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
    (repo / "environments").mkdir()
    (repo / "environments/s3test.yaml").write_text(yaml.safe_dump({
        "bundle": {"kind": "s3", "bucket": bucket, "prefix": "airflow/s3test", "endpoint_url": s3_server.endpoint},
    }))
    return repo


def test_deployed_bundle_is_fetched_and_parsed_by_s3dagbundle_in_the_image(docker, image, s3_env, bucket, repo_copy):
    env = {"PLATFORM_ROOT": str(repo_copy), "PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": s3_env.access_key,
           "AWS_SECRET_ACCESS_KEY": s3_env.secret_key}
    p = subprocess.run([sys.executable, str(ROOT / "build.py"), "deploy", "--env", "s3test"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    values = yaml.safe_load((repo_copy / "deploy/s3test/values.yaml").read_text())
    bundles = json.loads(values["config"]["dag_processor"]["dag_bundle_config_list"])
    kwargs = bundles[0]["kwargs"]
    assert bundles[0]["classpath"].endswith("S3DagBundle") and kwargs["bucket_name"] == bucket

    conn = json.dumps({"conn_type": "aws", "login": s3_env.access_key, "password": s3_env.secret_key,
                       "extra": {"endpoint_url": s3_env.endpoint, "region_name": "us-east-1"}})
    run = subprocess.run([docker, "run", "--rm", "--network", "host",
                          "-e", f"AIRFLOW_CONN_AWS_DEFAULT={conn}", "-e", f"BUCKET={bucket}",
                          "-e", f"PREFIX={kwargs['prefix']}", "-e", "ML_PLATFORM_BACKEND=kubernetes",
                          image, "python", "-c", FETCH_AND_PARSE], capture_output=True, text=True, timeout=300)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, run.stdout[-2000:] + run.stderr[-3000:]
    result = json.loads(line[len("RESULT "):])
    expected = sorted(p.relative_to(repo_copy).as_posix() for p in (repo_copy / "dags").rglob("*.py"))
    assert set(expected) <= set(result["files"]) and expected
    assert result["errors"] == {}
    assert len(result["dags"]) >= len(expected)
