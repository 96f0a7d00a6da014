"""The typed build record (platformctl/record.py) reads and writes the JSON make build always wrote."""

from __future__ import annotations

import json

from platformctl.record import RECORD, BuildRecord, inputs_tag, version_tag

FULL = {
    "airflow_version": "3.3.2", "base_image": "local/python:3.11-slim-bookworm", "base_mode": "python",
    "build_seconds": 0.76, "checks": {"deps": {"passed": True, "key": "sha256:k"}}, "created": "2026-01-01T00:00:00Z",
    "digest": None, "dirty": False, "image": "ml-platform-airflow:0.1.0-dev.3-gabc1234",
    "image_id": "sha256:" + "a" * 64, "inputs": "e" * 64, "labels": {"org.opencontainers.image.version": "0.1.0"},
    "lock_fingerprint": "sha256:f", "pushed_tags": [], "python_version": "3.11", "repository": None,
    "reused_from": None, "revision": "abc1234" + "0" * 33, "tags": ["ml-platform-airflow:0.1.0-dev.3-gabc1234",
                                                                    "ml-platform-airflow:sha-abc1234"],
    "tested": True, "tested_here": True, "timings": {"build": 1.5, "test deps": None},
    "verification": "built and tested in this build", "version": "0.1.0-dev.3+gabc1234",
}


def test_a_record_round_trips_byte_for_byte(tmp_path):
    text = json.dumps(FULL, indent=2, sort_keys=True) + "\n"
    (tmp_path / "build").mkdir()
    (tmp_path / RECORD).write_text(text)
    rec = BuildRecord.load(tmp_path)
    assert rec is not None and rec.tested is True and rec.dirty is False and rec.checks["deps"]["key"] == "sha256:k"
    rec.save(tmp_path)
    assert (tmp_path / RECORD).read_text() == text


def test_helpers_replace_the_string_surgery():
    rec = BuildRecord.from_dict(FULL)
    assert rec.version_tag == "0.1.0-dev.3-gabc1234" == version_tag(FULL["tags"][0])
    assert rec.short_sha == "abc1234"
    assert rec.inputs_tag == inputs_tag("e" * 64) == "inputs-" + "e" * 32


def test_partial_and_unknown_keys_load_and_unknown_keys_are_kept(tmp_path):
    (tmp_path / "build").mkdir()
    (tmp_path / RECORD).write_text(json.dumps({"tags": ["x:1.0"], "digest": None, "image_id": "sha256:l",
                                               "from_a_newer_tool": 1}))
    rec = BuildRecord.load(tmp_path)
    assert rec.version_tag == "1.0" and rec.revision is None and rec.tested is False and rec.inputs_tag is None
    rec.save(tmp_path)
    assert json.loads((tmp_path / RECORD).read_text())["from_a_newer_tool"] == 1
    assert BuildRecord.load(tmp_path / "nowhere") is None


def test_dirty_is_a_bool_and_the_old_string_form_reads(tmp_path):
    """Issue 33, defect 8: a record an older make build wrote with dirty "True"/"False" reads as a bool
    (the string "False" was truthy: make push refused a clean build)."""
    assert BuildRecord.from_dict({**FULL, "dirty": "False"}).dirty is False
    assert BuildRecord.from_dict({**FULL, "dirty": "True"}).dirty is True
    assert BuildRecord.from_dict(FULL).dirty is False


def test_build_spec_version_info_dirty_is_a_bool(tmp_path, monkeypatch):
    import platformctl.image.build as build
    from platformctl.config import load_config
    from tests.conftest import ROOT

    class Engine:
        mode = "docker-buildkit"

    for dirty in (True, False):
        monkeypatch.setattr(build, "image_version", lambda root, configured, d=dirty: build.VersionInfo(
            "1.0.0" + (".dirty" if d else ""), "a" * 40, d, "2026-01-01T00:00:00Z"))
        _, vinfo = build.build_spec(ROOT, load_config(ROOT), Engine())
        assert vinfo.dirty is dirty
