"""extend mode: the project's locks on top of a vendor Airflow image, Airflow pinned.

No vendor registry is reachable here, so the vendor image is the python-mode image built by
`make build` (a real Airflow 3.3.2 image with its own venv) with the environment the official
apache/airflow images set (AIRFLOW_VERSION, PYTHON_VERSION): the build's own arguments of the same
names must still be what the build checks and labels.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from platformctl.config import collect_overrides, load_config
from platformctl.image.build import build_spec
from platformctl.engine import DockerEngine
from tests.conftest import ROOT
from tests.integration.helpers import build_from


def _vendor(docker: str, image: str, tag: str, airflow: str, tmp_path) -> str:
    """`image` (an id: BuildKit's FROM needs a name) plus the official image's environment, as `tag`."""
    subprocess.run([docker, "tag", image, f"{tag}-src"], check=True)
    try:
        return build_from(docker, tmp_path / "vendor",
                          f"FROM {tag}-src\nENV AIRFLOW_VERSION={airflow} PYTHON_VERSION=3.11.2\n", tag)
    finally:
        subprocess.run([docker, "rmi", f"{tag}-src"], capture_output=True)


def test_extend_mode_builds_on_a_vendor_airflow_image(docker, image, tmp_path):
    engine = DockerEngine.detect(docker)
    cfg = load_config(ROOT, collect_overrides(["image.base_mode=extend"]))
    vendor = _vendor(docker, image, "vendor/airflow:3.3.2-test", cfg.airflow_version, tmp_path)
    cfg = load_config(ROOT, collect_overrides(["image.base_mode=extend", f"image.base_image={vendor}"]))
    spec, _ = build_spec(ROOT, cfg, engine)
    spec = spec.__class__(**{**spec.__dict__, "tags": ("ml-platform-extend-test:1",)})
    image_id = engine.build(spec, tmp_path / "build.log", echo=False)
    try:
        run = lambda *a: subprocess.run([docker, "run", "--rm", image_id, *a], capture_output=True, text=True)
        assert run("version").stdout.strip() == cfg.airflow_version
        assert run("bash", "-c", "id -u; id -g").stdout.split() == ["50000", "0"]
        assert run("python", "-c", "import ml_platform; print('ok')").stdout.strip() == "ok"
        labels = json.loads(subprocess.run([docker, "image", "inspect", image_id, "--format", "{{json .Config.Labels}}"],
                                           capture_output=True, text=True, check=True).stdout)
        assert labels["io.ml-platform.airflow.version"] == cfg.airflow_version
        assert labels["io.ml-platform.python.version"] == cfg.image.python  # not the vendor's 3.11.2
        env = run("bash", "-c", "echo $ML_PLATFORM_PYTHON_VERSION $ML_PLATFORM_AIRFLOW_VERSION").stdout.split()
        assert env == [cfg.image.python, cfg.airflow_version]
    finally:
        subprocess.run([docker, "rmi", "-f", "ml-platform-extend-test:1", vendor], capture_output=True)


def test_extend_mode_refuses_a_vendor_image_with_another_airflow(docker, image, tmp_path):
    """A vendor image whose Airflow differs from platform.yaml fails the build with the reason."""
    from platformctl.errors import BuildError

    engine = DockerEngine.detect(docker)
    # the vendor's ENV AIRFLOW_VERSION says 3.3.2 like its Airflow: the check must use the build's 9.9.9
    vendor = _vendor(docker, image, "vendor/airflow:3.3.2-other", load_config(ROOT).airflow_version, tmp_path)
    cfg = load_config(ROOT, collect_overrides(["image.base_mode=extend", f"image.base_image={vendor}"]))
    spec, _ = build_spec(ROOT, cfg, engine)
    args = {**spec.build_args, "AIRFLOW_VERSION": "9.9.9"}
    spec = spec.__class__(**{**spec.__dict__, "build_args": args, "tags": ("ml-platform-extend-bad:1",)})
    try:
        with pytest.raises(BuildError) as exc:
            engine.build(spec, tmp_path / "build.log", echo=False)
    finally:
        subprocess.run([docker, "rmi", "-f", vendor], capture_output=True)
    assert "extend-deps" in exc.value.message
    assert "platform.yaml wants 9.9.9" in exc.value.hint + exc.value.message
