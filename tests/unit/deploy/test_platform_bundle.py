"""The in-image DAG bundle over a real folder store written by platformctl's deliver: follows the pointer,
serves pinned versions, refuses tampered or half-uploaded versions and keeps the last good one."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ml_platform.bundle import BundleFault, PlatformDagBundle, version_of
from ml_platform.bundle_format import ARCHIVE

from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy, rollback
from tests.bundle_tamper import tamper
from tests.conftest import current_version

PREFIX = "airflow/test"


pytestmark = pytest.mark.usefixtures("storage")  # tests/unit/deploy/conftest.py


def repo_with(tmp_path: Path, value: str) -> Path:
    root = tmp_path / f"repo-{value}"
    (root / "dags").mkdir(parents=True, exist_ok=True)
    (root / "dags/demo.py").write_text(f"# airflow dag\nVALUE = {value!r}\n")
    (root / "dags/sub").mkdir(exist_ok=True)
    (root / "dags/sub/helper.py").write_text("X = 1\n")
    (root / "flavors.yaml").write_text("flavors: {}\n")
    return root


def ship(store, tmp_path, value) -> str:
    return deploy(store, PREFIX, collect(repo_with(tmp_path, value), image_digest="sha256:" + "a" * 64)).version


def bundle(store, **kw) -> PlatformDagBundle:
    return PlatformDagBundle(name="ml-platform", store="local", store_path=str(store.root), prefix=PREFIX,
                             refresh_interval=10, **kw)


def make_legacy(store, version: str) -> None:
    """The version as deployed before archives existed: no archive, no "archive" entry in its manifest."""
    vdir = store.root / PREFIX / "bundles" / version
    (vdir / ARCHIVE).unlink()
    m = json.loads((vdir / "bundle-manifest.json").read_text())
    del m["archive"]
    (vdir / "bundle-manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")


def demo_value(b: PlatformDagBundle) -> str:
    return (b.path / "dags/demo.py").read_text().split("VALUE = ")[1].strip().strip("'")


def test_version_hash_matches_the_deploy_side(store, tmp_path):
    b = collect(repo_with(tmp_path, "v1"), image_digest="sha256:" + "a" * 64)
    assert version_of(b.manifest("now")) == b.version


def test_follows_the_pointer_and_serves_pinned_versions(store, tmp_path):
    v1 = ship(store, tmp_path, "v1")
    proc = bundle(store)
    proc.initialize()
    assert current_version(proc) == v1 and demo_value(proc) == "v1"
    assert proc.path == proc.versions_dir / v1
    v2 = ship(store, tmp_path, "v2")
    proc.refresh()
    assert current_version(proc) == v2 and demo_value(proc) == "v2"
    # a worker running a task of a DAG run started on v1
    worker = bundle(store, version=v1)
    worker.initialize()
    assert worker.path == worker.versions_dir / v1 and demo_value(worker) == "v1"
    with pytest.raises(BundleFault, match="pinned"):
        worker.refresh()
    rollback(store, PREFIX)
    proc.refresh()
    assert current_version(proc) == v1


def test_fetched_version_holds_exactly_the_manifest_files(store, tmp_path):
    v1 = ship(store, tmp_path, "v1")
    b = bundle(store)
    b.initialize()
    files = sorted(p.relative_to(b.path).as_posix() for p in b.path.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    assert files == ["bundle-manifest.json", "dags/demo.py", "dags/sub/helper.py", "flavors.yaml"]
    assert not [p for p in b.versions_dir.iterdir() if p.name.startswith(".")]  # no temp dir left
    assert json.loads((b.path / "bundle-manifest.json").read_text())["version"] == v1


def test_fetched_dag_files_load_from_bytecode_without_compiling(store, tmp_path, monkeypatch):
    """The image sets PYTHONDONTWRITEBYTECODE: the bundle writes each version's bytecode once, and the
    DAG processor's loader (SourceFileLoader, as Airflow's importer uses) reads it instead of compiling."""
    import builtins
    import importlib.machinery
    import importlib.util

    ship(store, tmp_path, "v1")
    b = bundle(store)
    b.initialize()
    sources = sorted(b.path.rglob("*.py"))
    assert len(sources) == 2
    for src in sources:
        assert Path(importlib.util.cache_from_source(str(src))).is_file(), src

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled from source: the bundle's bytecode was not used")

    monkeypatch.setattr(builtins, "compile", no_compile)
    code = importlib.machinery.SourceFileLoader("demo_dag", str(b.path / "dags/demo.py")).get_code("demo_dag")
    assert code.co_filename == str(b.path / "dags/demo.py")  # the served path, not the temp dir
    ns: dict = {}
    exec(code, ns)
    assert ns["VALUE"] == "v1"


def store_io(store):
    def put(key, data):
        (store.root / key).write_bytes(data)

    return (lambda key: (store.root / key).read_bytes()), put


@pytest.mark.parametrize("layout", ["archive", "files"])
def test_tampered_file_is_refused_and_last_good_keeps_serving(store, tmp_path, caplog, layout):
    v1 = ship(store, tmp_path, "v1")
    proc = bundle(store)
    proc.initialize()
    v2 = ship(store, tmp_path, "v2")
    if layout == "files":
        make_legacy(store, v2)
    tamper(*store_io(store), f"{PREFIX}/bundles/{v2}", "dags/demo.py", b"# airflow dag\nVALUE = 'evil'\n")
    with caplog.at_level(logging.ERROR, logger="ml_platform.bundle"):
        proc.refresh()
    assert current_version(proc) == v1 and demo_value(proc) == "v1"
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1
    assert f"keeping {v1} live" in lines[0] and f"{v2}: file dags/demo.py has sha256" in lines[0]
    assert not (proc.versions_dir / v2).exists()
    # a worker asked for the tampered version fails clearly instead of running it
    with pytest.raises(BundleFault, match="dags/demo.py"):
        bundle(store, version=v2).initialize()


def test_half_uploaded_version_is_never_served(store, tmp_path, caplog):
    v1 = ship(store, tmp_path, "v1")
    proc = bundle(store)
    proc.initialize()
    v2 = ship(store, tmp_path, "v2")
    (store.root / PREFIX / "bundles" / v2 / "bundle-manifest.json").unlink()
    with caplog.at_level(logging.ERROR, logger="ml_platform.bundle"):
        proc.refresh()
    assert current_version(proc) == v1
    assert f"{v2} has no bundle-manifest.json" in caplog.text


def test_unreachable_store_keeps_last_good_even_after_a_restart(store, tmp_path, caplog):
    v1 = ship(store, tmp_path, "v1")
    bundle(store).initialize()
    moved = store.root.with_name("store-gone")
    store.root.rename(moved)
    restarted = bundle(store)  # a restarted DAG processor: only this machine's last good version
    with caplog.at_level(logging.ERROR, logger="ml_platform.bundle"):
        restarted.initialize()
    assert current_version(restarted) == v1 and demo_value(restarted) == "v1"
    assert "does not exist" in caplog.text


def test_nothing_deployed_fails_clearly(store, tmp_path):
    store.check()
    with pytest.raises(BundleFault, match="nothing is deployed"):
        bundle(store).initialize()


def test_old_fetched_versions_are_pruned_but_tracked_ones_stay(store, tmp_path, storage, monkeypatch):
    from airflow.dag_processing.bundles import base

    # Airflow computes its tracking folder once, at import: point it into this test's storage
    monkeypatch.setattr(base, "STALE_BUNDLE_TRACKING_FOLDER", storage / "_tracking")
    proc = bundle(store, keep_local=1)
    first = ship(store, tmp_path, "v0")
    proc.initialize()
    track = base.get_bundle_tracking_dir("ml-platform")
    track.mkdir(parents=True, exist_ok=True)
    (track / first).write_text("2026-01-01T00:00:00+00:00")  # a task here still uses it
    versions = [first]
    for i in range(1, 5):
        versions.append(ship(store, tmp_path, f"v{i}"))
        proc.refresh()
    left = {p.name for p in proc.versions_dir.iterdir()}
    assert versions[-1] in left and versions[-2] in left and first in left
    assert versions[1] not in left and versions[2] not in left


def test_status_names_the_live_version_the_one_served_here_and_a_store_fault(store, tmp_path):
    missing = bundle(store).status()
    assert missing["live"] is None and "does not exist" in missing["error"]
    store.root.mkdir(parents=True)
    nothing = bundle(store).status()
    assert nothing["live"] is None and "nothing is deployed" in nothing["error"]
    v1 = ship(store, tmp_path, "v1")
    proc = bundle(store)
    proc.initialize()
    v2 = ship(store, tmp_path, "v2")  # live in the store, not yet refreshed here
    st = proc.status()
    assert st["error"] is None and st["served_here"] == v1
    assert st["live"]["version"] == v2 and st["live"]["history"] == [v1]
    assert st["live"]["image_digest"] == "sha256:" + "a" * 64 and st["live"]["switched_at"]
    (store.root / PREFIX / "current.json").write_text("{not json")
    assert proc.status()["error"].startswith("JSONDecodeError")


# What a rendered DAG file imports, checked in a fresh interpreter (this one has imported them already).
WARM_PROBE = """
import json, sys
from ml_platform.bundle import PlatformDagBundle
from ml_platform import flavors
names = ("ml_platform.job", "ml_platform.backends.kubernetes", "airflow.providers.cncf.kubernetes.operators.pod",
         "airflow.providers.amazon.aws.assets.s3", "airflow.providers.standard.sensors.external_task")
