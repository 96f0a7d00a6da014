"""The studio's front end: sources in studio/ (npm, pinned by package-lock.json), bundle in
platformctl/studio/static/ (committed, so running the studio needs no Node).

`make studio-assets` installs the locked packages (`npm ci`) and bundles with esbuild;
`make studio-assets-check` bundles into a temporary folder and fails if the committed bundle differs
(esbuild's output is deterministic for the same sources and versions).
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import StudioError

SOURCES = "studio"
BUNDLE = Path(__file__).resolve().parent / "static"
FILES = ("index.html", "app.js", "app.css", "elk-worker.js")


def _run(cmd: list[str], cwd: Path) -> None:
    tool = shutil.which(cmd[0])
    if tool is None:
        raise StudioError(f"{cmd[0]} is not installed", "install Node.js 18+ with npm to build the studio's assets "
                                                        "(running the studio needs none)")
    proc = subprocess.run([tool, *cmd[1:]], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise StudioError(f"{' '.join(cmd)} failed in {cwd.name}/: {tail[0]}", "run it there to see the full log")


def _installed(src: Path) -> bool:
    lock, marker = src / "package-lock.json", src / "node_modules" / ".package-lock.json"
    return marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime


def build(root: Path, outdir: Path | None = None) -> Path:
    src = root / SOURCES
    if not _installed(src):
        _run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], src)
    out = outdir or BUNDLE
    out.mkdir(parents=True, exist_ok=True)
    _run(["node", "build.mjs", str(out)], src)
    return out


def check(root: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = build(root, Path(tmp))
        stale = [f for f in FILES if not (BUNDLE / f).exists() or not filecmp.cmp(out / f, BUNDLE / f, shallow=False)]
    if stale:
        raise StudioError(f"the committed studio bundle is out of date with studio/: {', '.join(stale)}",
                          "run make studio-assets and commit platformctl/studio/static/")


def require_bundle() -> None:
    missing = [f for f in FILES if not (BUNDLE / f).exists()]
    if missing:
        raise StudioError(f"the studio's bundle is missing ({', '.join(missing)} in {BUNDLE})",
                          "run make studio-assets (needs Node.js and npm)")
