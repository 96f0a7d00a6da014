"""The layering of issue #33: commands parse, call a service and print; services never climb back up.

- no module in platformctl/commands imports another command module (a command never calls a command);
- nothing below the CLI (services, deploy, stack, ...) imports platformctl.commands or platformctl.cli;
- nothing fakes a command line (argparse.Namespace) to call code;
- following the stack's deploy stays in the service layer (static import closure of services.stack);
- the configuration is loaded once per command run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PKG = ROOT / "platformctl"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every platformctl module path imports (absolute, relative resolved; `from x import y` gives x and x.y)."""
    tree = ast.parse(path.read_text())
    me = module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return {m for m in out if m.split(".")[0] == "platformctl"}


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def existing(mods: set[str]) -> set[str]:
    return {m for m in mods if m in MODULES}


def test_no_command_module_imports_another():
    bad = []
    for name, path in MODULES.items():
        if not name.startswith("platformctl.commands.") or name.endswith("__init__"):
            continue
        for m in existing(imports(path)):
            if m.startswith("platformctl.commands.") and m != name:
                bad.append(f"{path.relative_to(ROOT)} imports {m}")
    assert not bad, "a command calls a service, never another command:\n" + "\n".join(bad)


# platformctl.docs writes docs/commands.md from the CLI's own parser: it stands beside the CLI, not below it
BESIDE_THE_CLI = {"platformctl.docs"}


def test_nothing_below_the_cli_imports_commands_or_the_cli():
    bad = []
    for name, path in MODULES.items():
        if name.startswith("platformctl.commands") or name == "platformctl.cli" or name in BESIDE_THE_CLI:
            continue
        for m in existing(imports(path)):
            if m.startswith("platformctl.commands") or m == "platformctl.cli":
                bad.append(f"{path.relative_to(ROOT)} imports {m}")
    assert not bad, "\n".join(bad)


def test_no_fake_command_lines():
    bad = [f"{p.relative_to(ROOT)}" for p in PKG.rglob("*.py")
           if p.name != "cli.py" and "Namespace(" in p.read_text()]
    assert not bad, f"call the service with typed arguments instead of a fake argparse.Namespace: {bad}"


def closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m in seen or m not in MODULES:
            continue
        seen.add(m)
        todo += existing(imports(MODULES[m]))
    return seen


def test_the_stacks_deploy_stays_in_the_service_layer():
    reach = closure("platformctl.services.stack")
    assert "platformctl.services.deploy" in reach
    assert not {m for m in reach if m.startswith("platformctl.commands") or m == "platformctl.cli"}, reach


def test_the_scan_sees_relative_imports(tmp_path):
    """imports() resolves `from .deploy import x` inside commands/ (the shape commands/stack.py had)."""
    p = PKG / "commands" / "stack.py"
    tree_imports = imports(p)
    assert "platformctl.services.stack" in tree_imports
    fake = tmp_path / "x.py"
    fake.write_text("from .deploy import deploy\n")
    # resolved as if it were platformctl/commands/x.py
    orig = module_name
    try:
        globals()["module_name"] = lambda path: "platformctl.commands.x" if path == fake else orig(path)
        assert "platformctl.commands.deploy" in imports(fake)
    finally:
        globals()["module_name"] = orig


@pytest.mark.parametrize("argv", [["deploy", "--env", "local"], ["rollback", "--env", "local"]])
def test_the_configuration_is_loaded_once_per_command(proj, monkeypatch, capsys, argv):
    from platformctl import cli, config

    calls = []
    real = config.load_config_with_sources

    def counting(*a, **kw):
        calls.append(a)
        return real(*a, **kw)

    monkeypatch.setattr(config, "load_config_with_sources", counting)
    if argv[0] == "rollback":
        assert cli.main(["deploy", "--env", "local"]) == 0
        calls.clear()
    cli.main(argv)
    assert len(calls) == 1, calls



def test_services_take_the_configuration_they_are_given(proj, monkeypatch):
    """The stack's deploy (services.stack.deploy_local -> services.deploy.deploy) reads no configuration
    itself: the caller's, loaded once, is used."""
    from platformctl import config
    from platformctl.services.stack import deploy_local

    cfg = config.load_config(proj, {})

    def refuse(*a, **kw):
        raise AssertionError("a service loaded the configuration again")

    monkeypatch.setattr(config, "load_config_with_sources", refuse)
    first = deploy_local(proj, cfg, echo=lambda line: None)
    again = deploy_local(proj, cfg, echo=lambda line: None)
    assert first.changed and not again.changed and again.version == first.version
    assert first.store_path and (Path(first.store_path) / "current.json").is_file()
