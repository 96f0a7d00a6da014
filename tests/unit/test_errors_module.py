"""Every failure of the build-and-ship side is defined in platformctl/errors.py, and its exit code is the
one the module's table gives (issue 22 item 3)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from platformctl import errors

ROOT = Path(__file__).resolve().parents[2]
TABLE = re.compile(r"^\s+(\d+)?\s+([A-Za-z_, ]+?)\s{2,}", re.M)


def error_classes() -> dict[str, type]:
    return {n: c for n, c in vars(errors).items() if inspect.isclass(c) and issubclass(c, errors.PlatformError)}


def documented() -> dict[str, int]:
    """Class -> code from the docstring's table (a row without a code continues the row above)."""
    out, code = {}, None
    for m in TABLE.finditer(errors.__doc__):
        code = int(m.group(1)) if m.group(1) else code
        for name in m.group(2).split(","):
            out[name.strip()] = code
    return out


def test_no_error_class_is_defined_outside_the_errors_module():
    names = set(error_classes())
    outside = []
    for path in (ROOT / "platformctl").rglob("*.py"):
        if path.name == "errors.py" and path.parent.name == "platformctl":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", getattr(b, "attr", None)) in names
                                                      for b in node.bases):
                outside.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert outside == []


def test_every_error_and_its_code_is_in_the_table():
    table = documented()
    for name, cls in error_classes().items():
        assert table.get(name) == cls.exit_code, (name, cls.exit_code, table.get(name))
    assert table["PLAN_CHANGES"] == errors.PLAN_CHANGES and table["INTERRUPTED"] == errors.INTERRUPTED


def test_codes_are_shared_only_by_kinds_of_one_failure():
    by_code: dict[int, set[str]] = {}
    for name, cls in error_classes().items():
        by_code.setdefault(cls.exit_code, set()).add(name)
    shared = {code: names for code, names in by_code.items() if len(names) > 1}
    assert shared == {22: {"PolicyError", "ImageMissing"}, 23: {"ConflictError", "DeployConflict"},
                      30: {"StackError", "ApiTimeout", "PortTaken"}}


def test_errors_are_imported_from_one_module_and_the_dead_code_is_gone():
    """Issue 33, defect 9: three re-export shims (registry/, stack/, pipelines/errors.py) imported
    inconsistently, lock.core.clean_cache and commands.registry._echo unused, an `integration` marker
    nothing selects."""
    import re
    import tomllib

    from tests.conftest import ROOT

    shims = [p for p in ("registry", "stack", "pipelines") if (ROOT / "platformctl" / p / "errors.py").exists()]
    assert shims == []
    pattern = re.compile(r"(registry|stack|pipelines)\.errors\b|^\s*from \.errors import", re.M)
    offenders = [str(p.relative_to(ROOT)) for base in ("platformctl", "tests", "bench") for p in (ROOT / base).rglob("*.py")
                 if p.parent != ROOT / "platformctl" and pattern.search(p.read_text())]
    assert offenders == []
    from platformctl.commands import registry
    from platformctl.lock import core

    assert not hasattr(core, "clean_cache") and not hasattr(registry, "_echo")
    pytest_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "markers" not in pytest_cfg
