"""Compare-and-swap on the pointer, the lock-object fallback, and make gc's retention, on a real folder store."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from platformctl.deploy import deliver
from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import DeployConflict, deploy, gc, read_pointer, rollback, version_prefix
from platformctl.deploy.store import LocalStore

P = "envs/t"


def repo(tmp_path: Path, tag: str) -> Path:
    root = tmp_path / f"repo-{tag}"
    (root / "dags").mkdir(parents=True)
    (root / "dags/d.py").write_text(f"# airflow dag {tag}\n")
    return root


class Gate(LocalStore):
    """Both deploys reach the pointer switch before either writes it."""

    def __init__(self, root, barrier):
        super().__init__(root)
        self.barrier = barrier

    def put_if(self, key, data, etag):
        if key.endswith("current.json"):
            self.barrier.wait(timeout=20)
        super().put_if(key, data, etag)


def race(stores, bundles):
    results = [None] * len(stores)

    def one(i):
        try:
            results[i] = deploy(stores[i], P, bundles[i]).version
        except DeployConflict as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_two_deploys_at_once_exactly_one_wins(tmp_path):
    base = LocalStore(tmp_path / "store")
    deploy(base, P, collect(repo(tmp_path, "v0")))
    barrier = threading.Barrier(2)
    b1, b2 = collect(repo(tmp_path, "a")), collect(repo(tmp_path, "b"))
    results = race([Gate(base.root, barrier), Gate(base.root, barrier)], [b1, b2])
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, DeployConflict)]
    assert len(winners) == 1 and len(losers) == 1, results
    live = read_pointer(base, P)
    assert live["version"] == winners[0]
    assert base.get(version_prefix(P, live["version"]) + "/bundle-manifest.json")  # a complete version
    assert f"another deploy or rollback made {winners[0]} live" in losers[0].one_line()
    assert losers[0].exit_code == 23


def test_a_deploy_that_read_an_old_pointer_cannot_overwrite_a_newer_one(tmp_path):
    store = LocalStore(tmp_path / "store")
    deploy(store, P, collect(repo(tmp_path, "v0")))
    pointer, etag = deliver.read_pointer_tagged(store, P)
    newer = deploy(store, P, collect(repo(tmp_path, "v1"))).version
    with pytest.raises(DeployConflict):
        deliver._switch(store, P, "b-stale", {}, pointer, etag)
    assert read_pointer(store, P)["version"] == newer


class NoConditional(LocalStore):
    def conditional_writes(self) -> bool:
        return False


def test_stores_without_conditional_writes_use_a_lock_object(tmp_path, monkeypatch):
    monkeypatch.setattr(deliver, "LOCK_SETTLE", 0.3)
    base = NoConditional(tmp_path / "store")
    deploy(base, P, collect(repo(tmp_path, "v0")))
    b1, b2 = collect(repo(tmp_path, "a")), collect(repo(tmp_path, "b"))
    results = race([NoConditional(base.root), NoConditional(base.root)], [b1, b2])
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, DeployConflict)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert read_pointer(base, P)["version"] == winners[0]
    assert not base.get(f"{P}/deploy.lock")  # released
    # a live lock held by someone else refuses a deploy, naming that deploy's version
    base.put(f"{P}/deploy.lock", json.dumps({"owner": "x", "version": "b-other", "host": "ci-7",
                                             "expires": time.time() + 60}).encode())
    with pytest.raises(DeployConflict, match="b-other.*ci-7"):
        deploy(base, P, collect(repo(tmp_path, "c")))
    # an expired one does not
    base.put(f"{P}/deploy.lock", json.dumps({"owner": "x", "version": "b-other", "expires": 1}).encode())
    deploy(base, P, collect(repo(tmp_path, "d")))


def versions_in(store: LocalStore) -> set[str]:
    return {p.name for p in (store.root / P / "bundles").iterdir()}


def test_gc_keeps_the_newest_n_the_live_one_the_rollback_target_and_those_in_use(tmp_path):
    store = LocalStore(tmp_path / "store")
    keep = 3
    shipped = []
    for i in range(keep + 5):
        shipped.append(deploy(store, P, collect(repo(tmp_path, f"v{i}"))).version)
    r = gc(store, P, keep)
    assert versions_in(store) == set(shipped[-keep:]) and len(r.removed) == 5
    for i in range(5):  # N+5 again
        shipped.append(deploy(store, P, collect(repo(tmp_path, f"w{i}"))).version)
    # roll back to an old version: live = shipped[-7], rollback target = shipped[-1]
    rollback(store, P, shipped[-7])
    r = gc(store, P, 1, in_use={shipped[-8]})
    left = versions_in(store)
    assert left == {shipped[-7], shipped[-1], shipped[-8]}
    assert set(r.removed) == set(shipped[-8:]) - left  # the first gc removed the others
    assert r.protected[shipped[-7]] == "live" and r.protected[shipped[-8]] == "used by a running DAG run"
    assert r.protected[shipped[-1]] == "rollback target"
    assert gc(store, P, 1, in_use={shipped[-8]}).removed == []  # idempotent


def test_gc_removes_abandoned_uploads_only_when_old(tmp_path):
    store = LocalStore(tmp_path / "store")
    deploy(store, P, collect(repo(tmp_path, "v0")))
    for name in ("b-abandoned", "b-uploading"):
        store.put(f"{P}/bundles/{name}/dags/d.py", b"# half\n")
    old = time.time() - 2 * deliver.INCOMPLETE_AGE
    os.utime(store.root / P / "bundles/b-abandoned/dags/d.py", (old, old))
    r = gc(store, P, 5)
    assert r.removed_incomplete == ["b-abandoned"]
    assert "b-uploading" in versions_in(store) and "b-abandoned" not in versions_in(store)


def test_gc_dry_run_removes_nothing(tmp_path):
    store = LocalStore(tmp_path / "store")
    for i in range(4):
        deploy(store, P, collect(repo(tmp_path, f"v{i}")))
    before = versions_in(store)
    r = gc(store, P, 1, dry_run=True)
    assert len(r.removed) == 2 and versions_in(store) == before
