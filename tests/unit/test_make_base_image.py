"""scripts/make-base-image.sh: which Debian archive it reads from the machine's apt sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "make-base-image.sh"


def mirror(etc: Path, suite: str = "bookworm") -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), "--print-mirror", suite], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "APT_ETC": str(etc)})


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


def test_one_line_entries_with_options_and_third_party_repositories_first(etc):
    (etc / "sources.list.d" / "docker.list").write_text(
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] https://repo.example.invalid/linux/debian bookworm stable\n")
    (etc / "sources.list.d" / "node.list").write_text(
        "deb [signed-by=/k.gpg] https://node.example.invalid/node_20.x nodistro main\n")
    (etc / "sources.list").write_text(
        "# comment\n"
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://security.example.invalid/debian-security bookworm-security main\n"
        "deb-src http://src.example.invalid/debian bookworm main\n"
        "deb [arch=amd64] http://archive.example.invalid/debian bookworm main contrib\n")
    p = mirror(etc)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "http://archive.example.invalid/debian"


def test_deb822_stanzas(etc):
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# http://snapshot.example.invalid/archive/debian/20250520T000000Z\n"
        "URIs: http://first.example.invalid/debian http://second.example.invalid/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\nSigned-By: /k.gpg\n\n"
        "Types: deb\nURIs: http://sec.example.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n")
    (etc / "sources.list.d" / "extra.sources").write_text(
        "Types: deb\nURIs: https://extra.example.invalid/apt\nSuites: stable\nComponents: contrib\n")
    assert mirror(etc).stdout.strip() == "http://first.example.invalid/debian"


def test_another_suite_still_finds_the_archive(etc):
    (etc / "sources.list").write_text("deb http://archive.example.invalid/debian trixie main\n")
    assert mirror(etc, "bookworm").stdout.strip() == "http://archive.example.invalid/debian"


def test_no_archive_is_an_error_that_says_how_to_set_one(etc):
    (etc / "sources.list").write_text("deb https://repo.example.invalid/linux/debian bookworm stable\n")
    p = mirror(etc)
    assert p.returncode == 1 and "no Debian archive" in p.stderr
    p = subprocess.run(["bash", str(SCRIPT), "--print-mirror"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "APT_ETC": str(etc), "MIRROR": "http://set.example.invalid/debian"})
    assert p.stdout.strip() == "http://set.example.invalid/debian"


def test_no_sources_list_only_its_directory(etc):
    # many Debian 12 images ship no /etc/apt/sources.list: the files beside it must still be read
    (etc / "sources.list.d" / "debian.list").write_text("deb http://archive.example.invalid/debian bookworm main\n")
    p = mirror(etc)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "http://archive.example.invalid/debian"


def test_the_wanted_suite_wins_over_a_third_party_repository_read_first(etc):
    # one-line files are read before deb822 ones: nodesource's `main` comes first, the archive must win
    (etc / "sources.list.d" / "nodesource.list").write_text(
        "deb [signed-by=/k.gpg] https://node.example.invalid/node_20.x nodistro main\n")
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://archive.example.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
    assert mirror(etc).stdout.strip() == "http://archive.example.invalid/debian"


def test_deb822_disabled_stanzas_and_folded_fields(etc):
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://off.example.invalid/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\n"
        "Types: deb\nURIs:\n http://folded.example.invalid/debian\nSuites: bookworm\nComponents: main\n contrib\n")
    assert mirror(etc).stdout.strip() == "http://folded.example.invalid/debian"