before = [n for n in names if n in sys.modules]
b = PlatformDagBundle(name="ml-platform", store="local", store_path=sys.argv[1], prefix=sys.argv[2],
                      version=sys.argv[3] or None)
b.initialize()
print("RESULT " + json.dumps({"before": before, "after": [n for n in names if n in sys.modules],
                              "catalogs": len(flavors._CACHE), "served": b.path.name}))
"""


def probe(store, version: str = "", **env) -> tuple[dict, str]:
    p = subprocess.run([sys.executable, "-c", WARM_PROBE, str(store.root), PREFIX, version], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "ML_PLATFORM_BACKEND": "kubernetes", **env})
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, p.stdout + p.stderr
    return json.loads(line[7:]), p.stdout


def test_the_dag_processor_bundle_pre_imports_what_every_rendered_file_imports(store, tmp_path):
    v1 = ship(store, tmp_path, "v1")
    r, out = probe(store)
    assert r["before"] == [], "importing the bundle must not pull in the backend: the test would prove nothing"
    assert r["after"] == ["ml_platform.job", "ml_platform.backends.kubernetes",
                          "airflow.providers.cncf.kubernetes.operators.pod",
                          "airflow.providers.amazon.aws.assets.s3",  # the s3:// asset URI handler
                          "airflow.providers.standard.sensors.external_task"]  # DAG serialization's
    assert r["catalogs"] == 1 and r["served"] == v1
    assert "pre-imported KubernetesJobOperator, the flavor catalog" in out


def test_no_pre_import_when_airflow_s_own_is_off_or_the_bundle_is_pinned(store, tmp_path):
    v1 = ship(store, tmp_path, "v1")
    off, _ = probe(store, AIRFLOW__DAG_PROCESSOR__PARSING_PRE_IMPORT_MODULES="False")
    pinned, _ = probe(store, v1)  # a worker running a task: it imports its one DAG file itself
    for r in (off, pinned):
        assert r["after"] == [] and r["catalogs"] == 0 and r["served"] == v1


def test_a_pre_import_that_fails_is_one_warning_and_the_bundle_still_serves(store, tmp_path):
    v1 = ship(store, tmp_path, "v1")
    r, out = probe(store, ML_PLATFORM_FLAVORS=str(tmp_path / "missing.yaml"))
    assert r["served"] == v1 and r["catalogs"] == 0
    warnings = [ln for ln in out.splitlines() if "[warning" in ln]  # Airflow's log format
    assert len(warnings) == 1 and "bundle 'ml-platform': not pre-importing" in warnings[0]
    assert "missing.yaml: flavor catalog not found" in warnings[0]


def test_airflow_s_lazy_loads_failing_is_named_and_the_backend_is_still_pre_imported(store, tmp_path, caplog,
                                                                                      monkeypatch):
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    def broken(self):
        raise RuntimeError("provider metadata unreadable")

    monkeypatch.setattr(ProvidersManagerTaskRuntime, "initialize_providers_asset_uri_resources", broken)
    monkeypatch.setenv("ML_PLATFORM_BACKEND", "kubernetes")
    v1 = ship(store, tmp_path, "v1")
    b = bundle(store)
    with caplog.at_level(logging.INFO, logger="ml_platform.bundle"):
        b.initialize()
    assert b.path.name == v1
    lines = [r.getMessage() for r in caplog.records if "pre-imported" in r.getMessage()]
    assert len(lines) == 1 and "pre-imported KubernetesJobOperator" in lines[0]
    assert "(not the asset URI handlers: RuntimeError: provider metadata unreadable)" in lines[0]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
