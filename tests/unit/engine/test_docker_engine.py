from __future__ import annotations

import stat
from pathlib import Path

import pytest

from platformctl.errors import EngineError, ToolMissingError
from platformctl.engine import BuildSpec
from platformctl.engine.docker import DockerEngine, failing_step


def fake_cli(tmp_path: Path, *, client: str, buildx: bool, daemon: bool | str) -> str:
    """A stand-in docker CLI answering the detection probes (unit tests never reach an engine)."""
    script = tmp_path / "docker"
    script.write_text(f"""#!/bin/sh
case "$1" in
  buildx) {'echo "github.com/docker/buildx v0.17"; exit 0' if buildx else 'echo "unknown command: buildx" >&2; exit 1'} ;;
  version) echo "{client}"; exit 0 ;;
  info) {'sleep 5; exit 0' if daemon == "hangs" else 'echo 20.10.24; exit 0' if daemon else 'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1'} ;;
esac
exit 2
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_20_10_cli_builds_with_builtin_buildkit(tmp_path):
    e = DockerEngine.detect(fake_cli(tmp_path, client="20.10.24", buildx=False, daemon=True))
    assert e.mode == "docker-buildkit"
    cmd, env = e.build_command(BuildSpec(Path("."), Path("Dockerfile"), ("a:1",), {"X": "1"},
                                         {"ca_bundle": Path("/ca.pem")}, target="platform"), Path("iid"))
    assert env["DOCKER_BUILDKIT"] == "1" and cmd[1] == "build"
    assert ["--secret", "id=ca_bundle,src=/ca.pem"] == cmd[cmd.index("--secret"):cmd.index("--secret") + 2]
    assert "--build-arg" in cmd and "X=1" in cmd and cmd[-1] == "."


def test_buildx_preferred_when_present(tmp_path):
    e = DockerEngine.detect(fake_cli(tmp_path, client="28.2.2", buildx=True, daemon=True))
    cmd, _ = e.build_command(BuildSpec(Path("."), Path("Dockerfile"), ("a:1",), platform="linux/amd64"), Path("iid"))
    assert cmd[1:4] == ["buildx", "build", "--load"] and "--platform" in cmd


def test_registry_build_cache_reads_and_writes_inline_and_is_not_an_input(tmp_path, monkeypatch):
    from platformctl.config import collect_overrides, load_config
    from platformctl.image.build import build_spec
    from platformctl.image.inputs import inputs_fingerprint

    root = Path(__file__).resolve().parents[3]
    e = DockerEngine.detect(fake_cli(tmp_path, client="20.10.24", buildx=False, daemon=True))
    monkeypatch.setenv("REGISTRY", "127.0.0.1:5000/ml/airflow")
    off = build_spec(root, load_config(root, collect_overrides([])), e)[0]
    monkeypatch.setenv("BUILD_CACHE", "registry")  # make build BUILD_CACHE=registry
    on = build_spec(root, load_config(root, collect_overrides([])), e)[0]
    assert off.cache_from == () and not off.inline_cache
    assert on.cache_from == ("127.0.0.1:5000/ml/airflow:buildcache",) and on.inline_cache
    cmd, _ = e.build_command(on, Path("iid"))
    assert cmd[cmd.index("--cache-from") + 1] == "127.0.0.1:5000/ml/airflow:buildcache"
    assert "BUILDKIT_INLINE_CACHE=1" in cmd
    assert "--cache-from" not in e.build_command(off, Path("iid"))[0]
    # the cache changes how fast an image is made, not what: same inputs, so registry reuse still finds it
    assert inputs_fingerprint(root, on, "sha256:base") == inputs_fingerprint(root, off, "sha256:base")


def test_new_cli_without_buildx_is_refused_clearly(tmp_path):
    with pytest.raises(ToolMissingError) as exc:
        DockerEngine.detect(fake_cli(tmp_path, client="28.2.2", buildx=False, daemon=True))
    assert "buildx" in exc.value.hint and "legacy builder" in exc.value.hint


def test_unreachable_engine_says_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)  # the local engine's hint (a set DOCKER_HOST gets its own)
    with pytest.raises(EngineError) as exc:
        DockerEngine.detect(fake_cli(tmp_path, client="20.10.24", buildx=False, daemon=False))
    assert "not reachable" in exc.value.message and "dockerd" in exc.value.hint
    assert exc.value.exit_code == 7


def test_an_engine_that_does_not_answer_is_an_error_not_a_traceback(tmp_path, monkeypatch):
    import platformctl.engine.docker as engine

    monkeypatch.setattr(engine, "DAEMON_TIMEOUT", 1)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(EngineError) as exc:
        DockerEngine.detect(fake_cli(tmp_path, client="20.10.24", buildx=False, daemon="hangs"))
    assert "not reachable" in exc.value.message and "no answer within 1 s" in exc.value.message
    assert "restart it" in exc.value.hint and "dockerd &" not in exc.value.hint  # not: start a second one


LOG = """#5 [python-base 2/2] RUN useradd airflow
#5 DONE 0.3s
#9 [python-deps 1/2] RUN uv pip sync /tmp/locks/airflow.txt
#9 sha256:abc
#9 1.02 error: Failed to fetch: `https://pypi.org/simple/apache-airflow/`
#9 1.02   Caused by: invalid peer certificate: UnknownIssuer
#9 ERROR: executor failed running [/bin/sh -c uv pip sync]: exit code: 2
------
 > [python-deps 1/2] RUN uv pip sync:
------
failed to solve: executor failed running
"""


def test_failing_step_names_the_step_and_its_last_lines(tmp_path):
    err = failing_step(LOG.splitlines(), tmp_path / "build.log")
    assert "python-deps 1/2" in err.message and "exit code: 2" in err.message
    assert "UnknownIssuer" in err.hint and "build.log" in err.hint
    assert err.exit_code == 8
