"""Issue 38 on a running Airflow (the local stack from the built image, ONE module-scoped stack): the `local`
environment requires signatures; a signed deploy and a signed rollback are followed as today; an unsigned, a
tampered, a replayed (signed for another environment) and a wrongly signed version each stay unserved: the
last good version stays live, the DAG processor logs ONE line naming the version and the reason, and the
plugin's status page shows the refusal. The module's runtime is printed (FIGURES)."""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml
from ml_platform import bundle_format as fmt
from securesystemslib.signer import CryptoSigner

from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy, read_pointer
from platformctl.deploy.signing import KEY_FILE_VAR, KEY_VAR, Trust
from platformctl.deploy.store import LocalStore
from platformctl.stack.api import AirflowAPI
from tests.integration.deploy.demo_stack import DemoProject, wait_bundle as wait_for

DAG = "trust_demo"
REFRESH = 10
T0 = time.monotonic()
FIGURES: dict[str, float] = {}
KEY = CryptoSigner.generate_ed25519()
OTHER = CryptoSigner.generate_ed25519()
NO_KEY = {KEY_VAR: None, KEY_FILE_VAR: None}  # a command run without the signing key


def write_pipeline(demo: DemoProject, value: str) -> None:
    demo.write_pipeline({"only": {"command": ["python3", "-c", f"print('DEMO_VALUE={value}')"]}})


@pytest.fixture(scope="module")
def demo(image) -> DemoProject:
    d = DemoProject("bundle-trust", DAG)
    pem = d.path.parent / f"{d.project}.pem"
    pem.write_bytes(KEY.private_bytes)
    d.env = {KEY_VAR: None, KEY_FILE_VAR: str(pem)}  # only this key, never one from the calling environment
    write_pipeline(d, "v1")
    (d.path / "environments").mkdir()
    (d.path / "environments/local.yaml").write_text(yaml.safe_dump({
        "description": "this machine, signatures required",
        "bundle": {"kind": "local", "path": ".platform/bundles/local", "refresh_interval": REFRESH},
        "signing": {"require_signatures": True, "allowed_keys": [fmt.public_hex(KEY)]}}))
    yield d
    d.remove()
    pem.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def stack(demo, image, docker):
    t0 = time.monotonic()
    with demo.up("--image", image, "--wait-timeout", "900", expect="signed by key") as api:  # a loaded 2-core machine
        FIGURES["make up (signed deploy included)"] = time.monotonic() - t0
        yield api


def wait_bundle(api: AirflowAPI, version: str, timeout: float = 180) -> float:
    return wait_for(api, DAG, version, timeout)


def plugin_status(api: AirflowAPI) -> dict:
    r = api.session.get(f"{api.base_url}/ml-platform/status", timeout=60)
    assert r.status_code == 200, r.text[:500]
    return r.json()


def bundle_of(demo: DemoProject, value: str):
    write_pipeline(demo, value)
    assert demo.cli("render", env=NO_KEY).returncode == 0
    image_id = json.loads((demo.path / "build/build-record.json").read_text())["image_id"]
    return collect(demo.path, image_digest=image_id)


def assert_refused(api: AirflowAPI, demo: DemoProject, good: str, bad: str, reason: str) -> None:
    """The DAG processor refuses `bad` with one line, keeps `good` over another refresh, the page shows it."""
    pattern = re.compile(rf"bundle 'ml-platform': keeping {good} live: {bad}: refused: .*{re.escape(reason)}")
    t0 = time.monotonic()
    while not pattern.search(demo.logs("dag-processor")):
        assert time.monotonic() - t0 < 120, f"no refusal of {bad} ({reason}):\n" + demo.logs("dag-processor")[-3000:]
        time.sleep(2)
    FIGURES[f"refusal logged ({reason[:30]})"] = time.monotonic() - t0
    time.sleep(2 * REFRESH + 5)  # more refreshes: still the good version, still one line
    assert api.dag(DAG)["bundle_version"] == good
    assert len([ln for ln in demo.logs("dag-processor").splitlines() if f"live: {bad}: refused" in ln]) == 1
    st = plugin_status(api)["bundles"][0]
    assert st["served_here"] in (good, None) and reason in (st["refused"] or ""), st
    assert api.import_errors() == []


