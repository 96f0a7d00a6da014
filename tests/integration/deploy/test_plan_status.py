"""make plan / status / diff against the real registry (docker-registry) and S3 (SeaweedFS).

The shipped repository (pipelines, flavors, environments) deploys to every shipped environment; plan
shows changes, then none after deploy; a forbidden flavor is refused; status after promote; drift after a
dev-only deploy; plan, status and diff leave the store and the registry byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import requests
import yaml

from tests.integration.deploy.conftest import bucket, s3_env, s3_server  # noqa: F401 - fixtures
from tests.integration.helpers import working_tree_copy
from tests.integration.registry.conftest import (PASSWORD, USER, Project, creds_env, project,  # noqa: F401
                                                 registry, tiny_image)


def point_at_s3(root, endpoint: str, bucket_name: str) -> None:
    for name in ("dev", "prod"):
        path = root / "environments" / f"{name}.yaml"
        data = yaml.safe_load(path.read_text())
        data["bundle"].update(endpoint_url=endpoint, bucket=bucket_name)
        path.write_text(yaml.safe_dump(data, sort_keys=False))


def store_bytes(client, bucket_name: str) -> dict[str, str]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket_name):
        for o in page.get("Contents", []):
            body = client.get_object(Bucket=bucket_name, Key=o["Key"])["Body"].read()
            out[o["Key"]] = hashlib.sha256(body).hexdigest()
    return out


def registry_state(reg) -> dict:
    cat = requests.get(f"http://{reg.host}/v2/_catalog", auth=(USER, PASSWORD), timeout=5).json()["repositories"]
    return {r: {t: reg.digest(r, t) for t in reg.tags(r)} for r in sorted(cat)}


def test_the_shipped_repository_deploys_to_every_shipped_environment(s3_env, bucket, tmp_path):  # noqa: F811
    root = working_tree_copy(tmp_path / "repo")
    point_at_s3(root, s3_env.endpoint, bucket)
    (root / "build").mkdir(exist_ok=True)  # a local build (deploy refuses a config that names no image)
    (root / "build" / "build-record.json").write_text(json.dumps(
        {"tags": ["ml-platform-airflow:0.1.0-dev.1"], "image_id": "sha256:local", "digest": None}))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": s3_env.access_key, "AWS_SECRET_ACCESS_KEY": s3_env.secret_key}
    env.pop("PLATFORM_ROOT", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "build.py", *args], cwd=root, capture_output=True, text=True,
                              env=env, timeout=600)

    envs = sorted(f.stem for f in (root / "environments").glob("*.yaml")) + ["local"]
    assert envs == ["dev", "prod", "local"]
    for name in envs:
        r = run("deploy", "--env", name)
        assert r.returncode == 0, f"{name}: {r.stdout}{r.stderr}"
        assert f"{name}: b-" in r.stdout
        r = run("plan", "--env", name, "--no-resources")
        assert r.returncode == 0, f"{name}: {r.stdout}{r.stderr}"  # deployed: nothing left to change


@pytest.fixture
def shipped(project: Project, s3_env, bucket, docker, tmp_path):  # noqa: F811
    point_at_s3(project.path, s3_env.endpoint, bucket)
    project.git("add", "environments")
    project.git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "test: stores on SeaweedFS")
    project.env.update(AWS_ACCESS_KEY_ID=s3_env.access_key, AWS_SECRET_ACCESS_KEY=s3_env.secret_key)
    project.image = tiny_image(docker, tmp_path, fingerprint=project.fingerprint())
    project.bucket = bucket
    project.s3 = s3_env.client()
    return project


def ok(r, *codes: int) -> str:
    assert r.returncode in (codes or (0,)), f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_plan_deploy_release_promote_status_drift_diff(shipped: Project):
    p = shipped
    p.record(p.image)
    ok(p.run("push"))

    out = ok(p.run("plan", "--env", "dev", "--no-resources"), 50)
    assert "plan for dev (make deploy ENV=dev): changes" in out and "bundle (none) -> b-" in out
    assert "note: dev is not deployed yet" in out

    # never deployed: not an error
    st = json.loads(ok(p.run("status", "--json")))
    assert st["environments"]["dev"]["deployed"] is False and st["errors"] == []
    assert "not deployed yet" in ok(p.run("status"))

    ok(p.run("deploy", "--env", "dev"))
    out = ok(p.run("plan", "--env", "dev", "--no-resources"))
    assert "plan for dev (make deploy ENV=dev): no changes" in out

    ok(p.run("release", "--version", "1.0.0"))
    out = ok(p.run("plan", "--env", "prod", "--version", "1.0.0", "--no-resources"), 50)
    assert f"promote copies 1.0.0 into {p.registry.host}/ml/airflow-prod" in out
    ok(p.run("promote", "--env", "prod", "--version", "1.0.0"))
    ok(p.run("deploy", "--env", "prod"))

    st = json.loads(ok(p.run("status", "--json")))
    prod, dev = st["environments"]["prod"], st["environments"]["dev"]
    digest = json.loads((p.path / "releases" / "1.0.0.json").read_text())["digest"]
    assert prod["image"]["digest"] == digest and prod["image"]["releases"] == ["1.0.0"]
    assert prod["newest_release"] == {"version": "1.0.0", "digest": digest} and prod["flags"] == []
    assert prod["bundle"]["commit"] == p.git("rev-parse", "HEAD")
    assert dev["image"]["releases"] == ["1.0.0"] and dev["flags"] == []
    assert st["environments"]["local"]["deployed"] is False

    # a dev-only change and deploy: drift between dev and prod
    etl = p.path / "pipelines" / "example_etl.yaml"
    p.commit_file("pipelines/example_etl.yaml", etl.read_text().replace("resource_flavor: cpu-medium",
                                                                        "resource_flavor: cpu-large"),
                  "train on cpu-large")
    p.record(p.image)
    ok(p.run("push"))
    out = ok(p.run("plan", "--env", "dev", "--no-resources"), 50)
    assert "job pipelines/example_etl.yaml jobs.train: flavor cpu-medium -> cpu-large" in out
    assert "~ dags/example_etl.py" in out
    ok(p.run("deploy", "--env", "dev"))

    before_store, before_reg = store_bytes(p.s3, p.bucket), registry_state(p.registry)
    t0 = time.perf_counter()
    out = ok(p.run("status"))
    seconds = time.perf_counter() - t0
    print(f"make status (3 environments, 2 deployed, local registry + SeaweedFS): {seconds:.2f}s")  # not asserted
    assert "drift dev -> prod: different bundles, same image" in out
    assert "train on cpu-large" in out  # the commit dev has and prod has not
    st = json.loads(ok(p.run("status", "--json")))
    d = st["drift"][0]
    assert (d["from"], d["to"]) == ("dev", "prod")
    assert [c.split(" ", 1)[1] for c in d["commits"]["behind"]] == ["train on cpu-large"]
    assert d["pins"] == [] and d["same_image"] is True

    out = ok(p.run("diff", "--from", "dev", "--to", "prod"))
    assert "differs: pipelines/example_etl.yaml" in out and "differs: dags/example_etl.py" in out
    assert "registry.repository: None -> " in out and "allowed_flavors" in out
    assert "job pipelines/example_etl.yaml jobs.train: flavor cpu-large -> cpu-medium" in out
    data = json.loads(ok(p.run("diff", "--from", "dev", "--to", "prod", "--json")))
    assert data["files"]["different"] == ["dags/example_etl.py", "pipelines/example_etl.yaml"]

    # a forbidden flavor: refused, and nothing changed anywhere
    etl.write_text(etl.read_text().replace("resource_flavor: cpu-large", "resource_flavor: gpu-a100"))
    r = p.run("plan", "--env", "dev", "--no-resources")
    assert r.returncode == 51, r.stdout + r.stderr
    assert "policy: REFUSED" in r.stdout and "jobs.train uses flavor 'gpu-a100', which dev does not allow" in r.stdout
    ok(p.run("plan", "--env", "prod", "--no-resources"), 50)  # prod allows every flavor
    assert store_bytes(p.s3, p.bucket) == before_store
    assert registry_state(p.registry) == before_reg


def test_status_names_what_it_cannot_read_and_prints_the_rest(shipped: Project):
    p = shipped
    p.record(p.image)
    ok(p.run("push"))
    ok(p.run("deploy", "--env", "dev"))
    p.registry.kill()
    try:
        r = p.run("status")
    finally:
        p.registry.start()
    assert r.returncode == 52, r.stdout + r.stderr
    assert "bundle b-" in r.stdout  # dev's bundle is still shown, from the store
    # the outage once (not once per environment on that registry, nor again on stderr), one line at the edge
    (outage,) = [ln for ln in r.stdout.splitlines() if ln.startswith("unreadable: registry ")]
    assert "dev" in outage and "unavailable" in outage and r.stdout.count("unavailable") == 1
    assert "unavailable" not in r.stderr and r.stderr.strip().splitlines()[-1].startswith("error: 1 part(s) could not")
    r = p.run("status", env={"AWS_SECRET_ACCESS_KEY": "wrong"})
    assert r.returncode == 52
    (store,) = [ln for ln in r.stdout.splitlines() if "dev: bundle store: " in ln]
    assert store.startswith("unreadable: ") and "refused the credentials" in store
    assert "local:" in r.stdout and "not deployed yet" in r.stdout  # the environments it could read
