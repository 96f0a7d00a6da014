"""Reuse never trusts the registry (issue 20 item 7): an adopted image gets a registry tag only after
the image tests passed on it in this build, and the build record says how it came to be trusted.

The engine and skopeo are recording fakes: what is checked is the order of the calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from platformctl.config import load_config
from platformctl.errors import ImageTestError
from platformctl.services import build as b
from platformctl.image.build import ImageTestReport
from platformctl.registry import reuse
from platformctl.version import VersionInfo

ROOT = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "cd" * 32


class FakeEngine:
    cli = "/fake/docker"

    def __init__(self, calls):
        self.calls = calls

    def image_id(self, ref):
        return "sha256:local"

    def inspect(self, ref):
        return {"Id": "sha256:local", "Config": {"Labels": {"org.opencontainers.image.version": "0.1.0"}}}

    def tag(self, image_id, tag):
        self.calls.append(("tag-local", tag))


@pytest.fixture
def calls(monkeypatch):
    calls: list = []

    class FakeSkopeo:
        def __init__(self, **kw):
            pass

        def copy(self, src, dst):
            calls.append(("registry-tag", dst))

    monkeypatch.setattr(reuse, "Skopeo", FakeSkopeo)
    return calls


def _adopt(tmp_path, calls, monkeypatch, *, tests: str, run_tests: bool = True):
    def fake_tests(root, image, engine):
        calls.append(("image-tests", image))
        if tests == "fail":
            raise ImageTestError(f"image {image} failed its tests")
        return ImageTestReport(runs=[], checks={"deps": {"passed": True}}, seconds={})

    monkeypatch.setattr(b, "run_image_tests", fake_tests)
    cfg = load_config(ROOT, {})
    spec = type("Spec", (), {"tags": ["ml-platform-airflow:1.2.3", "ml-platform-airflow:sha-abcdef0"],
                             "build_args": {"BASE_IMAGE": "base", "LOCK_FINGERPRINT": "f" * 64}})()
    vinfo = VersionInfo("1.2.3", "abcdef0" + "0" * 33, False, "2026-01-01T00:00:00Z")
    hit = {"digest": DIGEST, "labels": {"io.ml-platform.lock.fingerprint": "f" * 64}}
    return b._adopt(tmp_path, cfg, FakeEngine(calls), spec, vinfo, "e" * 64, hit, None, run_tests)


def record(tmp_path) -> dict:
    return json.loads((tmp_path / "build" / "build-record.json").read_text())


def test_adopted_image_is_tested_before_any_registry_tag(tmp_path, calls, monkeypatch):
    rec = _adopt(tmp_path, calls, monkeypatch, tests="pass")
    kinds = [c[0] for c in calls]
    assert kinds.index("image-tests") < kinds.index("registry-tag"), calls
    assert rec.tested and rec.tested_here and "tests passed on it in this build" in rec.verification
    saved = record(tmp_path)
    assert saved["tested"] and saved["tested_here"] and saved["reused_from"] == DIGEST
    assert saved["pushed_tags"][-1] == "inputs-" + "e" * 32


def test_an_image_failing_its_tests_is_never_tagged_in_the_registry(tmp_path, calls, monkeypatch):
    with pytest.raises(ImageTestError):
        _adopt(tmp_path, calls, monkeypatch, tests="fail")
    assert not [c for c in calls if c[0] == "registry-tag"], calls
    saved = record(tmp_path)
    assert saved["tested"] is False and saved["tested_here"] is False and saved["reused_from"] == DIGEST


def test_no_test_adopts_locally_only_and_the_record_says_untested(tmp_path, calls, monkeypatch):
    rec = _adopt(tmp_path, calls, monkeypatch, tests="pass", run_tests=False)
    assert [c[0] for c in calls] == ["tag-local", "tag-local"]
    assert not rec.tested and rec.pushed_tags == [] and rec.verification == "adopted from the registry, not tested"


def test_reuse_adopt_without_verify_copies_nothing(calls):
    cfg = load_config(ROOT, {})
    image_id, tags = reuse.adopt(cfg, FakeEngine(calls), {"digest": DIGEST}, "1.2.3", "abcdef0",
                                 ["ml-platform-airflow:1.2.3"], None)
    assert tags == [] and not [c for c in calls if c[0] == "registry-tag"]
