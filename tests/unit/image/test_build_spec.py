from __future__ import annotations

import pytest

from platformctl.config import collect_overrides, load_config
from platformctl.errors import ConfigError
from platformctl.image.build import build_spec, image_lock_fingerprint, resolve_secrets
from platformctl.engine import DockerEngine


def test_build_args_follow_the_configuration(repo):
    cfg = load_config(repo, collect_overrides([], {"PYTHON": "3.11", "BASE_IMAGE": "local/py:3.11"}))
    assert cfg.airflow_version == load_config(repo).airflow_version  # platform.yaml's, whichever it is
    spec, v = build_spec(repo, cfg, DockerEngine("docker", "docker-buildkit"))
    a = spec.build_args
    assert a["PY_TAG"] == "311" and a["PYTHON_VERSION"] == "3.11" and a["BASE_IMAGE"] == "local/py:3.11"
    assert a["AIRFLOW_VERSION"] == cfg.airflow_version and a["BASE_MODE"] == "python" and spec.target == "platform"
    assert a["REVISION"] == v.revision and len(a["REVISION"]) == 40
    assert spec.tags[1] == f"ml-platform-airflow:sha-{a['REVISION'][:7]}"
    assert "+" not in spec.tags[0]


def test_lock_fingerprint_moves_with_a_lock_and_only_the_images_locks(repo):
    cfg = load_config(repo, collect_overrides([], {"PYTHON": "3.11"}))
    before = image_lock_fingerprint(repo, cfg)
    dev = repo / "requirements/dev-py311.txt"
    dev.write_text(dev.read_text() + "\n# dev change\nrich==1.0\n")
    assert image_lock_fingerprint(repo, cfg) == before  # dev tooling is not in the image
    team = repo / "requirements/team-py311.txt"
    team.write_text(team.read_text() + "rich==1.0\n")
    assert image_lock_fingerprint(repo, cfg) != before


def test_missing_secret_file_is_a_clear_error(repo):
    cfg = load_config(repo, collect_overrides([], {"CA_BUNDLE": "/nonexistent/ca.pem"}))
    with pytest.raises(ConfigError) as exc:
        resolve_secrets(repo, cfg)
    assert "ca_bundle" in exc.value.message and "/nonexistent/ca.pem" in exc.value.message


def test_unknown_base_mode_is_refused(repo):
    with pytest.raises(ConfigError) as exc:
        load_config(repo, collect_overrides([], {"BASE_MODE": "alpine"}))
    assert "image.base_mode" in exc.value.message
