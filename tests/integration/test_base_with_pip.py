"""python mode on a base that ships pip (as the official python:*-slim images do): no pip in the result.

No Docker Hub here, so the base is the debootstrap one with pip installed into /usr/local the way
the official images have it (offline, from Debian's bundled pip wheel).
"""

from __future__ import annotations

import re
import subprocess
import uuid


from platformctl.config import collect_overrides, load_config
from platformctl.image.build import build_spec
from platformctl.engine import BuildSpec, DockerEngine
from tests.conftest import ROOT


PIP_BASE = """FROM {base}
RUN rm -f /usr/lib/python3*/EXTERNALLY-MANAGED; whl=$(ls /usr/share/python-wheels/pip-*.whl); \\
    python3 $whl/pip install -q --no-index --no-deps $whl && command -v pip
"""


def test_the_base_images_pip_is_not_left_in_the_image(docker, image, tmp_path):
    engine = DockerEngine.detect(docker)
    cfg = load_config(ROOT, collect_overrides())
    base = cfg.image.resolved_base_image(cfg.airflow_version)
    tag = uuid.uuid4().hex[:8]
    pip_base, out = f"ml-platform-test/python-with-pip:{tag}", f"ml-platform-test/pip-base-image:{tag}"
    (tmp_path / "Dockerfile").write_text(PIP_BASE.format(base=base))
    engine.build(BuildSpec(context=tmp_path, dockerfile=tmp_path / "Dockerfile", tags=(pip_base,)),
                 tmp_path / "base.log", echo=False)
    try:
        cfg = load_config(ROOT, collect_overrides([f"image.base_image={pip_base}"]))
        spec, _ = build_spec(ROOT, cfg, engine)  # no base id: uv bootstrapped by the base's own pip
        spec = spec.__class__(**{**spec.__dict__, "tags": (out,)})
        engine.build(spec, tmp_path / "build.log", echo=False)
        p = subprocess.run([docker, "run", "--rm", "--entrypoint", "sh", out, "-c",
                            "command -v pip pip3 uv; python3 -m pip --version 2>/dev/null; /opt/venv/bin/python -m pip --version 2>/dev/null; true"],
                           capture_output=True, text=True, check=True)
        assert p.stdout.split() == [], f"left in the image: {p.stdout}"
        log = (tmp_path / "build.log").read_text()
        assert not re.search(r"^#\d+ [\d.]+ warning: could not remove", log, re.MULTILINE)
    finally:
        subprocess.run([docker, "rmi", "-f", out, pip_base], capture_output=True)
