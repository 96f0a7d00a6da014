"""The per-machine file and the set-up's host-independent parts (CA bundle, remembered variables)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from platformctl import machine
from platformctl.config import collect_overrides, load_config, load_config_with_sources
from platformctl.errors import ConfigError, MachineFileError
from platformctl.host.setup import host_ca_settings, install_allowed, user_settings

ROOT = Path(__file__).resolve().parents[3]


def test_precedence_set_over_environment_over_machine_file_over_platform_yaml(tmp_path):
    (tmp_path / "platform.yaml").write_text("image:\n  python: '3.12'\n  name: from-yaml\n  engine: buildx\n")
    machine.save(tmp_path, {"image.python": "3.11", "image.name": "from-machine", "image.engine": "docker-buildkit"})
    cfg, sources = load_config_with_sources(tmp_path, collect_overrides(["image.engine=auto"], {"PYTHON": "3.12"}))
    assert (cfg.image.python, cfg.image.name, cfg.image.engine) == ("3.12", "from-machine", "auto")
    assert sources == {"image.python": "environment variable PYTHON", "image.name": machine.SOURCE,
                       "image.engine": "--set image.engine"}


def test_empty_variable_is_no_override(tmp_path):
    machine.save(tmp_path, {"image.base_image": "local/python:3.11-slim-bookworm", "image.python": "3.11"})
    cfg = load_config(tmp_path, collect_overrides([], {"BASE_IMAGE": "", "PYTHON": ""}))
    assert cfg.image.base_image == "local/python:3.11-slim-bookworm" and cfg.image.python == "3.11"


def test_corrupt_machine_file_names_its_path_and_the_way_out(tmp_path):
    machine.path(tmp_path).parent.mkdir()
    machine.path(tmp_path).write_bytes(b"image.python: [\xff\n")
    with pytest.raises(MachineFileError) as exc:
        load_config(tmp_path)
    assert exc.value.where.startswith(".platform/local.yaml") and "delete it to start over" in exc.value.hint
    machine.path(tmp_path).write_text("- a list\n")
    with pytest.raises(MachineFileError):
        load_config(tmp_path)


def test_a_bad_remembered_value_is_blamed_on_the_machine_file(tmp_path):
    machine.save(tmp_path, {"image.python": "3.13"})
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path)
    assert exc.value.where == ".platform/local.yaml" and "delete .platform/local.yaml" in exc.value.hint


def test_the_cli_turns_a_corrupt_machine_file_into_one_line(tmp_path):
    machine.path(tmp_path).parent.mkdir()
    machine.path(tmp_path).write_text("{{{")
    p = subprocess.run([sys.executable, str(ROOT / "build.py"), "doctor"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PLATFORM_ROOT": str(tmp_path)})
    assert p.returncode == MachineFileError.exit_code
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("error: .platform/local.yaml:")


def test_remember_reports_only_what_changed_and_keeps_the_rest(tmp_path):
    assert machine.remember(tmp_path, {"image.python": "3.11", "image.docker": "/usr/bin/docker"}) == {
        "image.python": "3.11", "image.docker": "/usr/bin/docker"}
    before = machine.path(tmp_path).read_text()
    assert machine.remember(tmp_path, {"image.python": "3.11"}) == {}
    assert machine.path(tmp_path).read_text() == before
    assert machine.remember(tmp_path, {"image.python": "3.12"}) == {"image.python": "3.12"}
    assert machine.load(tmp_path) == {"image.python": "3.12", "image.docker": "/usr/bin/docker"}


def test_host_ca_bundle_is_the_default_secret_unless_set_or_turned_off(tmp_path):
    have = {"/etc/pki/tls/certs/ca-bundle.crt"}.__contains__
    cfg = load_config(tmp_path)
    assert host_ca_settings(cfg, have) == {"image.build_secrets.ca_bundle": "/etc/pki/tls/certs/ca-bundle.crt"}
    assert host_ca_settings(cfg, lambda p: False) == {}
    assert host_ca_settings(load_config(tmp_path, collect_overrides(["setup.ca_bundle=none"])), have) == {}
    own = load_config(tmp_path, collect_overrides([], {"CA_BUNDLE": "/corp/ca.pem"}))
    assert host_ca_settings(own, have) == {}


def test_variables_the_user_passed_are_remembered_parsed():
    assert user_settings({"PYTHON": "3.11", "PYTHONS": "3.11,3.12", "BASE_IMAGE": "", "HOME": "/root"}) == {
        "image.python": "3.11", "python_versions": ["3.11", "3.12"]}


def test_installing_is_off_with_the_variable_or_the_setting(tmp_path):
    cfg = load_config(tmp_path)
    assert install_allowed(cfg, {}) and not install_allowed(cfg, {"PLATFORM_NO_INSTALL": "1"})
    assert not install_allowed(load_config(tmp_path, collect_overrides(["setup.install=false"])), {})
