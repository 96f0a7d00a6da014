"""The built image carries exactly the locked Airflow, the platform code, and runs as airflow (50000:0)."""

from __future__ import annotations

import pytest

from platformctl.config import load_config
from platformctl.image import checks
from platformctl.lock.core import lock_filename
from platformctl.lock.files import read_pins
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def python_version(labels) -> str:
    return labels["io.ml-platform.python.version"]


def test_airflow_version_is_the_configured_one(code_facts, labels):
    cfg = load_config(ROOT)
    assert code_facts["airflow_version"] == cfg.airflow_version
    assert labels["io.ml-platform.airflow.version"] == cfg.airflow_version


def test_oci_labels(labels):
    for key in ("title", "version", "revision", "created", "source"):
        assert f"org.opencontainers.image.{key}" in labels
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")
    assert labels["io.ml-platform.lock.fingerprint"].startswith("sha256:")
    assert checks.label_problem(labels) is None


def test_runs_as_airflow_uid_50000_gid_0(code_facts):
    out = code_facts["user"]  # uid, gid, $AIRFLOW_HOME of the probe, started as the image's user
    assert out == ["50000", "0", "/opt/airflow"]


def test_no_setuid_or_setgid_programs_and_nothing_group_or_world_writable_in_the_venv(deps_facts):
    """Issue 20 item 8: the Debian base's su, mount, passwd, ... lose their setuid/setgid bits; uv's
    /opt/venv/.lock and everything else in the venv are writable by root only (the airflow user is in
    group 0, so group-writable would be writable by it)."""
    perms = deps_facts["permissions"]
    assert perms["setuid_or_setgid"] == [], perms
    assert perms["venv_writable"] == [], perms


def test_dependencies_are_consistent(deps_facts):
    p = deps_facts["pip_check"]  # `uv pip check` against the image's venv (the host's uv, mounted)
    assert p["returncode"] == 0, p["output"]


def test_every_pin_is_installed_at_its_pin(deps_facts, python_version):
    installed = checks.installed_versions(deps_facts["distributions"])
    pins = {}
    for s in ("airflow", "team"):
        pins.update(read_pins((ROOT / "requirements" / lock_filename(s, python_version)).read_text()))
    wrong = {n: (v, installed.get(n)) for n, v in pins.items() if installed.get(n) != v}
    assert not wrong, f"pinned vs installed: {wrong}"
    assert checks.wrong_pins(deps_facts["distributions"], pins) == {}


def test_no_installer_caches_or_compilers_left(deps_facts):
    # BuildKit leaves the (empty) mount points of cache and tool mounts; nothing may be inside them. The
    # Airflow lock is unpacked into uv's temporary cache under /tmp: none of it may stay either (the
    # lock files' bind mounts leave empty files there). Gathered as root, before the probe ran uv.
    out = deps_facts["leftovers"]
    assert out == [], f"left in the image: {out}"


def test_every_installed_module_has_fresh_bytecode(deps_facts):
    # compiled at build time (the image runs with PYTHONDONTWRITEBYTECODE and a read-only venv for uid
    # 50000): bytecode that is missing or does not match its source would be recompiled at every import
    out = deps_facts["bytecode"]
    assert out["fresh"] > 5000, out  # the Airflow lock alone has ~8,700 modules
    assert out["missing"] == [] and out["stale"] == [], (
        f"{len(out['missing'])} modules without bytecode, e.g. {out['missing'][:5]}; "
        f"{len(out['stale'])} with stale bytecode, e.g. {out['stale'][:5]}")
    assert checks.bytecode_problem(out) is None


def test_operators_package_imports(code_facts):
    out = code_facts["operators_file"]
    assert out.startswith("/opt/venv/lib/python")


def test_build_record_baked_in(code_facts, labels):
    # what the plugin's /ml-platform/build shows, read through the plugin inside the image
    rec = code_facts["build_record"]
    assert rec["version"] == labels["org.opencontainers.image.version"]
    assert rec["revision"] == labels["org.opencontainers.image.revision"]
    assert rec["created"] == labels["org.opencontainers.image.created"]
    assert rec["lock_fingerprint"] == labels["io.ml-platform.lock.fingerprint"]
    assert rec["airflow_version"] == labels["io.ml-platform.airflow.version"]
    actual = code_facts["python_version"]
    assert rec["python_version"] == labels["io.ml-platform.python.version"] == actual
    assert checks.build_record_problem(rec, labels, actual) is None
