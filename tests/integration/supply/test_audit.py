"""make audit against an OSV-compatible service on 127.0.0.1 serving fixture advisories (issue 37).

The project's real locks are audited (every pin hash-checked by pip-audit, strict); the fixture says the
shipped jinja2 pin is vulnerable."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from platformctl.lock.files import read_pins
from tests.integration.supply.osv_server import OsvServer, advisory

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The files make audit reads: build.py, platformctl, platform.yaml, the locks (copied, not a clone)."""
    dst = tmp_path_factory.mktemp("audit") / "repo"
    dst.mkdir()
    for name in ("build.py", "platform.yaml", "pyproject.toml"):
        shutil.copy(ROOT / name, dst / name)
    for d in ("platformctl", "requirements", "operators"):
        shutil.copytree(ROOT / d, dst / d, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@pytest.fixture(scope="module")
def jinja2_pin() -> str:
    return read_pins((ROOT / "requirements" / "airflow-py312.txt").read_text())["jinja2"]


@pytest.fixture(scope="module")
def osv(jinja2_pin):
    with OsvServer([advisory("GHSA-test-0001", "jinja2", jinja2_pin, "99.0.0", "HIGH")]) as s:
        yield s


def run(project: Path, url: str, policy: str | None = None) -> subprocess.CompletedProcess:
    if policy is None:
        (project / "audit.yaml").unlink(missing_ok=True)
    else:
        (project / "audit.yaml").write_text(policy)
    return subprocess.run([sys.executable, "build.py", "audit"], cwd=project, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "AUDIT_OSV_URL": url, "HOME": str(project)}, timeout=600)


def test_a_vulnerable_pin_is_found_and_gated(project, osv, jinja2_pin):
    p = run(project, osv.url, "fail_at: high\n")
    assert p.returncode == 47, p.stdout + p.stderr
    assert f"jinja2=={jinja2_pin}: GHSA-test-0001 (high, fixed in 99.0.0)" in p.stdout
    assert len(p.stderr.strip().splitlines()) == 1 and "GHSA-test-0001" in p.stderr, p.stderr
    assert osv.queries > 100  # every pin was asked for, not only the vulnerable one


def test_below_the_threshold_passes(project, osv):
    p = run(project, osv.url, "fail_at: critical\n")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "audit passed" in p.stdout and "GHSA-test-0001" in p.stdout


def test_an_allowlisted_finding_passes_until_its_entry_expires(project, osv):
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    p = run(project, osv.url, f"fail_at: low\nallowlist:\n  - id: GHSA-test-0001\n    reason: not reachable from "
                              f"our DAGs\n    expires: {later}\n")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "[allowed: GHSA-test-0001]" in p.stdout
    earlier = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    p = run(project, osv.url, f"fail_at: low\nallowlist:\n  - id: GHSA-test-0001\n    reason: not reachable\n"
                              f"    expires: {earlier}\n")
    assert p.returncode == 47, p.stdout + p.stderr
    assert f"allowlist entry GHSA-test-0001 expired on {earlier}" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_a_policy_entry_without_a_reason_or_expiry_is_one_line(project, osv):
    p = run(project, osv.url, "allowlist:\n  - id: GHSA-test-0001\n    expires: 2030-01-01\n")
    assert p.returncode == 48, p.stderr
    assert p.stderr.startswith("error: audit.yaml:2: allowlist.0.reason") and len(p.stderr.strip().splitlines()) == 1
    p = run(project, osv.url, "allowlist:\n  - id: GHSA-test-0001\n    reason: later\n")
    assert p.returncode == 48 and "allowlist.0.expires" in p.stderr, p.stderr


def test_service_down_and_garbage_are_one_line_failures(project, osv):
    with OsvServer([]) as down:
        url = down.url
    p = run(project, url)  # nothing listens there any more
    assert p.returncode == 48, p.stdout + p.stderr
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and "cannot be reached" in p.stderr, p.stderr
    with OsvServer([]) as garbage:
        garbage.mode = "garbage"
        p = run(project, garbage.url)
    assert p.returncode == 48, p.stdout + p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "not OSV JSON" in p.stderr, p.stderr


def test_make_build_runs_the_audit_first_when_configured(project, osv):
    from platformctl.config import load_config
    from platformctl.errors import AuditFailed
    from platformctl.supply.service import before_build

    (project / "audit.yaml").write_text("fail_at: high\n")
    off = load_config(project, {"audit.osv_url": (osv.url, "test")})
    asked = osv.queries
    before_build(project, off)  # audit.on_build false: nothing asked
    assert osv.queries == asked
    on = load_config(project, {"audit.osv_url": (osv.url, "test"), "audit.on_build": (True, "test")})
    with pytest.raises(AuditFailed, match="GHSA-test-0001"):
        before_build(project, on)
    assert osv.queries > asked
