"""Issue 38 over a real folder store: deploy and rollback sign (DSSE, ed25519, securesystemslib), the bundle
class verifies before activating (DAG processor and pinned workers), the last good version stays on an
unsigned, tampered, replayed or wrongly signed version with one log line; a version the image cannot serve
is refused; the ledger records every switch, before it and after it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from ml_platform import bundle_format as fmt
from ml_platform.bundle import BundleFault, PlatformDagBundle
from securesystemslib.signer import CryptoSigner

from platformctl.deploy.bundle import collect
from platformctl.deploy.deliver import deploy, read_pointer, rollback
from platformctl.deploy.ledger import Ledger
from platformctl.deploy.signing import KEY_FILE_VAR, KEY_VAR, Trust, trust_for
from platformctl.deploy.store import LocalStore
from platformctl.environments import BundleStoreConfig, Environment, SigningConfig
from platformctl.errors import BundleSignatureRefused, LedgerError, SigningKeyError, StoreError
from tests.conftest import current_version

PREFIX = "airflow/dev"
ENV = "dev"


@pytest.fixture(autouse=True)
def no_signing_key(storage, monkeypatch) -> None:
    """The bundle storage folder (tests/unit/deploy/conftest.py), and no signing key from the environment."""
    monkeypatch.delenv(KEY_VAR, raising=False)
    monkeypatch.delenv(KEY_FILE_VAR, raising=False)


@pytest.fixture(scope="module")
def keys():
    return CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()


def trust(signer, allowed=None, required=True, env=ENV) -> Trust:
    allowed = allowed if allowed is not None else [fmt.public_hex(signer)]
    return Trust(env, tuple(allowed), required, signer)


def repo_with(tmp_path: Path, value: str, fmt_version: int = 1) -> Path:
    root = tmp_path / f"repo-{value}"
    (root / "dags").mkdir(parents=True, exist_ok=True)
    (root / "dags/demo.py").write_text(f"# airflow dag\nVALUE = {value!r}\n")
    (root / "pipelines").mkdir(exist_ok=True)
    (root / "pipelines/demo.yaml").write_text(f"version: {fmt_version}\ndag: {{name: demo}}\n")
    return root


def ship(store, tmp_path, value, t=None, ledger=None, fmt_version=1) -> str:
    return deploy(store, PREFIX, collect(repo_with(tmp_path, value, fmt_version), image_digest="sha256:" + "a" * 64),
                  trust=t, ledger=ledger).version


def bundle(store, allowed, required=True, version=None) -> PlatformDagBundle:
    return PlatformDagBundle(name="ml-platform", store="local", store_path=str(store.root), prefix=PREFIX,
                             refresh_interval=10, environment=ENV, allowed_keys=allowed,
                             require_signatures=required, version=version)


def value(b) -> str:
    return (b.path / "dags/demo.py").read_text().split("VALUE = ")[1].strip().strip("'")


def refusals(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "keeping" in r.getMessage()]


def test_a_signed_deploy_and_rollback_are_followed(store, tmp_path, keys):
    k, _ = keys
    allowed = [fmt.public_hex(k)]
    v1 = ship(store, tmp_path, "v1", trust(k))
    assert (store.root / PREFIX / "bundles" / v1 / fmt.MANIFEST_SIGNATURE).is_file()
    pointer = read_pointer(store, PREFIX)
    assert pointer["envelope"]["payloadType"] == fmt.POINTER_PAYLOAD_TYPE
    b = bundle(store, allowed)
    b.initialize()
    assert value(b) == "v1"
    v2 = ship(store, tmp_path, "v2", trust(k))
    b.refresh()
    assert current_version(b) == v2 and value(b) == "v2"
    r = rollback(store, PREFIX, trust=trust(k))
    assert (r.previous, r.version) == (v2, v1)
    b.refresh()
    assert current_version(b) == v1 and value(b) == "v1"
    pinned = bundle(store, allowed, version=v2)  # a worker on a v2 run
    pinned.initialize()
    assert value(pinned) == "v2"


def _start(store, tmp_path, k):
    v1 = ship(store, tmp_path, "v1", trust(k))
    b = bundle(store, [fmt.public_hex(k)])
    b.initialize()
    return v1, b


def test_an_unsigned_version_is_never_served_where_signatures_are_required(store, tmp_path, keys, caplog):
    k, _ = keys
    v1, b = _start(store, tmp_path, k)
    v2 = ship(store, tmp_path, "v2", None)  # someone with write access to the bucket, without the key
    with caplog.at_level(logging.INFO, logger="ml_platform.bundle"):
        b.refresh()
        b.refresh()  # a second refresh: no second line
    assert current_version(b) == v1 and value(b) == "v1"
    lines = refusals(caplog)
    assert len(lines) == 1 and f"keeping {v1} live: {v2}: refused: the pointer to {v2} is unsigned" in lines[0]
    assert "refused" in b.status()["refused"] or "unsigned" in b.status()["refused"]
    with pytest.raises(BundleFault, match="unsigned"):  # a worker pinned to it refuses too
        bundle(store, [fmt.public_hex(k)], version=v2).initialize()


def test_an_unsigned_version_is_served_where_signatures_are_not_required(store, tmp_path, keys):
    v1 = ship(store, tmp_path, "v1", None)
    b = bundle(store, [fmt.public_hex(keys[0])], required=False)
    b.initialize()
    assert current_version(b) == v1 and b.status()["refused"] is None


def test_a_wrong_key_is_refused(store, tmp_path, keys, caplog):
    k, other = keys
    v1, b = _start(store, tmp_path, k)
    v2 = ship(store, tmp_path, "v2", trust(other))  # signed, by a key this environment does not list
    with caplog.at_level(logging.INFO, logger="ml_platform.bundle"):
        b.refresh()
    assert current_version(b) == v1
    (line,) = refusals(caplog)
    assert f"{v2}: refused:" in line and "not an allowed key" in line


def test_a_tampered_manifest_signature_or_pointer_is_refused(store, tmp_path, keys, caplog):
    k, _ = keys
    v1, b = _start(store, tmp_path, k)
    v2 = ship(store, tmp_path, "v2", trust(k))
    key = store.root / PREFIX / "current.json"
    p = json.loads(key.read_text())
    p["envelope"]["payload"] = p["envelope"]["payload"][:-4] + "AAAA"  # the signed statement changed
    key.write_text(json.dumps(p))
    with caplog.at_level(logging.INFO, logger="ml_platform.bundle"):
        b.refresh()
    assert current_version(b) == v1
    assert any("does not verify" in ln or "not JSON" in ln for ln in refusals(caplog)), refusals(caplog)
    assert v2 in refusals(caplog)[0]


def test_a_replayed_signature_over_another_manifest_is_refused(store, tmp_path, keys, caplog):
    k, _ = keys
    v1 = ship(store, tmp_path, "v1", trust(k))
    v2 = ship(store, tmp_path, "v2", trust(k))
    signed_v2 = read_pointer(store, PREFIX)  # a valid pointer signature, over v2's manifest as deployed
    rollback(store, PREFIX, trust=trust(k))
    b = bundle(store, [fmt.public_hex(k)])  # a machine that never fetched v2
    b.initialize()
    assert current_version(b) == v1
    # the attacker writes another manifest for v2 (its version name still matches: same file list) and
    # replays the old pointer and manifest signatures
    vdir = store.root / PREFIX / "bundles" / v2
    manifest = json.loads((vdir / "bundle-manifest.json").read_text())
    manifest["ml_platform_version"] = "0.0.1"
    (vdir / "bundle-manifest.json").write_text(json.dumps(manifest))
    (store.root / PREFIX / "current.json").write_text(json.dumps(signed_v2))
    with caplog.at_level(logging.INFO, logger="ml_platform.bundle"):
        b.refresh()
    assert current_version(b) == v1 and value(b) == "v1"
    (line,) = refusals(caplog)
    assert f"{v2}: refused: {v2}'s manifest signature is over another manifest" in line
    assert "replayed or tampered" in line
    assert "another manifest" in b.status()["refused"]


def test_a_pointer_signed_for_another_environment_is_refused(store, tmp_path, keys, caplog):
    k, _ = keys
    v1, b = _start(store, tmp_path, k)
    prod = LocalStore(tmp_path / "prod-store")
    ship(prod, tmp_path, "v2", trust(k, env="prod"))  # the same key signs prod too
    v2 = read_pointer(prod, PREFIX)["version"]
    import shutil

    shutil.copytree(prod.root / PREFIX / "bundles" / v2, store.root / PREFIX / "bundles" / v2)
    (store.root / PREFIX / "current.json").write_bytes((prod.root / PREFIX / "current.json").read_bytes())
    with caplog.at_level(logging.INFO, logger="ml_platform.bundle"):
        b.refresh()
    assert current_version(b) == v1
    (line,) = refusals(caplog)
    assert "signed for environment 'prod', not 'dev' (replayed)" in line


def test_a_version_the_image_cannot_serve_is_refused_and_the_last_good_stays(store, tmp_path, keys, caplog,
                                                                             monkeypatch):
    k, _ = keys
    v1, b = _start(store, tmp_path, k)
    v2 = ship(store, tmp_path, "v2", trust(k), fmt_version=2)
    monkeypatch.setattr(fmt, "SERVED_PIPELINE_FORMATS", (1,))  # this image: a v1-only operator package
    with caplog.at_level(logging.INFO, logger="ml_platform.bundle"):
        b.refresh()
    assert current_version(b) == v1
    (line,) = refusals(caplog)
    assert f"{v2}: refused: this image cannot serve it: its DAGs were rendered from pipeline format 2" in line
    monkeypatch.setattr(fmt, "SERVED_PIPELINE_FORMATS", (1, 2))
    b.refresh()
    assert current_version(b) == v2


def test_rotation_two_allowed_keys_then_the_old_one_removed(store, tmp_path, keys):
    old, new = keys
    both = [fmt.public_hex(old), fmt.public_hex(new)]
    v1 = ship(store, tmp_path, "v1", trust(old, both))
    b = bundle(store, both)
    b.initialize()
    v2 = ship(store, tmp_path, "v2", trust(new, both))
    b.refresh()
    assert current_version(b) == v2
    # the old key is dropped: rolling back to v1 (signed by it only) is refused before the switch
    with pytest.raises(BundleSignatureRefused, match="not an allowed key"):
        rollback(store, PREFIX, to=v1, trust=trust(new, [fmt.public_hex(new)]))
    assert read_pointer(store, PREFIX)["version"] == v2


def test_rollback_to_an_unsigned_version_is_refused_where_signatures_are_required(store, tmp_path, keys):
    k, _ = keys
    v1 = ship(store, tmp_path, "v1", None)
    ship(store, tmp_path, "v2", trust(k))
    with pytest.raises(BundleSignatureRefused, match="unsigned"):
        rollback(store, PREFIX, to=v1, trust=trust(k))


def _env(allowed, required=True) -> Environment:
    return Environment(name=ENV, bundle=BundleStoreConfig(kind="local"),
                       signing=SigningConfig(require_signatures=required, allowed_keys=allowed))


def test_the_signing_key_is_checked_before_anything_is_uploaded(tmp_path, keys, monkeypatch):
    k, other = keys
    env = _env([fmt.public_hex(k)])
    with pytest.raises(SigningKeyError, match="requires signed bundles and no signing key is set"):
        trust_for(env)
    keyfile = tmp_path / "other.pem"
    keyfile.write_bytes(other.private_bytes)
    monkeypatch.setenv(KEY_FILE_VAR, str(keyfile))
    with pytest.raises(SigningKeyError, match="is not allowed to sign dev's bundles") as exc:
        trust_for(env)
    assert "nothing was uploaded" in exc.value.hint
    pem = k.private_bytes.decode().splitlines()  # the throwaway key's PEM armour around a body that is no key
    monkeypatch.setenv(KEY_VAR, "\n".join([pem[0], "nope", pem[-1], ""]))
    with pytest.raises(SigningKeyError, match="unusable"):
        trust_for(env)
    monkeypatch.setenv(KEY_VAR, k.private_bytes.decode())
    t = trust_for(env)
    assert t.key_id == k.public_key.keyid and t.required


def test_ledger_entries_are_written_before_the_switch_and_completed_after(store, tmp_path, keys):
    k, _ = keys
    ledger = Ledger(store, PREFIX, ENV)
    v1 = ship(store, tmp_path, "v1", trust(k), ledger)
    v2 = ship(store, tmp_path, "v2", trust(k), ledger)
    rollback(store, PREFIX, trust=trust(k), ledger=ledger)
    h = ledger.history(10)
    assert [e.action for e in h.entries] == ["rollback", "deploy", "deploy"]
    assert [e.version for e in h.entries] == [v1, v2, v1]
    assert all(e.result == "switched" and e.key_id == k.public_key.keyid for e in h.entries)
    assert h.incomplete == [] and h.total == 3
    assert read_pointer(store, PREFIX)["ledger_entry"] == h.entries[0].id

    class Crash(LocalStore):  # the process dies right after the pointer switch, before the completion
        def put_if(self, key, data, etag):
            if key.endswith(".done.json"):
                raise KeyboardInterrupt
            super().put_if(key, data, etag)

    crashing = Crash(store.root)
    with pytest.raises(KeyboardInterrupt):
        ship(crashing, tmp_path, "v3", trust(k), Ledger(crashing, PREFIX, ENV))
    h = ledger.history(10)
    assert h.incomplete == [h.entries[0].id] and h.entries[0].result is None  # visible: started, never completed
    assert read_pointer(store, PREFIX)["ledger_entry"] == h.entries[0].id  # and the switch it names happened


def test_a_ledger_entry_that_cannot_be_written_stops_the_deploy_before_the_switch(store, tmp_path, keys):
    k, _ = keys
    v1 = ship(store, tmp_path, "v1", trust(k))

    class NoLedger(LocalStore):
        def put_if(self, key, data, etag):
            if "/ledger/" in key:
                raise StoreError("S3 refused the credentials for the ledger (AccessDenied)")
            super().put_if(key, data, etag)

    s = NoLedger(store.root)
    with pytest.raises(LedgerError, match="nothing was switched"):
        ship(s, tmp_path, "v2", trust(k), Ledger(s, PREFIX, ENV))
    assert read_pointer(store, PREFIX)["version"] == v1


def test_a_malformed_allowed_key_is_named_with_its_line(tmp_path):
    from platformctl.environments import load_environment

    (tmp_path / "environments").mkdir()
    (tmp_path / "environments/dev.yaml").write_text(
        "bundle:\n  kind: local\nsigning:\n  require_signatures: true\n  allowed_keys:\n"
        f"    - {'a' * 64}\n    - not-a-key\n")
    with pytest.raises(SigningKeyError) as exc:
        load_environment(tmp_path, "dev")
    assert exc.value.where == "environments/dev.yaml:7" and "not-a-key" in exc.value.message


def test_promote_is_recorded_around_the_promotion_and_a_failed_one_too(tmp_path):
    from platformctl.deploy.publish import record_promotion
    from platformctl.errors import ReleaseRefused

    env = Environment(name=ENV, bundle=BundleStoreConfig(kind="local", path="store"))
    store = LocalStore(tmp_path / "store")
    seen = []

    def promote():
        seen.append(Ledger(store, "", ENV).history(5).incomplete)  # the entry exists before the promotion runs
        return SimpleNamespace(digest="sha256:" + "f" * 64)

    out, note = record_promotion(tmp_path, env, "1.2.0", lambda root, e: store, promote, "sha256:" + "f" * 64)
    assert out.digest.startswith("sha256:") and note.startswith("ledger: e-")
    assert len(seen[0]) == 1

    def refused():
        raise ReleaseRefused("1.3.0 is not in the registry")

    with pytest.raises(ReleaseRefused):
        record_promotion(tmp_path, env, "1.3.0", lambda root, e: store, refused)
    h = Ledger(store, "", ENV).history(5)
    assert [(e.action, e.result.split(":")[0]) for e in h.entries] == [("promote", "failed"),
                                                                      ("promote", "promoted 1.2.0 (sha256")]
    assert h.entries[1].image_digest == "sha256:" + "f" * 64  # from the release record, before the promotion

    class Down(LocalStore):
        def check(self):
            raise StoreError("no S3 credentials for s3://x")

    out, note = record_promotion(tmp_path, env, "1.2.0", lambda root, e: Down(tmp_path / "x"), promote)
    assert note.startswith("ledger: not written (no S3 credentials")
