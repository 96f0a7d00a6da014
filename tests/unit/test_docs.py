"""docs/commands.md is generated from the CLI's parser, the Makefile and platformctl/errors.py (issue 33,
defect 4: it missed gc, plan, status, diff, migrate, studio and a dozen exit codes)."""

from __future__ import annotations

import argparse

from platformctl import docs
from platformctl.cli import build_parser
from platformctl.errors import PlatformError
from tests.conftest import ROOT


def test_the_committed_commands_doc_is_fresh():
    """Fails when a command, an option, a make target or an exit code changed without `make docs`."""
    assert (ROOT / docs.DOC).read_text() == docs.generate(ROOT), "docs/commands.md is stale: run make docs"


def test_it_names_every_command_target_and_exit_code():
    text = docs.generate(ROOT)
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        assert f"\n### {name}\n" in text and f"`python build.py {name}" in text
    for target, _ in docs.make_targets(ROOT / "Makefile"):
        assert f"| `make {target}` |" in text
    codes = {cls.exit_code for cls in _subclasses(PlatformError)} | {50, 130}
    table = text[text.index("## Exit codes"):]
    for code in codes:
        assert f"\n{code:>6}  " in table, code
    assert {"gc", "plan", "status", "diff", "migrate", "studio"} <= set(sub.choices)


def test_a_new_command_changes_the_doc():
    parser = build_parser()
    before = docs.commands_markdown(parser, ROOT / "Makefile")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.add_parser("frobnicate", help="a command added by another branch")
    p.add_argument("--env", required=True, help="the environment")
    after = docs.commands_markdown(parser, ROOT / "Makefile")
    assert after != before and "### frobnicate" in after and "`python build.py frobnicate --env ENV`" in after


def _subclasses(cls):
    for c in cls.__subclasses__():
        yield c
        yield from _subclasses(c)


def test_every_image_a_doc_shows_is_committed():
    """A doc's image must be in git (docs/img/), not in build/, which a reader on GitHub never has."""
    import re
    import subprocess

    tracked = set(subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    shown = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", doc.read_text()):
            if "://" in target:
                continue
            rel = (doc.parent / target).resolve().relative_to(ROOT).as_posix()
            shown.append(rel)
            assert rel in tracked, f"{doc.relative_to(ROOT)} shows {target}, which is not committed"
    assert shown, "no doc shows an image: the pattern no longer matches"
