"""Issue 38 on a running Airflow (the local stack from the built image, ONE module-scoped stack): the `local`
environment requires signatures; a signed deploy and a signed rollback are followed as today; an unsigned, a
tampered, a replayed (signed for another environment) and a wrongly signed version each stay unserved: the
last good version stays live, the DAG processor logs ONE line naming the version and the reason, and the
plugin's status page shows the refusal. The module's runtime is printed (FIGURES)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml
from ml_platform import bundle_format as fmt
from securesystemslib.signer import CryptoSigner

from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy, read_pointer
from platformctl.deploy.signing import Trust
from platformctl.deploy.store import LocalStore
from platformctl.stack.api import AirflowAPI
from platformctl.stack.compose import Stack
from tests.conftest import ROOT

PROJECT = f"mlp-bundle-trust-{uuid.uuid4().hex[:6]}"
DAG = "trust_demo"
REFRESH = 10
PIPELINE = """version: 1
dag:
  name: trust_demo
  schedule: null
defaults:
  docker_image: ml-platform/etl-job:0.1.0
  resource_flavor: cpu-small
jobs:
  only:
    command: [python3, -c, "print('DEMO_VALUE={value}')"]
"""
T0 = time.monotonic()
FIGURES: dict[str, float] = {}
KEY = CryptoSigner.generate_ed25519()
OTHER = CryptoSigner.generate_ed25519()


def cli(repo: Path, *args: str, project: bool = False, key: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PLATFORM_ROOT": str(repo)}
    env.pop("ML_PLATFORM_SIGNING_KEY", None)
    env.pop("ML_PLATFORM_SIGNING_KEY_FILE", None)
    if key:
        env["ML_PLATFORM_SIGNING_KEY_FILE"] = str(repo.parent / f"{PROJECT}.pem")
    p = subprocess.run([sys.executable, str(ROOT / "build.py"), *args, *(["--project", PROJECT] if project else [])],
                       cwd=repo, env=env, capture_output=True, text=True, timeout=900, check=False)
    print(f"$ build.py {' '.join(args)}\n{p.stdout[-3000:]}{p.stderr[-3000:]}")
    return p


def write_pipeline(repo: Path, value: str) -> None:
    (repo / "pipelines" / f"{DAG}.yaml").write_text(PIPELINE.format(value=value))


@pytest.fixture(scope="module")
def repo(image) -> Path:
    d = Path(tempfile.mkdtemp(prefix="mlp-trust-", dir="/tmp"))  # readable by the containers' user
    d.chmod(0o755)
    for item in ("pipelines", "templates", "stack", "examples", "flavors.yaml", "platform.yaml", "requirements",
                 "build", "schemas"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, d / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy(src, d / item)
    for p in (d / "pipelines").glob("*.yaml"):
        p.unlink()
    (d / "dags").mkdir()
    write_pipeline(d, "v1")
    (d.parent / f"{PROJECT}.pem").write_bytes(KEY.private_bytes)
    (d / "environments").mkdir()
    (d / "environments/local.yaml").write_text(yaml.safe_dump({
        "description": "this machine, signatures required",
        "bundle": {"kind": "local", "path": ".platform/bundles/local", "refresh_interval": REFRESH},
        "signing": {"require_signatures": True, "allowed_keys": [fmt.public_hex(KEY)]}}))
    subprocess.run(["git", "init", "-q"], cwd=d, check=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)
    (d.parent / f"{PROJECT}.pem").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def stack(repo, image, docker):
    t0 = time.monotonic()
    p = cli(repo, "up", "--image", image, "--wait-timeout", "900", project=True)  # a loaded 2-core machine
    try:
        assert p.returncode == 0, f"make up failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        assert "signed by key" in p.stdout
        FIGURES["make up (signed deploy included)"] = time.monotonic() - t0
        yield AirflowAPI(Stack(repo, PROJECT, "stack/compose.yaml").url, timeout=90)
    finally:
        for service in ("dag-processor",):
            logs = Stack(repo, PROJECT, "stack/compose.yaml").compose("logs", "--no-color", service,
                                                                      capture=True, check=False)
            (repo.parent / f"{PROJECT}-{service}.log").write_text(logs.stdout or "")
        d = cli(repo, "down", "--volumes", project=True)
        assert d.returncode == 0, d.stderr


def store(repo: Path) -> LocalStore:
    return LocalStore(repo / ".platform/bundles/local")


def live_version(repo: Path) -> str:
    return read_pointer(store(repo), "")["version"]


def wait_bundle(api: AirflowAPI, version: str, timeout: float = 180) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        d = api.dag(DAG)
        if d and d.get("bundle_version") == version:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(f"Airflow did not switch {DAG} to {version} within {timeout}s "
                         f"(has {(api.dag(DAG) or {}).get('bundle_version')})")


def processor_log(repo: Path) -> str:
    return Stack(repo, PROJECT, "stack/compose.yaml").compose("logs", "--no-color", "dag-processor",
                                                              capture=True, check=False).stdout or ""


def plugin_status(api: AirflowAPI) -> dict:
    r = api.session.get(f"{api.base_url}/ml-platform/status", timeout=60)
    assert r.status_code == 200, r.text[:500]
    return r.json()


def bundle_of(repo: Path, value: str):
    write_pipeline(repo, value)
    assert cli(repo, "render", key=False).returncode == 0
    image_id = json.loads((repo / "build/build-record.json").read_text())["image_id"]
    return collect(repo, image_digest=image_id)


def assert_refused(api: AirflowAPI, repo: Path, good: str, bad: str, reason: str) -> None:
    """The DAG processor refuses `bad` with one line, keeps `good` over another refresh, the page shows it."""
    pattern = re.compile(rf"bundle 'ml-platform': keeping {good} live: {bad}: refused: .*{re.escape(reason)}")
    t0 = time.monotonic()
    while not pattern.search(processor_log(repo)):
        assert time.monotonic() - t0 < 120, f"no refusal of {bad} ({reason}):\n" + processor_log(repo)[-3000:]
        time.sleep(2)
    FIGURES[f"refusal logged ({reason[:30]})"] = time.monotonic() - t0
    time.sleep(2 * REFRESH + 5)  # more refreshes: still the good version, still one line
    assert api.dag(DAG)["bundle_version"] == good
    assert len([ln for ln in processor_log(repo).splitlines() if f"live: {bad}: refused" in ln]) == 1
    st = plugin_status(api)["bundles"][0]
    assert st["served_here"] in (good, None) and reason in (st["refused"] or ""), st
    assert api.import_errors() == []


def restore(repo: Path, good: str) -> None:
    assert cli(repo, "rollback", "--env", "local", "--to", good).returncode == 0


def test_a_signed_deploy_and_rollback_are_followed(stack: AirflowAPI, repo: Path):
    v1 = live_version(repo)
    assert "envelope" in read_pointer(store(repo), "")
    wait_bundle(stack, v1)
    assert plugin_status(stack)["bundles"][0]["refused"] is None
    write_pipeline(repo, "v2")
    assert cli(repo, "deploy", "--env", "local", key=False).returncode == 28  # no key: refused before upload
    assert live_version(repo) == v1
    p = cli(repo, "deploy", "--env", "local")
    assert p.returncode == 0 and "signed by key" in p.stdout, p.stderr
    v2 = live_version(repo)
    FIGURES["signed deploy -> Airflow parses it"] = wait_bundle(stack, v2)
    t0 = time.monotonic()
    assert cli(repo, "rollback", "--env", "local").returncode == 0
    wait_bundle(stack, v1)
    FIGURES["signed rollback -> Airflow parses it (command included)"] = time.monotonic() - t0
    assert cli(repo, "rollback", "--env", "local", "--to", v2).returncode == 0
    wait_bundle(stack, v2)
    h = json.loads(cli(repo, "history", "--env", "local", "--json", key=False).stdout)
    assert [e["action"] for e in h["entries"][:4]] == ["rollback", "rollback", "deploy", "deploy"]


def test_an_unsigned_version_stays_unserved(stack: AirflowAPI, repo: Path):
    good = live_version(repo)
    bad = deploy(store(repo), "", bundle_of(repo, "unsigned")).version  # bucket access, no key
    assert live_version(repo) == bad
    assert_refused(stack, repo, good, bad, f"the pointer to {bad} is unsigned")
    restore(repo, good)


def test_a_wrongly_signed_version_stays_unserved(stack: AirflowAPI, repo: Path):
    good = live_version(repo)
    wrong = Trust("local", (fmt.public_hex(OTHER),), True, OTHER)  # a key the environment does not list
    bad = deploy(store(repo), "", bundle_of(repo, "wrong-key"), trust=wrong).version
    assert_refused(stack, repo, good, bad, "which is not an allowed key here")
    restore(repo, good)


def test_a_replayed_signature_stays_unserved(stack: AirflowAPI, repo: Path):
    good = live_version(repo)
    other_env = Trust("prod", (fmt.public_hex(KEY),), True, KEY)  # the right key, signed for another environment
    bad = deploy(store(repo), "", bundle_of(repo, "replayed"), trust=other_env).version
    assert_refused(stack, repo, good, bad, "signed for environment 'prod', not 'local' (replayed)")
    restore(repo, good)


class ChangeManifestBeforeSwitch(LocalStore):
    """A signed deploy whose manifest is changed after it was signed (e.g. ml_platform_version lowered)."""

    def put_if(self, key, data, etag):
        if key.endswith("current.json"):
            version = json.loads(data)["version"]
            m = self.root / "bundles" / version / "bundle-manifest.json"
            doc = json.loads(m.read_text())
            doc["ml_platform_version"] = "0.0.1"
            m.write_text(json.dumps(doc))
        super().put_if(key, data, etag)


def test_a_tampered_version_stays_unserved(stack: AirflowAPI, repo: Path):
    good = live_version(repo)
    signer = Trust("local", (fmt.public_hex(KEY),), True, KEY)
    bad = deploy(ChangeManifestBeforeSwitch(store(repo).root), "", bundle_of(repo, "tampered"), trust=signer).version
    assert_refused(stack, repo, good, bad, "manifest signature is over another manifest")
    restore(repo, good)
    # and a good, signed deploy after all that is followed as today
    write_pipeline(repo, "v3")
    assert cli(repo, "deploy", "--env", "local").returncode == 0
    wait_bundle(stack, live_version(repo))


def test_zz_print_figures():
    FIGURES["module runtime (one stack)"] = time.monotonic() - T0
    print("\nFIGURES " + json.dumps({k: round(v, 1) for k, v in FIGURES.items()}, indent=1))
