"""The built image carries exactly the locked Airflow, the platform code, and runs as airflow (50000:0)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from platformctl.config import load_config
from platformctl.lock.core import lock_filename
from platformctl.lock.files import read_pins
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def python_version(labels) -> str:
    return labels["io.ml-platform.python.version"]


def test_airflow_version_is_the_configured_one(run_in, labels):
    cfg = load_config(ROOT)
    assert run_in("version").stdout.strip() == cfg.airflow_version
    assert labels["io.ml-platform.airflow.version"] == cfg.airflow_version


def test_oci_labels(labels):
    for key in ("title", "version", "revision", "created", "source"):
        assert f"org.opencontainers.image.{key}" in labels
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")
    assert labels["io.ml-platform.lock.fingerprint"].startswith("sha256:")


def test_runs_as_airflow_uid_50000_gid_0(run_in):
    out = run_in("bash", "-c", "id -u; id -g; echo $AIRFLOW_HOME").stdout.split()
    assert out == ["50000", "0", "/opt/airflow"]


def test_no_setuid_or_setgid_programs_and_nothing_world_writable_in_the_venv(run_in):
    """Issue 20 item 8: the Debian base's su, mount, passwd, ... lose their setuid/setgid bits; uv's
    /opt/venv/.lock (0666 as uv leaves it) and everything else in the venv are writable by root only
    (the airflow user is in group 0, so group-writable would be writable by it)."""
    special = run_in("bash", "-c", "find / -xdev -type f -perm /6000 2>/dev/null; true").stdout.split()
    assert special == [], special
    writable = run_in("bash", "-c", "find /opt/venv -xdev -perm /0022 ! -type l 2>/dev/null; true").stdout.split()
    assert writable == [], writable
    mode = run_in("bash", "-c", "stat -c %a /opt/venv/.lock 2>/dev/null || echo absent").stdout.strip()
    assert mode in ("644", "absent"), mode


def test_dependencies_are_consistent(run_in):
    uv = Path(sys.executable).parent / "uv"
    uv = str(uv) if uv.exists() else shutil.which("uv")
    p = run_in("/uv", "pip", "check", "--python", "/opt/venv/bin/python", volumes=[f"{uv}:/uv:ro"], check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_every_pin_is_installed_at_its_pin(run_in, python_version):
    script = "import json, importlib.metadata as m; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    installed = {k.lower().replace("_", "-").replace(".", "-"): v for k, v in json.loads(run_in("python", "-c", script).stdout).items()}
    pins = {}
    for s in ("airflow", "team"):
        pins.update(read_pins((ROOT / "requirements" / lock_filename(s, python_version)).read_text()))
    wrong = {n: (v, installed.get(n)) for n, v in pins.items() if installed.get(n) != v}
    assert not wrong, f"pinned vs installed: {wrong}"


def test_no_installer_caches_or_compilers_left(run_in):
    # BuildKit leaves the (empty) mount points of cache and tool mounts; nothing may be inside them. The
    # Airflow lock is unpacked into uv's temporary cache under /tmp: none of it may stay either (the
    # lock files' bind mounts leave empty files there).
    out = run_in("bash", "-c", "find /root/.cache /home/airflow/.cache /opt/uv /run/secrets -mindepth 1 -not -type d 2>/dev/null; "
                 "find /tmp -mindepth 1 -not -type d -size +0c; "
                 "command -v uv gcc cc pip 2>/dev/null; true", user="0").stdout.split()
    assert out == [], f"left in the image: {out}"


def test_every_installed_module_has_fresh_bytecode(run_in):
    # compiled at build time (the image runs with PYTHONDONTWRITEBYTECODE and a read-only venv for uid
    # 50000): bytecode that is missing or does not match its source would be recompiled at every import
    check = Path(__file__).with_name("bytecode_check.py")
    out = json.loads(run_in("python", "/check.py", volumes=[f"{check}:/check.py:ro"]).stdout)
    assert out["fresh"] > 5000, out  # the Airflow lock alone has ~8,700 modules
    assert out["missing"] == [] and out["stale"] == [], (
        f"{len(out['missing'])} modules without bytecode, e.g. {out['missing'][:5]}; "
        f"{len(out['stale'])} with stale bytecode, e.g. {out['stale'][:5]}")


def test_operators_package_imports(run_in):
    out = run_in("python", "-c", "import ml_platform, sys; print(ml_platform.__file__)").stdout
    assert out.startswith("/opt/venv/lib/python")


def test_build_record_baked_in(run_in, labels):
    # what the plugin's /ml-platform/build shows, read through the plugin inside the image
    rec = json.loads(run_in("python", "-c", "import json, sys; sys.path.insert(0, '/opt/airflow/plugins'); "
                            "import ml_platform_plugin as p; print(json.dumps(p.build_record()))").stdout)
    assert rec["version"] == labels["org.opencontainers.image.version"]
    assert rec["revision"] == labels["org.opencontainers.image.revision"]
    assert rec["created"] == labels["org.opencontainers.image.created"]
    assert rec["lock_fingerprint"] == labels["io.ml-platform.lock.fingerprint"]
    assert rec["airflow_version"] == labels["io.ml-platform.airflow.version"]
    actual = run_in("python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()
    assert rec["python_version"] == labels["io.ml-platform.python.version"] == actual
