"""Issue 38 against a real S3 store (SeaweedFS), through the CLI as `make` runs it: signed deploys, the key checked
before upload, the deploy ledger (history, rollback to an entry, status), a v2-only bundle refused before the
switch when the environment's image serves only format 1, and shipped with IMAGE=<release> that does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PREFIX = "airflow/dev"
V1_IMAGE = "ml_platform=0.1.0 formats=1"
V2_IMAGE = "ml_platform=0.1.0 formats=1,2"
DIGEST = "sha256:" + "c" * 64


def cli(repo: Path, s3, *args: str, key: Path | None = None, **extra) -> subprocess.CompletedProcess:
    env = {"PLATFORM_ROOT": str(repo), "PATH": os.environ["PATH"], "HOME": str(repo),
           "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key, **extra}
    if key is not None:
        env["ML_PLATFORM_SIGNING_KEY_FILE"] = str(key)
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *args], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture
def repo(tmp_path, s3_server, bucket) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for item in ("pipelines", "templates", "flavors.yaml", "platform.yaml", "requirements"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / item)
    for p in (repo / "pipelines").glob("*.yaml"):  # format 1 pipelines only, to start with
        if (yaml.safe_load(p.read_text()) or {}).get("version", 1) != 1:
            p.unlink()
    (repo / "dags").mkdir()
    (repo / "build").mkdir()
    (repo / "build/build-record.json").write_text(json.dumps({  # the environment's image: serves format 1 only
        "tags": ["ml-platform-airflow:0.1.0-dev.1"], "digest": None, "image_id": "sha256:" + "b" * 64,
        "labels": {"io.ml-platform.serves": V1_IMAGE}}))
    (repo / "environments").mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.email", "deployer@example.invalid"], cwd=repo, check=True)
    return repo


def write_env(repo: Path, s3, bucket: str, allowed: list[str]) -> None:
    (repo / "environments/dev.yaml").write_text(yaml.safe_dump({
        "bundle": {"kind": "s3", "bucket": bucket, "prefix": PREFIX, "endpoint_url": s3.endpoint},
        "signing": {"require_signatures": True, "allowed_keys": allowed}}))


def keypair(repo: Path, s3, name: str) -> tuple[Path, str]:
    out = repo.parent / f"{name}.pem"
    p = cli(repo, s3, "signing-key", "--out", str(out))
    assert p.returncode == 0, p.stderr
    public = next(ln.split(": ")[-1] for ln in p.stdout.splitlines() if ln.startswith("public key"))
    assert oct(out.stat().st_mode)[-3:] == "600"
    return out, public


def keys_in(client, bucket: str) -> list[str]:
    return [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX)
            for o in page.get("Contents", [])]


def test_signed_deploys_the_ledger_and_the_image_check_on_s3(repo, s3_env, bucket):
    t0 = time.monotonic()
    client = s3_env.client()
    k1, pub1 = keypair(repo, s3_env, "k1")
    k2, _ = keypair(repo, s3_env, "k2")
    write_env(repo, s3_env, bucket, [pub1])

    # no key, or a key the environment does not allow: refused before anything is uploaded
    p = cli(repo, s3_env, "deploy", "--env", "dev")
    assert p.returncode == 28 and "requires signed bundles and no signing key is set" in p.stderr, p.stderr
    p = cli(repo, s3_env, "deploy", "--env", "dev", key=k2)
    assert p.returncode == 28 and "is not allowed to sign dev's bundles" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert keys_in(client, bucket) == []

    # a malformed allowed key: file:line
    text = (repo / "environments/dev.yaml").read_text()
    (repo / "environments/dev.yaml").write_text(text.replace(pub1, "zz" + pub1[2:]))
    p = cli(repo, s3_env, "deploy", "--env", "dev", key=k1)
    assert p.returncode == 28 and p.stderr.startswith("error: environments/dev.yaml:8: signing.allowed_keys.0"), p.stderr
    (repo / "environments/dev.yaml").write_text(text)

    p = cli(repo, s3_env, "deploy", "--env", "dev", key=k1)
    assert p.returncode == 0, p.stdout + p.stderr
    pointer = json.loads(client.get_object(Bucket=bucket, Key=f"{PREFIX}/current.json")["Body"].read())
    v1 = pointer["version"]
    assert pointer["envelope"]["payloadType"] == "application/vnd.ml-platform.bundle-pointer.v1+json"
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{PREFIX}/bundles/{v1}/bundle-manifest.json")["Body"]
                          .read())
    assert manifest["pipeline_formats"] == [1] and manifest["ml_platform_version"]
    sig = client.get_object(Bucket=bucket, Key=f"{PREFIX}/bundles/{v1}/bundle-manifest.dsse.json")["Body"].read()
    assert json.loads(sig)["payloadType"] == "application/vnd.ml-platform.bundle-manifest.v1+json"
    kwargs = yaml.safe_load((repo / "deploy/dev/values.yaml").read_text())["dagProcessor"]["dagBundleConfigList"][0]
    assert kwargs["kwargs"]["allowed_keys"] == [pub1] and kwargs["kwargs"]["require_signatures"] is True
    assert kwargs["kwargs"]["environment"] == "dev"

    # a v2-only pipeline on the v1 image: make plan and make deploy say so before the switch; deploy refuses
    _v2_pipeline(repo)
    p = cli(repo, s3_env, "plan", "--env", "dev", "--no-resources", key=k1)
    assert p.returncode == 51 and "REFUSED: the image must be promoted first" in p.stdout, p.stdout + p.stderr
    p = cli(repo, s3_env, "deploy", "--env", "dev", key=k1)
    assert p.returncode == 53 and "pipeline format 2" in p.stderr and "IMAGE=" in p.stderr, p.stderr
    assert json.loads(client.get_object(Bucket=bucket, Key=f"{PREFIX}/current.json")["Body"].read())["version"] == v1
    # told which image comes with it (a release whose image serves format 2): deployed, its config names it
    (repo / "releases").mkdir()
    (repo / "releases/1.1.0.json").write_text(json.dumps({"version": "1.1.0", "digest": DIGEST, "commit": "c" * 40,
                                                          "repository": "r.example/ml/airflow", "serves": V2_IMAGE}))
    p = cli(repo, s3_env, "deploy", "--env", "dev", "--image", "1.1.0", key=k1)
    assert p.returncode == 0, p.stdout + p.stderr
    v2 = json.loads(client.get_object(Bucket=bucket, Key=f"{PREFIX}/current.json")["Body"].read())["version"]
    assert v2 != v1
    assert yaml.safe_load((repo / "deploy/dev/values.yaml").read_text())["images"]["airflow"]["tag"] == "1.1.0"

    # the ledger: newest first, actor from git, the key id, completed
    p = cli(repo, s3_env, "history", "--env", "dev", "--json")
    assert p.returncode == 0, p.stderr
    h = json.loads(p.stdout)
    assert h["total"] == 2 and h["incomplete"] == []
    newest, first = h["entries"]
    assert (newest["version"], newest["from_version"], first["version"]) == (v2, v1, v1)
    assert newest["image_digest"] == DIGEST and newest["actor"] == "deployer@example.invalid"
    assert newest["result"] == "switched" and newest["key_id"] and "+" in newest["summary"]
    p = cli(repo, s3_env, "history", "--env", "dev", "--limit", "1")
    assert p.returncode == 0 and "there are more" in p.stdout and newest["id"] in p.stdout, p.stdout + p.stderr
    assert first["id"] not in p.stdout
    p = cli(repo, s3_env, "history", "--env", "dev", "--limit", "2")
    assert p.returncode == 0 and "2 ledger entries, newest first" in p.stdout and first["id"] in p.stdout

    # rollback to a ledger entry; signed; recorded
    p = cli(repo, s3_env, "rollback", "--env", "dev", "--to", first["id"], key=k1)
    assert p.returncode == 0 and f"rolled back {v2} -> {v1}" in p.stdout, p.stdout + p.stderr
    pointer = json.loads(client.get_object(Bucket=bucket, Key=f"{PREFIX}/current.json")["Body"].read())
    assert pointer["version"] == v1 and "envelope" in pointer
    p = cli(repo, s3_env, "rollback", "--env", "dev", "--to", "e-20990101T000000000Z-abcdef", key=k1)
    assert p.returncode == 54 and "no ledger entry" in p.stderr

    # gc appends an entry too; status shows the last entry and no refusal
    p = cli(repo, s3_env, "gc", "--env", "dev", "--keep", "5")
    assert p.returncode == 0, p.stderr
    p = cli(repo, s3_env, "status", "--json")
    st = json.loads(p.stdout)["environments"]
    assert st["dev"]["last_entry"]["action"] == "gc" and st["dev"]["refused"] is None, p.stdout[-2000:]

    # someone with bucket access switches the pointer to an unsigned copy: status names the refusal
    unsigned = dict(pointer)
    unsigned.pop("envelope")
    unsigned["version"] = v2
    client.put_object(Bucket=bucket, Key=f"{PREFIX}/current.json", Body=json.dumps(unsigned).encode())
    p = cli(repo, s3_env, "status")
    assert f"REFUSED by the instance (the last good version stays live there): {v2}: the pointer to {v2} is " \
           f"unsigned" in p.stdout, p.stdout
    print(f"\nFIGURES test_s3_trust {time.monotonic() - t0:.1f} s")


def _v2_pipeline(repo: Path) -> None:
    src = next(p for p in (ROOT / "pipelines").glob("*.yaml") if (yaml.safe_load(p.read_text()) or {}).get("version") == 2)
    shutil.copy(src, repo / "pipelines" / src.name)


def test_the_ledger_lists_newest_first_in_pages_and_reads_first_layout_entries(s3_env, bucket):
    """On S3: `history` stops its listing after the newest entries (ListObjectsV2 MaxKeys), a full listing
    follows continuation tokens, and entries of the ledger's first layout still show in their place."""
    from ml_platform import bundle_format as fmt

    from platformctl.deploy.ledger import Ledger, new_id
    from platformctl.deploy.store import S3Store

    store = S3Store(bucket, endpoint_url=s3_env.endpoint)
    calls: list[dict] = []
    list_objects = store.client.list_objects_v2

    def counted(**kw):
        calls.append(kw)
        return list_objects(**kw)

    store.client.list_objects_v2 = counted
    ledger = Ledger(store, PREFIX, "dev")
    ids = []
    for n in range(12):
        e = ledger.begin("deploy", version=f"b-{n:016x}", who="tester")
        ids.append(e.id)
        if n != 11:
            ledger.complete(e, "switched")
        time.sleep(0.002)  # ids a millisecond apart at least: one order
    old = new_id()  # an older client writes the first layout after all of them
    store.put_if(fmt.ledger_key(PREFIX, old, ranked=False), json.dumps(
        {"id": old, "action": "gc", "environment": "dev", "actor": "old", "time": "2026-12-06T00:00:00Z"}).encode(),
        None)
    store.put_if(fmt.ledger_key(PREFIX, old, done=True, ranked=False),
                 json.dumps({"id": old, "result": "removed 0 version(s)"}).encode(), None)

    calls.clear()
    h = ledger.history(3)
    assert [e.id for e in h.entries] == [old, ids[11], ids[10]] and h.total is None
    assert h.entries[0].result.startswith("removed") and h.entries[1].result is None
    assert h.incomplete == [ids[11]]
    assert [c["MaxKeys"] for c in calls] == [8, 1000] and "StartAfter" in calls[1]  # one page; then the old layout

    keys = list(store.keys(f"{PREFIX}/ledger/", page=5))  # 25 objects in pages of 5, then of 1000
    assert len(keys) == 25 and keys == sorted(keys)
    assert list(store.keys(f"{PREFIX}/ledger/", start_after=keys[20])) == keys[21:]
    h = ledger.history(0)
    assert [e.id for e in h.entries] == [old, *ids[::-1]] and h.total == 13 and h.incomplete == [ids[11]]
