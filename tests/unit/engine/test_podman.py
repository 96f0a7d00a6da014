"""The daemonless engine's commands, its Dockerfile reading and the host set-up that chooses it (no podman run)."""

from __future__ import annotations

from pathlib import Path

from platformctl.engine import BuildSpec, PodmanEngine, detect
from platformctl.engine import podman as pm
from platformctl.host.plan import ENGINE, needs_for
from tests.conftest import ROOT


def _spec(**kw) -> BuildSpec:
    base = dict(context=ROOT, dockerfile=ROOT / "Dockerfile", tags=("img:1", "img:sha-abc"),
                build_args={"VERSION": "1.2.3", "REVISION": "abc"}, secrets={"ca_bundle": Path("/ca.pem")},
                target="platform")
    base.update(kw)
    return BuildSpec(**base)


def test_build_is_reproducible_and_uses_the_project_containers_conf(tmp_path):
    cmd, env = PodmanEngine("podman", "buildah").build_command(_spec(), tmp_path / "iid")
    assert cmd[:2] == ["buildah", "bud"]
    assert cmd[cmd.index("--timestamp") + 1] == "0"
    assert "--layers" in cmd and "--no-cache" not in cmd
    assert "SOURCE_DATE_EPOCH=0" in cmd  # checked-hash bytecode, fixed useradd date
    assert "id=ca_bundle,src=/ca.pem" in cmd
    assert cmd[cmd.index("--target") + 1] == "platform"
    assert env["CONTAINERS_CONF"] == str(pm.CONTAINERS_CONF)
    cmd, _ = PodmanEngine("podman", "buildah").build_command(_spec(no_cache=True), tmp_path / "iid")
    assert "--no-cache" in cmd


def test_containers_conf_holds_the_host_workarounds():
    text = pm.CONTAINERS_CONF.read_text()
    assert 'runtime = "runc"' in text
    assert 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' in text
    assert 'cgroup_manager = "cgroupfs"' in text


def test_ids_speak_dockers_form():
    assert pm.normalize_id("abc123\n") == "sha256:abc123"
    assert pm.normalize_id("sha256:abc") == "sha256:abc"


def test_engine_choice(monkeypatch):
    monkeypatch.setattr(PodmanEngine, "find", classmethod(lambda cls: (None, None)))
    import pytest

    from platformctl.errors import ToolMissingError

    with pytest.raises(ToolMissingError) as e:
        detect(None, "podman")
    assert "podman and buildah is not installed" in e.value.message and "apt-get install podman buildah" in e.value.hint


def test_podman_builds_need_no_docker_engine():
    assert ENGINE not in needs_for("build", "podman")
    assert {"podman", "buildah"} <= set(needs_for("build", "podman"))
    assert ENGINE in needs_for("build", "auto") and "podman" not in needs_for("build", "auto")
    # the test suite runs both engines
    assert ENGINE in needs_for("test", "podman") and "podman" in needs_for("test", "auto")


def test_failing_step_names_buildahs_step(tmp_path):
    lines = ["[1/3] STEP 1/2: FROM x AS a", "ok", "[3/3] STEP 4/9: RUN uv pip sync", "boom", "Error: building at STEP"]
    err = pm.failing_step(lines, tmp_path / "log")
    assert "stage 3/3" in err.message and "RUN uv pip sync" in err.message


def test_each_stage_declares_the_digest_of_what_its_run_steps_mount(tmp_path):
    # buildah 1.28 served a RUN step that bind-mounts operators/ from its cache after operators/ changed
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "a.py").write_text("1")
    (tmp_path / "lock.txt").write_text("x==1")
    text = ("ARG PY=311\nFROM scratch AS lock\nCOPY lock.txt /lock.txt\n"
            "FROM base AS ops\nRUN --mount=type=bind,source=ops,target=/src \\\n"
            "    --mount=type=bind,from=lock,source=/lock.txt,target=/l install\n"
            "FROM base AS final\nCOPY --from=ops /v /v\nCOPY plugins /p\n")

    def keys():
        out = pm.keyed_dockerfile(text, tmp_path, {}).splitlines()
        return {out[i - 1]: line.split("=", 1)[1] for i, line in enumerate(out) if line.startswith("ARG BUILDAH_INPUTS=")}

    before = keys()
    assert set(before) == {"FROM scratch AS lock", "FROM base AS ops", "FROM base AS final"}
    (tmp_path / "ops" / "a.py").write_text("2")
    after = keys()
    assert after["FROM base AS ops"] != before["FROM base AS ops"]
    assert after["FROM base AS final"] == before["FROM base AS final"]  # COPY is keyed by buildah itself
    (tmp_path / "lock.txt").write_text("x==2")  # a stage it mounts from changed what it holds
    assert keys()["FROM base AS ops"] != after["FROM base AS ops"]
    after = keys()
    (tmp_path / "ops" / "__pycache__").mkdir()
    (tmp_path / "ops" / "__pycache__" / "a.pyc").write_text("junk")
    assert keys() == after
    # the project Dockerfile keeps its text, one ARG line more per stage
    from tests.conftest import ROOT

    df = (ROOT / "Dockerfile").read_text()
    keyed = pm.keyed_dockerfile(df, ROOT, {"PY_TAG": "311"})
    assert [ln for ln in keyed.splitlines() if not ln.startswith("ARG BUILDAH_INPUTS=")] == df.splitlines()
