from __future__ import annotations

import sys
from pathlib import Path

import pytest

from platformctl.errors import ToolMissingError
from platformctl.lock.diff import diff_pins
from platformctl.lock.resolvers import (PipToolsResolver, ResolveRequest, UvResolver, condense_resolver_error,
                                        uv_python_platform)

UV_CONFLICT = """  × No solution found when resolving dependencies:
  ╰─▶ Because only apache-airflow-providers-foo<=1.0 is available and apache-airflow-providers-foo==1.0
      depends on apache-airflow>=3.5.0, we can conclude that apache-airflow-providers-foo>=1.0 depends on
      apache-airflow>=3.5.0.
      And because you require apache-airflow==3.3.2, we can conclude that your requirements are unsatisfiable.
"""


def test_uv_targets_the_image_not_the_host():
    r = UvResolver(exe="uv")
    cmd = r.command(ResolveRequest(Path("requirements/team.in"), Path("out.txt"), "3.12", "linux/amd64", "2.36",
                                   constraints=(Path("c.txt"),), upgrade_packages=("rich",)))
    assert cmd[cmd.index("--python-version") + 1] == "3.12"
    assert cmd[cmd.index("--python-platform") + 1] == "x86_64-manylinux_2_36"
    assert "--generate-hashes" in cmd and ["-c", "c.txt"] == cmd[cmd.index("-c"):cmd.index("-c") + 2]
    assert cmd[cmd.index("--upgrade-package") + 1] == "rich"
    assert uv_python_platform("linux/arm64", "2.28") == "aarch64-manylinux_2_28"
    # for a Python other than the host's, uv finds an interpreter itself
    assert ("--python" in cmd) == ("%d.%d" % sys.version_info[:2] == "3.12")


def test_uv_is_given_the_host_interpreter_for_the_host_python():
    host = "%d.%d" % sys.version_info[:2]
    cmd = UvResolver(exe="uv").command(ResolveRequest(Path("a.in"), Path("a.txt"), host, "linux/amd64", "2.36"))
    assert cmd[cmd.index("--python") + 1] == sys.executable
    assert cmd[cmd.index("--python-version") + 1] == host


def test_conflict_is_condensed_to_the_packages():
    err = condense_resolver_error(UV_CONFLICT, "requirements/team.in")
    assert err.where == "requirements/team.in"
    assert "\n" not in err.message
    assert "apache-airflow-providers-foo" in err.hint
    assert "airflow_version in platform.yaml" in err.hint


def test_pip_tools_refuses_a_foreign_platform(tmp_path, monkeypatch):
    monkeypatch.setattr("platform.machine", lambda: "arm64")
    r = PipToolsResolver(tmp_path)
    with pytest.raises(ToolMissingError) as exc:
        r.compile(ResolveRequest(Path("a.in"), tmp_path / "o.txt", "3.12", "linux/amd64", "2.36"))
    assert "resolver: uv" in exc.value.hint


def test_pip_tools_needs_an_interpreter_of_the_target_version(tmp_path, monkeypatch):
    monkeypatch.setattr("platformctl.lock.resolvers.find_interpreter", lambda v: None)
    with pytest.raises(ToolMissingError) as exc:
        PipToolsResolver(tmp_path).tool_venv("3.99")
    assert "3.99" in exc.value.message


def test_diff_classifies_changes():
    d = diff_pins({"a": "1.0", "b": "2.0", "c": "1.10", "gone": "1"}, {"a": "1.0", "b": "1.9", "c": "1.9.1" if False else "1.11", "new": "3"})
    assert d.added == {"new": "3"} and d.removed == {"gone": "1"}
    assert d.upgraded == {"c": ("1.10", "1.11")} and d.downgraded == {"b": ("2.0", "1.9")}
    assert "1 added, 1 removed, 1 upgraded, 1 downgraded" in d.summary()
