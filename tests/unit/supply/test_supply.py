"""Issue 37, no services: the generated policy.json, the audit policy and gate, the SBOM merge (deterministic,
lock hashes), the signing-key configuration errors, and make status's signature line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from platformctl.config import PlatformConfig
from platformctl.errors import AuditError, AuditFailed, SigningError
from platformctl.record import BuildRecord
from platformctl.status import EnvStatus, Status, status_lines
from platformctl.supply import audit, gpg, sbom, signing

ROOT = Path(__file__).resolve().parents[3]


def test_policy_rejects_everything_but_the_repositories_signed_by_the_allowed_keys(tmp_path):
    pol = signing.TrustPolicy((tmp_path / "a.asc", tmp_path / "b.asc"), ("r:5000/ml/airflow", "r:5000/ml/prod"),
                              ("prod",))
    doc = signing.policy_json(pol, tmp_path / "allowed.gpg")
    assert doc["default"] == [{"type": "reject"}]
    src, dst = doc["transports"]["docker"]["r:5000/ml/airflow"], doc["transports"]["docker"]["r:5000/ml/prod"]
    assert src == [{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": [str(tmp_path / "allowed.gpg")],
                    "signedIdentity": {"type": "matchRepository"}}]
    # a promoted copy keeps the build repository's signatures
    assert dst[0]["signedIdentity"] == {"type": "exactRepository", "dockerRepository": "r:5000/ml/airflow"}


def test_lookaside_paths_follow_the_registries_d_layout(tmp_path):
    d = tmp_path / "ml" / "airflow@sha256=ab"
    d.mkdir(parents=True)
    for n in (1, 2, 10):
        (d / f"signature-{n}").write_text("x")
    assert signing.repo_path("127.0.0.1:5000/ml/airflow") == "ml/airflow"
    files = signing.signature_files(tmp_path, "127.0.0.1:5000/ml/airflow", "sha256:ab")
    assert [f.name for f in files] == ["signature-1", "signature-2", "signature-10"]


def _policy(tmp_path: Path, text: str) -> Path:
    (tmp_path / "audit.yaml").write_text(text)
    return tmp_path


def test_audit_policy_entries_need_a_reason_and_an_expiry(tmp_path):
    cfg = PlatformConfig()
    with pytest.raises(AuditError) as e:
        audit.load_policy(_policy(tmp_path, "allowlist:\n  - id: GHSA-1\n    reason: later\n"), cfg)
    assert e.value.one_line().startswith("audit.yaml:2: allowlist.0.expires: is missing")
    with pytest.raises(AuditError) as e:
        audit.load_policy(_policy(tmp_path, "fail_at: severe\n"), cfg)
    assert e.value.where == "audit.yaml:1"
    pol, _ = audit.load_policy(_policy(tmp_path, "fail_at: low\nallowlist:\n  - {id: GHSA-1, reason: not used, "
                                                 "expires: 2030-01-01}\n"), cfg)
    assert pol.fail_at == "low" and pol.allowlist[0].expires == dt.date(2030, 1, 1)


def _result(findings, failing, expired=()):
    return audit.AuditResult(["requirements/a.txt"], 10, findings, failing, list(expired), "audit.yaml", "u", 0.1, [])


def test_the_gate_names_the_expired_entry_and_the_worst_finding():
    f = audit.Finding("jinja2", "3.1.6", "GHSA-1", (), "high", ("3.1.7",), ("airflow-py312.txt",))
    with pytest.raises(AuditFailed) as e:
        audit.gate(_result([f], [f]))
    assert "jinja2==3.1.6: GHSA-1 (high, fixed in 3.1.7)" in e.value.message
    old = audit.AllowEntry(id="GHSA-1", reason="later", expires=dt.date(2020, 1, 1))
    with pytest.raises(AuditFailed) as e:
        audit.gate(_result([f], [], [old]))
    assert "allowlist entry GHSA-1 expired on 2020-01-01 (later)" in e.value.message
    audit.gate(_result([f], []))  # allowed or below the threshold: passes


def test_severity_from_the_advisory():
    assert audit._severity({"database_specific": {"severity": "MODERATE"}}) == "medium"
    assert audit._severity({"severity": [{"type": "CVSS_V3", "score": "9.8"}]}) == "critical"
    assert audit._severity({"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}]}) == "unknown"


ENV_BOM = {
    "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
    "metadata": {"timestamp": "2026-01-01T00:00:00+00:00"},
    "components": [
        {"bom-ref": "apache-airflow==3.3.2", "type": "library", "name": "apache-airflow", "version": "3.3.2",
         "purl": "pkg:pypi/apache-airflow@3.3.2", "licenses": [{"license": {"id": "Apache-2.0"}}]},
        {"bom-ref": "jinja2==3.1.6", "type": "library", "name": "Jinja2", "version": "3.1.6",
         "purl": "pkg:pypi/jinja2@3.1.6"},
    ],
    "dependencies": [{"ref": "apache-airflow==3.3.2", "dependsOn": ["jinja2==3.1.6"]}, {"ref": "jinja2==3.1.6"}],
}


def test_the_sbom_merge_adds_lock_hashes_image_and_base_and_is_deterministic(tmp_path):
    lock = tmp_path / "airflow-py312.txt"
    lock.write_text("jinja2==3.1.6 \\\n    --hash=sha256:" + "b" * 64 + " \\\n    --hash=sha256:" + "a" * 64 + "\n")
    hashes = sbom.lock_hashes([lock])
    assert hashes[("jinja2", "3.1.6")] == (["a" * 64, "b" * 64], "airflow-py312.txt")
    rec = BuildRecord(image="x", version="0.1.0", revision="abc", base_image="local/python:3.11-slim-bookworm",
                      lock_fingerprint="sha256:f")
    one = sbom.merge(json.loads(json.dumps(ENV_BOM)), hashes, rec, PlatformConfig(), base_digest="sha256:cd")
    two = sbom.merge(json.loads(json.dumps(ENV_BOM)), hashes, rec, PlatformConfig(), base_digest="sha256:cd")
    assert one == two
    doc = json.loads(one)
    assert "serialNumber" not in doc and doc["metadata"]["timestamp"].startswith("2026-01-01")
    comps = {c["name"]: c for c in doc["components"]}
    assert [h["content"] for h in comps["Jinja2"]["hashes"]] == ["a" * 64, "b" * 64]
    assert comps["local/python:3.11-slim-bookworm"]["type"] == "container"
    image = next(d for d in doc["dependencies"] if d["ref"] == "image")
    assert set(image["dependsOn"]) == {"base-image", "apache-airflow==3.3.2"}
    assert doc["metadata"]["component"]["type"] == "container"


def test_signing_key_configuration_errors_are_one_line(tmp_path):
    with gpg.signing_key(None, {}) as key:
        assert key is None
    with pytest.raises(SigningError, match="not a 40-hex-digit GPG fingerprint"), gpg.signing_key("ABC", {}):
        pass
    with pytest.raises(SigningError, match="PLATFORM_SIGNING_KEY_FILE=.* is not a file"):
        with gpg.signing_key(None, {"PLATFORM_SIGNING_KEY_FILE": str(tmp_path / "none.asc")}):
            pass


def test_status_says_who_signed_the_running_digest():
    img = {"digest": "sha256:" + "a" * 64, "in_registry": True, "releases": ["1.0.0"], "releases_complete": True,
           "releases_read": 1, "version": "1.0.0", "revision": "abc1234", "python": "3.12",
           "signature": {"required": True, "signed": True, "key": "F" * 40, "note": ""}}
    st = EnvStatus("prod", "r/ml/prod", "s3://b", "p", deployed=True, image=img)
    assert f"  signature: signed by {'F' * 40} (required here)" in status_lines(Status([st], []))
    img["signature"] = {"required": True, "signed": False, "key": None, "note": "no signature in /x"}
    assert "  signature: NOT SIGNED (no signature in /x) (required here)" in status_lines(Status([st], []))


def test_make_sbom_names_the_attachment_only_for_the_digest_push_attached_it_to():
    from platformctl.supply.service import attached_sbom

    d = "sha256:" + "ab" * 32
    pushed = BuildRecord(image="x", digest=d, repository="r:5000/ml/airflow")
    assert attached_sbom(pushed) is None  # pushed before the SBOM was attached
    pushed.extra["supply"] = {"digest": d}
    assert attached_sbom(pushed) == f"r:5000/ml/airflow:sha256-{'ab' * 32}.sbom"
    pushed.extra["supply"] = {"digest": "sha256:" + "cd" * 32}  # attached to an earlier push of another image
    assert attached_sbom(pushed) is None
    assert attached_sbom(BuildRecord(image="x")) is None  # never pushed


def test_verify_image_provenance_line():
    from platformctl.supply.provenance import ProvenanceCheck

    d = "sha256:" + "ab" * 32
    assert ProvenanceCheck("F" * 40, d, "0123456789abcdef", True).line() == \
        f"signed by {'F' * 40}, subject {d[:19]}, commit 0123456789ab (dirty tree)"
    assert ProvenanceCheck(None, d, None, None).line() == f"signed by None, subject {d[:19]}, commit ?"
