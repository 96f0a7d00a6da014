"""Issue 38 in the built image over S3 (SeaweedFS): the bundle class configured as the written airflow.env says
(allowed keys, signatures required) serves a signed version, and refuses an unsigned one both as the DAG
processor (the last good version stays, one line) and as a worker fetching that version pinned."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from ml_platform import bundle_format as fmt
from securesystemslib.signer import CryptoSigner

from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy
from platformctl.deploy.store import S3Store
from tests.conftest import ROOT
from tests.integration.deploy.test_s3_bundle_in_image import in_image, repo_copy  # noqa: F401 - the fixture


def test_the_bundle_in_the_image_refuses_an_unsigned_version_as_processor_and_pinned_worker(
        docker, image, s3_env, bucket, repo_copy, tmp_path):  # noqa: F811
    key = CryptoSigner.generate_ed25519()
    (tmp_path / "k.pem").write_bytes(key.private_bytes)
    env_file = repo_copy / "environments/s3test.yaml"
    doc = yaml.safe_load(env_file.read_text())
    doc["signing"] = {"require_signatures": True, "allowed_keys": [fmt.public_hex(key)]}
    env_file.write_text(yaml.safe_dump(doc))
    p = subprocess.run([sys.executable, str(ROOT / "build.py"), "deploy", "--env", "s3test"], capture_output=True, check=False,
                       text=True, env={"PLATFORM_ROOT": str(repo_copy), "PATH": "/usr/bin:/bin",
                                       "AWS_ACCESS_KEY_ID": s3_env.access_key,
                                       "AWS_SECRET_ACCESS_KEY": s3_env.secret_key,
                                       "ML_PLATFORM_SIGNING_KEY_FILE": str(tmp_path / "k.pem")})
    assert p.returncode == 0, p.stdout + p.stderr
    storage = tmp_path / "storage"
    storage.mkdir()
    storage.chmod(0o777)
    first, _ = in_image(docker, image, storage, repo_copy, s3_env)
    v1 = first["version"]
    assert first["errors"] == {}

    # someone with write access to the bucket deploys without the key
    (repo_copy / "dags/p.py").write_text("# airflow dag helper\nVALUE = 'unsigned'\n")
    store = S3Store(bucket, endpoint_url=s3_env.endpoint)
    v2 = deploy(store, "airflow/s3test", collect(repo_copy, image_digest="sha256:" + "e" * 64)).version
    second, log = in_image(docker, image, storage, repo_copy, s3_env, PINNED=f"{v1},{v2}")
    assert second["version"] == v1 and second["errors"] == {}
    refused = [ln for ln in log.splitlines() if f"keeping {v1} live" in ln]
    assert len(refused) == 1 and f"{v2}: refused: the pointer to {v2} is unsigned" in refused[0], log[-3000:]
    assert "VALUE = 'v1'" in second["pinned"][v1]
    assert second["pinned"][v2].startswith("FAULT ") and "unsigned" in second["pinned"][v2], second["pinned"][v2]
    print("\nwritten kwargs: " + json.dumps(yaml.safe_load((repo_copy / "deploy/s3test/values.yaml").read_text())
                                            ["dagProcessor"]["dagBundleConfigList"][0]["kwargs"]))
