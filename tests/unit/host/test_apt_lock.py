"""Host set-up waits, bounded, while another package manager run holds apt/dpkg's lock (issue 33, defect 7:
`make test` on a fresh machine stopped at once with exit 16, "Could not get lock /var/lib/dpkg/lock-frontend.
It is held by process ... (apt-get)")."""

from __future__ import annotations

import fcntl
import os

import pytest

from platformctl.errors import HostSetupError
from platformctl.host import setup


def test_the_holder_of_a_lock_is_found_in_the_kernels_lock_table(tmp_path):
    """A real fcntl lock (as dpkg takes), read back from /proc/locks: the file, this process and its name."""
    lock = tmp_path / "lock-frontend"
    lock.write_text("")
    assert setup.lock_holder((str(lock),)) is None
    with lock.open("w") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        path, pid, name = setup.lock_holder((str(lock), str(tmp_path / "missing")))
        assert (path, pid) == (str(lock), os.getpid()) and name == open(f"/proc/{os.getpid()}/comm").read().strip()
    assert setup.lock_holder((str(lock),)) is None


def test_set_up_waits_for_the_holder_with_one_line_naming_it():
    answers = [("/var/lib/dpkg/lock-frontend", 4242, "apt-get")] * 3 + [None]
    lines: list[str] = []
    setup.wait_for_apt_locks(lines.append, timeout=5, poll=0.01, holder=lambda: answers.pop(0))
    assert answers == [] and lines == [
        "waiting for apt-get (pid 4242) to release /var/lib/dpkg/lock-frontend: another package manager run (up to 5 s)"]


def test_the_wait_is_bounded_and_names_the_holder():
    lines: list[str] = []
    with pytest.raises(HostSetupError) as e:
        setup.wait_for_apt_locks(lines.append, timeout=0.05, poll=0.01,
                                 holder=lambda: ("/var/lib/dpkg/lock", 7, "unattended-upgr"))
    assert len(lines) == 1 and "unattended-upgr (pid 7) still holds /var/lib/dpkg/lock" in e.value.one_line()
    assert e.value.exit_code == 16


def test_apt_get_runs_with_a_lock_timeout(tmp_path, monkeypatch):
    """apt-get also waits for dpkg's lock itself (a run that starts between the check and ours)."""
    calls: list[list[str]] = []

    class Done:
        returncode = 0

    monkeypatch.setattr(setup, "_apt_updated", False)
    monkeypatch.setattr(setup, "lock_holder", lambda *a, **k: None)
    monkeypatch.setattr(setup.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or Done())
    setup.apt_install(("skopeo",), tmp_path / "apt.log", lambda line: None, lock_wait=600)
    assert [c[:3] for c in calls] == [["apt-get", "-o", "DPkg::Lock::Timeout=600"]] * 2
    assert calls[0][3] == "update" and calls[1][3:] == ["install", "-y", "-q", "skopeo"]
