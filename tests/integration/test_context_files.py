"""The files the inputs fingerprint hashes are exactly the files the engine receives as build context.

If the two disagreed, make build could reuse an image built from other files. The context here has
negations, `**` patterns, nested folders and a re-included file inside an excluded folder."""

from __future__ import annotations

import subprocess
import uuid


from platformctl.image.inputs import context_files
from tests.conftest import base_image, require


DOCKERIGNORE = """\
# allow-list
*
!src/
!conf/*.yaml
!data/keep/**
**/__pycache__
**/*.tmp
src/vendor
!src/vendor/LICENSE
src/**/secret*
data/keep/**/skip.txt
"""

FILES = ["src/a.py", "src/pkg/b.py", "src/pkg/__pycache__/b.pyc", "src/pkg/deep/c.tmp", "src/pkg/deep/d.py",
         "src/vendor/lib.py", "src/vendor/LICENSE", "src/pkg/secret.key", "src/secrets.txt", "conf/app.yaml",
         "conf/app.json", "conf/sub/x.yaml", "data/keep/one.csv", "data/keep/nested/two.csv",
         "data/keep/nested/skip.txt", "data/drop/three.csv", "README.md", "notes.tmp"]


def test_fingerprinted_files_are_the_engines_context(tmp_path, docker):
    ctx = tmp_path / "ctx"
    for rel in FILES:
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(rel + "\n")
    (ctx / ".dockerignore").write_text(DOCKERIGNORE)
    base = base_image()
    require(subprocess.run([docker, "image", "inspect", base], capture_output=True).returncode == 0,
            f"base image {base} missing: run make build")
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY . /ctx\nRUN cd /ctx && find . -type f | sort\n")
    tag = f"ml-platform-context-test:{uuid.uuid4().hex[:8]}"
    p = subprocess.run([docker, "build", "--progress=plain", "--no-cache", "-t", tag, str(ctx)], capture_output=True,
                       text=True, env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
    subprocess.run([docker, "rmi", "-f", tag], capture_output=True)
    assert p.returncode == 0, p.stderr[-2000:]
    received = sorted(line.split("./", 1)[1] for line in p.stderr.splitlines() if " ./" in line and "#" in line
                      and line.split("./", 1)[1] not in ("Dockerfile", ".dockerignore"))
    assert received == context_files(ctx)
    # and the cases it covers really are there: a re-included file in an excluded folder, ** exclusions
    assert "src/vendor/LICENSE" in received and "src/vendor/lib.py" not in received
    assert "data/keep/nested/two.csv" in received and "data/keep/nested/skip.txt" not in received
    assert not any("__pycache__" in f or f.endswith(".tmp") or "secret" in f for f in received)
