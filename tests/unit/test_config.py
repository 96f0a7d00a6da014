from __future__ import annotations

from pathlib import Path

import pytest

from platformctl.config import collect_overrides, load_config
from platformctl.errors import ConfigError


def test_defaults_without_a_file(tmp_path):
    cfg = load_config(tmp_path)
    assert cfg.airflow_version == "3.3.2" and cfg.python_versions == ["3.12", "3.11"]
    assert cfg.image.resolved_base_image(cfg.airflow_version) == "python:3.12-slim-bookworm"


def test_env_and_set_overrides(tmp_path):
    ov = collect_overrides(["image.base_mode=extend"], {"PYTHON": "3.11", "PYTHONS": "3.11,3.12"})
    cfg = load_config(tmp_path, ov)
    assert cfg.image.python == "3.11" and cfg.python_versions == ["3.11", "3.12"]
    assert cfg.image.resolved_base_image("3.3.2") == "apache/airflow:3.3.2-python3.11"


def test_unknown_key_names_line_and_known_keys(tmp_path):
    (tmp_path / "platform.yaml").write_text("airflow_version: '3.3.2'\nimage:\n  pyhton: '3.11'\n")
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path)
    assert exc.value.where == "platform.yaml:3"
    assert "image.pyhton" in exc.value.message and "python" in exc.value.hint


def test_bad_override_names_its_source(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path, collect_overrides([], {"BASE_MODE": "alpine"}))
    assert exc.value.where == "environment variable BASE_MODE"


def test_image_python_must_have_a_lock(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path, collect_overrides(["image.python=3.13"], {}))
    assert "make lock" in exc.value.message


def test_committed_config_and_schema_are_in_sync(root):
    from platformctl.schemas import all_schemas

    load_config(root)
    for name, text in all_schemas().items():
        assert (root / "schemas" / name).read_text() == text, f"run make schema ({name})"


def test_configured_image_version_replaces_the_git_version(tmp_path):
    import subprocess

    from platformctl.version import image_version

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "c"],
                   check=True)
    assert image_version(tmp_path).version.startswith("0.0.0-dev.1+g")
    assert image_version(tmp_path, "2.5.0").version == "2.5.0"
    (tmp_path / "f").write_text("changed")
    assert image_version(tmp_path, "2.5.0").version.endswith(".dirty")  # still refused for push
    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root, collect_overrides([], {"IMAGE_VERSION": "2.5.0"}))
    assert cfg.image.version == "2.5.0"
    with pytest.raises(ConfigError):
        load_config(root, collect_overrides([], {"IMAGE_VERSION": "two"}))
