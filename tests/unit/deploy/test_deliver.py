from __future__ import annotations

import json
from pathlib import Path

import pytest

from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import RollbackError, deploy, read_pointer, rollback
from platformctl.deploy.store import LocalStore, StoreError
from tests.store_faults import cut_off


def make_repo(root: Path, n: int = 20) -> Path:
    (root / "dags").mkdir(parents=True)
    (root / "pipelines").mkdir()
    for i in range(n):
        (root / "dags" / f"p{i}.py").write_text(f"# airflow dag {i}\n")
    (root / "pipelines/p0.yaml").write_text("dag: {name: p0}\n")
    (root / "flavors.yaml").write_text("flavors: {}\n")
    return root


def live_files(store: LocalStore, prefix: str) -> dict[str, bytes]:
    ptr = read_pointer(store, prefix)
    base = store.root / ptr["prefix"]
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()
            and p.name != "bundle-manifest.json"}


def test_deploy_then_noop_redeploy_uploads_nothing(tmp_path):
    repo, store = make_repo(tmp_path / "repo"), LocalStore(tmp_path / "store")
    b = collect(repo, image_digest="sha256:" + "a" * 64, commit="abc")
    r1 = deploy(store, "envs/dev", b)
    assert r1.uploaded_files == 22 and not r1.already_live
    r2 = deploy(store, "envs/dev", collect(repo, image_digest="sha256:" + "a" * 64, commit="abc"))
    assert r2.already_live and r2.uploaded_bytes == 0 and r2.version == r1.version
    ptr = read_pointer(store, "envs/dev")
    assert ptr["image_digest"] == "sha256:" + "a" * 64 and ptr["commit"] == "abc"


def test_one_change_uploads_only_that_file_and_drops_stale_ones(tmp_path):
    repo, store = make_repo(tmp_path / "repo"), LocalStore(tmp_path / "store")
    deploy(store, "p", collect(repo))
    (repo / "dags/p3.py").write_text("# airflow dag changed\n")
    (repo / "dags/p7.py").unlink()
    r = deploy(store, "p", collect(repo))
    assert r.uploaded_files == 1 and r.copied_files == 20
    live = live_files(store, "p")
    assert live["dags/p3.py"] == b"# airflow dag changed\n"
    assert "dags/p7.py" not in live  # stale files never reach the live view


def test_interrupted_upload_leaves_previous_bundle_live_and_complete(tmp_path):
    repo = make_repo(tmp_path / "repo")
    good = LocalStore(tmp_path / "store")
    deploy(good, "p", collect(repo))
    before = live_files(good, "p")
    for i in range(20):
        (repo / f"dags/p{i}.py").write_text(f"# airflow dag v2 {i}\n")
    with pytest.raises(StoreError):
        deploy(cut_off(LocalStore(tmp_path / "store"), after=7), "p", collect(repo))
    assert live_files(good, "p") == before
    # the next attempt completes, reusing what the interrupted one already uploaded
    r = deploy(good, "p", collect(repo))
    assert r.uploaded_files == 13
    assert live_files(good, "p")["dags/p0.py"] == b"# airflow dag v2 0\n"


def test_rollback_to_previous_and_to_a_named_version(tmp_path):
    repo, store = make_repo(tmp_path / "repo"), LocalStore(tmp_path / "store")
    v1 = deploy(store, "p", collect(repo)).version
    (repo / "dags/p1.py").write_text("# airflow dag v2\n")
    v2 = deploy(store, "p", collect(repo)).version
    assert tuple(rollback(store, "p")) == (v2, v1)
    assert read_pointer(store, "p")["version"] == v1
    assert tuple(rollback(store, "p", to=v2)) == (v1, v2)
    # redeploying v1's content is now only a pointer switch
    (repo / "dags/p1.py").write_text("# airflow dag 1\n")
    r = deploy(store, "p", collect(repo))
    assert r.version == v1 and r.uploaded_files == 0 and r.copied_files == 0


def test_rollback_errors_are_clear(tmp_path):
    repo, store = make_repo(tmp_path / "repo"), LocalStore(tmp_path / "store")
    with pytest.raises(RollbackError, match="nothing is deployed"):
        rollback(store, "p")
    deploy(store, "p", collect(repo))
    with pytest.raises(RollbackError, match="only version"):
        rollback(store, "p")
    with pytest.raises(RollbackError) as exc:
        rollback(store, "p", to="b-0000000000000000")
    assert "not a complete bundle" in exc.value.message


def test_version_is_content_addressed(tmp_path):
    repo = make_repo(tmp_path / "repo")
    a = collect(repo, image_digest="sha256:1")
    assert collect(repo, image_digest="sha256:1").version == a.version
    assert collect(repo, image_digest="sha256:2").version != a.version
    (repo / "dags/__pycache__").mkdir()
    (repo / "dags/__pycache__/x.pyc").write_bytes(b"\0")
    assert collect(repo, image_digest="sha256:1").version == a.version


def test_manifest_lists_every_file_with_its_hash(tmp_path):
    repo, store = make_repo(tmp_path / "repo"), LocalStore(tmp_path / "store")
    r = deploy(store, "p", collect(repo, commit="c0ffee"))
    m = json.loads((store.root / r.live_prefix / "bundle-manifest.json").read_text())
    assert len(m["files"]) == 22 and m["commit"] == "c0ffee"
    assert all(len(v["sha256"]) == 64 for v in m["files"].values())
