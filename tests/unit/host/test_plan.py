"""The host set-up's decisions, from hand-made facts: nothing here touches the host."""

from __future__ import annotations

from dataclasses import replace

import pytest

from platformctl.host.plan import LOCAL_BASE, NEEDS, TOOLS, HostFacts, choose_base, decide

ALL = frozenset(TOOLS)
READY = HostFacts(root=True, apt=True, os_name="Debian GNU/Linux 12 (bookworm)", commands=ALL,
                  buildkit_cli="/usr/bin/docker", dockerd=True, engine_package="docker.io", engine_running=True)
FRESH = HostFacts(root=True, apt=True, os_name="Debian GNU/Linux 12 (bookworm)",
                  commands=frozenset({"git", "make"}))


def test_a_ready_host_needs_nothing():
    for needs in NEEDS.values():
        assert decide(READY, needs, install=True).empty


def test_fresh_debian_as_root_installs_docker_io_and_starts_it():
    plan = decide(FRESH, NEEDS["build"], install=True)
    assert plan.manual is None
    assert plan.packages == ("docker.io", "skopeo", "gnupg") and plan.start_engine


def test_the_test_command_also_installs_the_test_services():
    plan = decide(FRESH, NEEDS["test"], install=True)
    assert {"docker-registry", "apache2-utils", "openssl", "chromium", "chromium-driver"} <= set(plan.packages)
    assert plan.packages[0] == "docker.io" and len(plan.packages) == len(set(plan.packages))


def test_not_root_gets_the_exact_sudo_command_and_nothing_is_done():
    plan = decide(replace(FRESH, root=False), NEEDS["build"], install=True)
    assert plan.manual == ("run: sudo apt-get update && sudo apt-get install -y docker.io skopeo gnupg && "
                           "sudo sh -c 'dockerd >/var/log/dockerd.log 2>&1 &' (not root)")


def test_installing_turned_off_prints_the_command_without_sudo():
    plan = decide(FRESH, NEEDS["build"], install=False)
    assert plan.manual.startswith("run: apt-get update && apt-get install -y docker.io skopeo gnupg")
    assert "PLATFORM_NO_INSTALL" in plan.manual


def test_no_apt_lists_the_prerequisites_for_that_os():
    plan = decide(replace(FRESH, apt=False, os_name="Fedora Linux 41"), NEEDS["build"], install=True)
    assert plan.manual.startswith("no apt on Fedora Linux 41: install Docker Engine with the buildx plugin "
                                  "(BuildKit), skopeo, gnupg with its package manager, then start the Docker engine")


def test_docker_ce_is_never_replaced_by_docker_io():
    facts = replace(READY, buildkit_cli=None, engine_package="docker-ce")
    plan = decide(facts, NEEDS["build"], install=True)
    assert plan.packages == ("docker-buildx-plugin",) and not plan.start_engine


def test_an_installed_engine_that_is_down_is_only_started():
    plan = decide(replace(READY, engine_running=False), NEEDS["build"], install=True)
    assert plan.packages == () and plan.start_engine and plan.engine_only and plan.manual is None


def test_engine_down_with_systemd_and_not_root_names_systemctl():
    plan = decide(replace(READY, engine_running=False, root=False, systemd=True), NEEDS["build"], install=True)
    assert plan.manual == "run: sudo systemctl start docker (not root)" and plan.engine_only


def test_an_engine_elsewhere_is_never_started_here():
    plan = decide(replace(READY, engine_running=False, docker_host="tcp://10.0.0.5:2376"), NEEDS["build"], True)
    assert not plan.start_engine and "DOCKER_HOST=tcp://10.0.0.5:2376" in plan.manual


@pytest.mark.parametrize("present, pull_error, action", [(True, None, "present"), (False, None, "pull"),
                                                          (False, "no such host", "make")])
def test_base_present_pullable_or_made(present, pull_error, action):
    c = choose_base(base="python:3.12-slim-bookworm", base_mode="python", python="3.12", pythons=["3.12", "3.11"],
                    user_set=set(), present=present, pull_error=pull_error)
    assert c.action == action
    if action == "make":
        assert c.image == LOCAL_BASE and c.settings == {"image.base_image": LOCAL_BASE, "image.python": "3.11"}


def test_a_base_the_user_named_is_never_swapped():
    c = choose_base(base="corp/python:3.12", base_mode="python", python="3.12", pythons=["3.12", "3.11"],
                    user_set={"image.base_image"}, present=False, pull_error="unauthorized")
    assert c.action == "refuse" and "BASE_IMAGE" in c.why and "unauthorized" in c.why


def test_a_python_the_user_named_is_never_swapped():
    c = choose_base(base="python:3.12-slim-bookworm", base_mode="python", python="3.12", pythons=["3.12", "3.11"],
                    user_set={"image.python"}, present=False, pull_error="no such host")
    assert c.action == "refuse" and "PYTHON=3.11" in c.why


def test_a_local_base_name_is_made_under_that_name():
    c = choose_base(base="local/python:3.11-slim-bookworm", base_mode="python", python="3.11", pythons=["3.11"],
                    user_set={"image.base_image"}, present=False, pull_error="local")
    assert c.action == "make" and c.image == "local/python:3.11-slim-bookworm" and "image.python" not in c.settings


def test_extend_mode_cannot_make_a_vendor_image():
    c = choose_base(base="apache/airflow:3.3.2-python3.12", base_mode="extend", python="3.12", pythons=["3.12"],
                    user_set=set(), present=False, pull_error="no such host")
    assert c.action == "refuse" and "image.base_mode python" in c.why


def test_no_lock_for_the_local_base_python_is_refused():
    c = choose_base(base="python:3.12-slim-bookworm", base_mode="python", python="3.12", pythons=["3.12"],
                    user_set=set(), present=False, pull_error="no such host")
    assert c.action == "refuse" and "make lock" in c.why
