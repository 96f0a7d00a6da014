"""docker/lock_difference.py: the team lock minus the Airflow lock, as the image build installs it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from platformctl.lock.files import read_pins
from tests.conftest import ROOT

SCRIPT = ROOT / "docker" / "lock_difference.py"
spec = importlib.util.spec_from_file_location("lock_difference", SCRIPT)
ld = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ld)

BASE = """#
# header comment
#
pydantic==2.14.4 \\
    --hash=sha256:aaa \\
    --hash=sha256:bbb
    # via apache-airflow
PyYAML==6.0.4 \\
    --hash=sha256:ccc
"""
TEAM = """# set: team
pydantic==2.14.4 \\
    --hash=sha256:aaa \\
    --hash=sha256:bbb
    # via -r requirements/team.in
pyyaml==6.0.4 \\
    --hash=sha256:ccc
tqdm==4.67.1 \\
    --hash=sha256:ddd \\
    --hash=sha256:eee
    # via -r requirements/team.in
humanize==4.12.0 \\
    --hash=sha256:fff
"""


def test_keeps_only_what_the_base_lock_does_not_pin_with_its_hashes():
    out = ld.difference(BASE, TEAM)
    assert out == ("tqdm==4.67.1 \\\n    --hash=sha256:ddd \\\n    --hash=sha256:eee\n"
                   "humanize==4.12.0 \\\n    --hash=sha256:fff\n")
    assert read_pins(out) == {"tqdm": "4.67.1", "humanize": "4.12.0"}


def test_names_compare_canonically_and_nothing_left_gives_an_empty_file():
    assert ld.difference(BASE, "pyyaml==6.0.4 \\\n    --hash=sha256:ccc\n") == ""  # PyYAML in the base
    assert ld.difference(BASE, BASE) == ""


def test_a_block_without_hashes_does_not_continue_into_the_next():
    out = ld.difference(BASE, "a==1 \\\n    # via x\nb==2 \\\n    --hash=sha256:y\n")
    assert out.splitlines() == ["a==1", "b==2 \\", "    --hash=sha256:y"]


def test_a_package_pinned_differently_fails_naming_it_and_the_fix(tmp_path):
    with pytest.raises(ld.LockError) as exc:
        ld.difference(BASE, "pydantic==2.0.0 \\\n    --hash=sha256:0a\n", "the airflow lock", "the team lock")
    assert str(exc.value) == ("pydantic is pinned at 2.0.0 in the team lock and at 2.14.4 in the airflow lock: "
                              "the locks are out of step, run make lock")
    (tmp_path / "airflow.txt").write_text(BASE)
    (tmp_path / "team.txt").write_text("pydantic==2.0.0 \\\n    --hash=sha256:0a\n")
    p = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "airflow.txt"), str(tmp_path / "team.txt")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith("error: pydantic is pinned at 2.0.0 in the team lock and at 2.14.4 in the airflow lock")


@pytest.mark.parametrize("line", [
    "mylib @ https://files.example.invalid/mylib-1.0-py3-none-any.whl",
    "--index-url https://index.example.invalid/simple",
    "-e ./src/mylib",
    "requests>=2",
])
def test_lines_the_build_cannot_install_as_locked_fail_naming_the_line(line):
    with pytest.raises(ld.LockError) as exc:
        ld.difference(BASE, f"a==1 \\\n    --hash=sha256:0a\n{line}\n", "the airflow lock", "the team lock")
    assert f"the team lock, line 3: unsupported requirement line {line!r}" in str(exc.value)


def test_a_hash_outside_a_block_fails_instead_of_joining_the_previous_one():
    text = "a==1 \\\n    --hash=sha256:0a\n    # via x\n    --hash=sha256:0b\n"
    with pytest.raises(ld.LockError) as exc:
        ld.difference(BASE, text, lock_label="the team lock")
    assert "line 4" in str(exc.value)


def test_crlf_extras_and_markers():
    base = "numpy==1.26.4 ; python_version < '3.12' \\\n    --hash=sha256:01\nnumpy==2.1.0 ; python_version >= '3.12' \\\n    --hash=sha256:02\n"
    lock = ("numpy==2.1.0 ; python_version >= '3.12' \\\r\n    --hash=sha256:02\r\n"
            "uvicorn[standard]==0.30.0 \\\r\n    --hash=sha256:03\r\n")
    assert ld.difference(base, lock) == "uvicorn[standard]==0.30.0 \\\n    --hash=sha256:03\n"


def test_the_pin_pattern_is_the_lock_codes():
    from platformctl.lock import files

    assert ld.PIN.pattern == files._PIN_RE.pattern


def test_on_the_committed_locks():
    # team and dev are compiled against the Airflow lock's pins; each adds packages of its own (team:
    # securesystemslib for bundle signatures)
    req = ROOT / "requirements"
    airflow = read_pins((req / "airflow-py311.txt").read_text())
    for lock, expect_some in (("team-py311", True), ("dev-py311", True)):
        p = subprocess.run([sys.executable, str(SCRIPT), str(req / "airflow-py311.txt"), str(req / f"{lock}.txt")],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        pins = read_pins((req / f"{lock}.txt").read_text())
        kept = read_pins(p.stdout)
        assert kept == {n: v for n, v in pins.items() if n not in airflow}
        assert bool(kept) == expect_some
        for name in kept:  # each kept block carries its hashes
            block = p.stdout.split(f"{name}==", 1)[1].split("\n\n")[0]
            assert "--hash=sha256:" in block.split("\n")[1]
