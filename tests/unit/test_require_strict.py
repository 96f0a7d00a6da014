"""`make test` never reports green with an integration test skipped: require() fails under it and in CI."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

PROBE = "from tests.conftest import require\n\ndef test_needs_a_service():\n    require(False, 'no such service')\n"


def _run(tmp_path, **env):
    (tmp_path / "test_probe.py").write_text(PROBE)
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "PLATFORM_TEST_STRICT")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           str(tmp_path / "test_probe.py")], capture_output=True, text=True, cwd=ROOT,
                          env={**base, "PYTHONPATH": str(ROOT), **env})


def test_a_bare_local_run_skips(tmp_path):
    p = _run(tmp_path)
    assert p.returncode == 0 and "1 skipped" in p.stdout, p.stdout


def test_make_test_and_ci_fail_instead(tmp_path):
    for env in ({"PLATFORM_TEST_STRICT": "1"}, {"CI": "true"}):
        p = _run(tmp_path, **env)
        assert p.returncode == 1 and "1 failed" in p.stdout and "no such service" in p.stdout, p.stdout