def restore(demo: DemoProject, good: str) -> None:
    assert demo.cli("rollback", "--env", "local", "--to", good).returncode == 0


def test_a_signed_deploy_and_rollback_are_followed(stack: AirflowAPI, demo: DemoProject):
    v1 = demo.live_version()
    assert "envelope" in read_pointer(demo.store(), "")
    wait_bundle(stack, v1)
    assert plugin_status(stack)["bundles"][0]["refused"] is None
    write_pipeline(demo, "v2")
    assert demo.cli("deploy", "--env", "local", env=NO_KEY).returncode == 28  # no key: refused before upload
    assert demo.live_version() == v1
    p = demo.cli("deploy", "--env", "local")
    assert p.returncode == 0 and "signed by key" in p.stdout, p.stderr
    v2 = demo.live_version()
    FIGURES["signed deploy -> Airflow parses it"] = wait_bundle(stack, v2)
    t0 = time.monotonic()
    assert demo.cli("rollback", "--env", "local").returncode == 0
    wait_bundle(stack, v1)
    FIGURES["signed rollback -> Airflow parses it (command included)"] = time.monotonic() - t0
    assert demo.cli("rollback", "--env", "local", "--to", v2).returncode == 0
    wait_bundle(stack, v2)
    h = json.loads(demo.cli("history", "--env", "local", "--json", env=NO_KEY).stdout)
    assert [e["action"] for e in h["entries"][:4]] == ["rollback", "rollback", "deploy", "deploy"]


def test_an_unsigned_version_stays_unserved(stack: AirflowAPI, demo: DemoProject):
    good = demo.live_version()
    bad = deploy(demo.store(), "", bundle_of(demo, "unsigned")).version  # bucket access, no key
    assert demo.live_version() == bad
    assert_refused(stack, demo, good, bad, f"the pointer to {bad} is unsigned")
    restore(demo, good)


def test_a_wrongly_signed_version_stays_unserved(stack: AirflowAPI, demo: DemoProject):
    good = demo.live_version()
    wrong = Trust("local", (fmt.public_hex(OTHER),), True, OTHER)  # a key the environment does not list
    bad = deploy(demo.store(), "", bundle_of(demo, "wrong-key"), trust=wrong).version
    assert_refused(stack, demo, good, bad, "which is not an allowed key here")
    restore(demo, good)


def test_a_replayed_signature_stays_unserved(stack: AirflowAPI, demo: DemoProject):
    good = demo.live_version()
    other_env = Trust("prod", (fmt.public_hex(KEY),), True, KEY)  # the right key, signed for another environment
    bad = deploy(demo.store(), "", bundle_of(demo, "replayed"), trust=other_env).version
    assert_refused(stack, demo, good, bad, "signed for environment 'prod', not 'local' (replayed)")
    restore(demo, good)


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


def test_a_tampered_version_stays_unserved(stack: AirflowAPI, demo: DemoProject):
    good = demo.live_version()
    signer = Trust("local", (fmt.public_hex(KEY),), True, KEY)
    bad = deploy(ChangeManifestBeforeSwitch(demo.store().root), "", bundle_of(demo, "tampered"), trust=signer).version
    assert_refused(stack, demo, good, bad, "manifest signature is over another manifest")
    restore(demo, good)
    # and a good, signed deploy after all that is followed as today
    write_pipeline(demo, "v3")
    assert demo.cli("deploy", "--env", "local").returncode == 0
    wait_bundle(stack, demo.live_version())


def test_zz_print_figures():
    FIGURES["module runtime (one stack)"] = time.monotonic() - T0
    print("\nFIGURES " + json.dumps({k: round(v, 1) for k, v in FIGURES.items()}, indent=1))
