"""The rehearsal's scratch tree: a copy of the project under build/upgrade/<from>--<to>/tree with the target
Airflow written into its platform.yaml and requirements/airflow.in. Every step works on this copy with the
project's own functions (lock, build, image checks, stack) given the copy as their root: the working tree,
its locks, platform.yaml and build/build-record.json are never written (only APPLY=1 copies files back,
apply.py)."""

from __future__ import annotations

import contextlib
import fcntl
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import git
from ..errors import UpgradeInputError
from ..machine import LOCAL_FILE
from ..record import RECORD

UPGRADE_DIR = Path("build/upgrade")
AIRFLOW_IN = Path("requirements/airflow.in")
PLATFORM_YAML = Path("platform.yaml")

_AF_YAML = re.compile(r'^(airflow_version:\s*)(["\']?)([^"\'\s#]+)(["\']?)', re.MULTILINE)
_AF_IN = re.compile(r"^(apache-airflow\s*==\s*)([^\s;#]+)", re.MULTILINE)
_PYS_YAML = re.compile(r"^(python_versions:\s*)(\[[^\]]*\])", re.MULTILINE)


@dataclass(frozen=True)
class Scratch:
    root: Path  # the copy of the project the steps run on
    out: Path  # build/upgrade/<from>--<to>: the report, logs, the DB dump

    @property
    def report_md(self) -> Path:
        return self.out / "report.md"


def rehearsal_dir(root: Path, from_version: str, to_version: str, label: str = "") -> Path:
    return root / UPGRADE_DIR / f"{from_version}--{to_version}{label}"


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """One rehearsal of a pair at a time: a second one would replace the scratch tree under the first."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpgradeInputError(f"another rehearsal is using {out}", "wait for it to finish") from None
        yield


def project_files(root: Path) -> list[str]:
    """The files of the project as the working tree has them (tracked files, edits included)."""
    listed = git.output(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is None:
        raise UpgradeInputError(f"{root} is not a git checkout", "run make upgrade-test in the project's clone")
    return sorted({p for p in listed.split("\0") if p and (root / p).is_file()})


def set_airflow(platform_text: str, in_text: str, version: str) -> tuple[str, str]:
    """platform.yaml and airflow.in with Airflow moved to version, every other byte as it was."""
    new_yaml, n = _AF_YAML.subn(lambda m: f"{m.group(1)}{m.group(2)}{version}{m.group(4)}", platform_text, count=1)
    if n != 1:
        raise UpgradeInputError("platform.yaml has no airflow_version line to move",
                                'add airflow_version: "<current>" to platform.yaml', where=str(PLATFORM_YAML))
    new_in, n = _AF_IN.subn(lambda m: f"{m.group(1)}{version}", in_text, count=1)
    if n != 1:
        raise UpgradeInputError("requirements/airflow.in has no apache-airflow==<version> line",
                                "add the line apache-airflow==<platform.yaml airflow_version>", where=str(AIRFLOW_IN))
    return new_yaml, new_in


def add_python(platform_text: str, python: str) -> str:
    """platform.yaml with python appended to python_versions (a target Python the project does not lock yet)."""
    m = _PYS_YAML.search(platform_text)
    if not m:
        raise UpgradeInputError("platform.yaml has no one-line python_versions: [...] to add "
                                f"{python} to", "add the Python to python_versions first", where=str(PLATFORM_YAML))
    items = [x.strip().strip("'\"") for x in m.group(2)[1:-1].split(",") if x.strip()]
    if python in items:
        return platform_text
    listed = ", ".join(f'"{x}"' for x in [*items, python])
    return platform_text[:m.start(2)] + f"[{listed}]" + platform_text[m.end(2):]


def make_scratch(root: Path, from_version: str, to_version: str, *, python: str | None = None,
                 label: str = "") -> Scratch:
    """A fresh copy of the project (the previous rehearsal of the same pair is replaced), Airflow moved to
    to_version; the machine's settings (.platform/local.yaml) and the current build record come along, so
    the copy builds and runs on this machine as the project does."""
    out = rehearsal_dir(root, from_version, to_version, label)
    tree = out / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    for rel in project_files(root):
        dst = tree / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dst)
    for extra in (LOCAL_FILE, RECORD):
        if (root / extra).exists():
            (tree / extra).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / extra, tree / extra)
    # the image checks' cache (the API check's migrated database per pins) outlives the scratch tree
    (out / "image-checks").mkdir(exist_ok=True)
    (tree / "build").mkdir(exist_ok=True)
    (tree / "build/image-checks").symlink_to(out / "image-checks", target_is_directory=True)
    text_yaml, text_in = set_airflow((tree / PLATFORM_YAML).read_text(), (tree / AIRFLOW_IN).read_text(), to_version)
    if python:
        text_yaml = add_python(text_yaml, python)
    (tree / PLATFORM_YAML).write_text(text_yaml)
    (tree / AIRFLOW_IN).write_text(text_in)
    return Scratch(tree, out)
