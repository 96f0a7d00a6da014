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


def test_a_package_pinned_differently_fails_naming_it_and_the_fix():
    with pytest.raises(SystemExit) as exc:
        ld.difference(BASE, "pydantic==2.0.0 \\\n    --hash=sha256:zzz\n")
    assert "pydantic is pinned at 2.0.0 in the team lock and at 2.14.4" in str(exc.value)
    assert "make lock" in str(exc.value)


def test_on_the_committed_locks_it_agrees_with_read_pins():
    # team and dev are layered on the Airflow lock (dev adds packages of its own); the Airflow locks of
    # two Pythons pin some packages differently: the script refuses that pair
    req = ROOT / "requirements"
    pairs = [("airflow-py311", "team-py311"), ("airflow-py311", "dev-py311"), ("airflow-py311", "airflow-py312")]
    outcomes = []
    for base, lock in ((req / f"{a}.txt", req / f"{b}.txt") for a, b in pairs):
        pa, pb = read_pins(base.read_text()), read_pins(lock.read_text())
        same = {n for n, v in pb.items() if pa.get(n) == v}
        differ = {n for n in pb if n in pa and pa[n] != pb[n]}
        p = subprocess.run([sys.executable, str(SCRIPT), str(base), str(lock)], capture_output=True, text=True)
        if differ:
            assert p.returncode != 0 and "is pinned at" in p.stderr
            outcomes.append("refused")
            continue
        assert p.returncode == 0, p.stderr
        kept = read_pins(p.stdout)
        assert kept == {n: v for n, v in pb.items() if n not in same}
        assert p.stdout.count("--hash=sha256:") >= len(kept)
        outcomes.append(len(kept))
    assert outcomes[0] == len(set(read_pins((req / "team-py311.txt").read_text()))
                              - set(read_pins((req / "airflow-py311.txt").read_text())))
    assert outcomes[1] > 0 and outcomes[2] == "refused"
