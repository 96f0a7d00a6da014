"""push / release / promote against a real registry (docker-registry with htpasswd auth on 127.0.0.1)."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid

import pytest

from platformctl.registry.auth import Credentials
from platformctl.errors import RegistryUnavailable
from platformctl.registry.push import push_image
from tests.integration.registry.conftest import PASSWORD, USER, tiny_image


def test_push_the_built_image_pull_it_back_and_repush_uploads_nothing(project, registry, docker, image):
    project.record(image)
    first = project.run("push")
    assert first.returncode == 0, first.stdout + first.stderr
    rec = json.loads((project.path / "build" / "build-record.json").read_text())
    digest, (version_tag, sha_tag) = rec["digest"], rec["pushed_tags"]
    assert sha_tag.startswith("sha-") and len(sha_tag) == 11
    assert registry.digest("ml/airflow", version_tag) == digest == registry.digest("ml/airflow", sha_tag)
    assert PASSWORD not in first.stdout + first.stderr
    # pull it back by digest: the same image
    subprocess.run([docker, "rmi", "-f", f"{project.repo}@{digest}"], capture_output=True)
    login = subprocess.run([docker, "login", "-u", USER, "--password-stdin", registry.host], input=PASSWORD,
                           capture_output=True, text=True)
    assert login.returncode == 0, login.stderr
    try:
        pulled = subprocess.run([docker, "pull", f"{project.repo}@{digest}"], capture_output=True, text=True)
        assert pulled.returncode == 0, pulled.stderr
    finally:
        subprocess.run([docker, "logout", registry.host], capture_output=True)
    pulled_id = subprocess.run([docker, "image", "inspect", "--format", "{{.Id}}", f"{project.repo}@{digest}"],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert pulled_id == image
    # nothing changed: nothing uploaded
    again = project.run("push")
    assert again.returncode == 0, again.stderr
    assert "0 bytes uploaded (0 layer(s) uploaded" in again.stdout, again.stdout
    print(again.stdout)


def test_wrong_password_fails_at_once_with_a_clear_message(project, docker, tmp_path):
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    t0 = time.monotonic()
    p = project.run("push", env={"REGISTRY_PASSWORD": "wrong-password-123"})
    assert p.returncode == 41, p.stdout + p.stderr
    assert "refused the credentials" in p.stderr and "REGISTRY_USERNAME" in p.stderr
    assert "wrong-password-123" not in p.stdout + p.stderr
    assert "retry" not in p.stdout  # auth errors are not retried
    assert time.monotonic() - t0 < 30


def test_untested_or_dirty_builds_are_not_pushed(project, docker, tmp_path):
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()), tested=False)
    p = project.run("push")
    assert p.returncode == 43 and "has not passed the image tests" in p.stderr
    rec = project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    rec["dirty"] = True
    (project.path / "build" / "build-record.json").write_text(json.dumps(rec))
    p = project.run("push")
    assert p.returncode == 43 and "uncommitted changes" in p.stderr


def test_release_tags_once_records_and_refuses_a_second_time(project, registry, docker, tmp_path):
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    r = project.run("release", "--version", "1.4.0")
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads((project.path / "releases" / "1.4.0.json").read_text())
    d = rec["digest"]
    assert {t: registry.digest("ml/airflow", t) for t in ("1.4.0", "1.4", "1")} == {"1.4.0": d, "1.4": d, "1": d}
    assert "latest" not in registry.tags("ml/airflow")
    assert project.git("rev-list", "-n", "1", "v1.4.0") == project.git("rev-parse", "HEAD")
    assert project.git("status", "--porcelain") == ""
    changelog = (project.path / "releases" / "CHANGELOG.md").read_text()
    assert "## 1.4.0" in changelog and d in changelog and "first release" in changelog
    # a new, tested build of a later commit: releasing 1.4.0 again is refused, registry unchanged
    project.commit_file("README.md", "changed\n", "a change")
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    before = {t: registry.digest("ml/airflow", t) for t in registry.tags("ml/airflow")}
    again = project.run("release", "--version", "1.4.0")
    assert again.returncode == 43, again.stdout + again.stderr
    assert "release 1.4.0 already exists" in again.stderr and "immutable" in again.stderr
    assert {t: registry.digest("ml/airflow", t) for t in registry.tags("ml/airflow")} == before
    # 1.3.1 after 1.4.0: its own 1.3 line moves, the major tag 1 stays on 1.4.0
    r = project.run("release", "--version", "1.3.1")
    assert r.returncode == 0, r.stdout + r.stderr
    d2 = json.loads((project.path / "releases" / "1.3.1.json").read_text())["digest"]
    assert registry.digest("ml/airflow", "1.3") == d2 and registry.digest("ml/airflow", "1") == d


def test_release_refuses_a_dirty_tree_and_a_stale_lock(project, docker, tmp_path):
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    (project.path / "README.md").write_text("uncommitted\n")
    p = project.run("release", "--version", "2.0.0")
    assert p.returncode == 43 and "uncommitted changes" in p.stderr
    project.git("checkout", "README.md")
    team = (project.path / "requirements" / "team.in").read_text()
    project.commit_file("requirements/team.in", team + "\nsix\n", "team: add six (no re-lock)")
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    p = project.run("release", "--version", "2.0.0")
    assert p.returncode == 5 and "team-py" in p.stderr and "stale" in p.stderr, p.stderr
    assert registry_has_no(project, "2.0.0")


def registry_has_no(project, tag: str) -> bool:
    return project.registry.digest("ml/airflow", tag) is None


def test_promote_copies_the_release_by_digest(project, registry, docker, tmp_path):
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    assert project.run("release", "--version", "0.9.0").returncode == 0
    digest = json.loads((project.path / "releases" / "0.9.0.json").read_text())["digest"]
    p = project.run("promote", "--env", "prod", "--version", "0.9.0")
    assert p.returncode == 0, p.stdout + p.stderr
    assert registry.digest("ml/airflow-prod", "0.9.0") == digest
    promoted = json.loads((project.path / "deploy" / "prod" / "image.json").read_text())
    assert promoted["digest"] == digest and promoted["repository"].endswith("/ml/airflow-prod")
    assert project.run("promote", "--env", "prod", "--version", "0.9.0").returncode == 0  # idempotent
    # a release record that does not match the image's lock label is refused
    path = project.path / "releases" / "0.9.0.json"
    rec = json.loads(path.read_text())
    path.write_text(json.dumps({**rec, "lock_fingerprint": "0" * 64}))
    bad = project.run("promote", "--env", "dev", "--version", "0.9.0")
    assert bad.returncode == 43 and "lock fingerprint" in bad.stderr
    assert project.run("promote", "--env", "prod", "--version", "7.7.7").returncode == 43


def _kill_when(registry, after_bytes: int, restart_after: float | None = None):
    state = {"killed": False}

    def progress(tag: str, sent: int) -> None:
        if not state["killed"] and sent >= after_bytes:
            state["killed"] = True
            registry.kill()
            if restart_after is not None:
                threading.Timer(restart_after, registry.start).start()

    return state, progress


def test_registry_down_mid_push_leaves_no_tag(registry, docker, tmp_path):
    image = tiny_image(docker, tmp_path, fingerprint="x", size_mb=200)
    state, progress = _kill_when(registry, 20_000_000)
    repo = f"{registry.host}/ml/partial"
    with pytest.raises(RegistryUnavailable):
        push_image(image, repo, ["v1"], Credentials(USER, PASSWORD), attempts=2, base_delay=0.5,
                   progress=progress)
    assert state["killed"]
    registry.start()
    assert registry.digest("ml/partial", "v1") is None  # no tag points at a partial image
    assert registry.tags("ml/partial") == []


def test_transient_outage_is_retried_and_the_push_completes(registry, docker, tmp_path):
    image = tiny_image(docker, tmp_path, fingerprint="x", size_mb=200)
    state, progress = _kill_when(registry, 20_000_000, restart_after=1.0)
    repo = f"{registry.host}/ml/retried"
    msgs: list[str] = []
    res = push_image(image, repo, ["v1"], Credentials(USER, PASSWORD), attempts=5, base_delay=1.0,
                     progress=progress, echo=msgs.append)
    assert state["killed"] and any("retry 1/" in m for m in msgs), msgs
    time.sleep(0.5)
    assert registry.digest("ml/retried", "v1") == res.digest


def test_build_with_inputs_already_in_the_registry_tags_instead_of_rebuilding(project, registry, docker, image):
    from platformctl.config import collect_overrides, load_config
    from platformctl.image.build import build_plan
    from platformctl.engine import DockerEngine

    cfg = load_config(project.path, collect_overrides([], project.env))
    engine = DockerEngine.detect(cfg.image.docker, cfg.image.engine)
    _, _, fp = build_plan(project.path, cfg, engine)
    assert fp, "the base image must be local for an inputs fingerprint"
    rec = project.record(image)
    rec["inputs"] = fp
    (project.path / "build" / "build-record.json").write_text(json.dumps(rec))
    pushed = project.run("push")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    digest = json.loads((project.path / "build" / "build-record.json").read_text())["digest"]
    assert registry.digest("ml/airflow", f"inputs-{fp[:32]}") == digest
    # a new commit that changes nothing the image is made of: no rebuild, the new tags point at the digest
    project.commit_file("README.md", "docs only\n", "docs")
    t0 = time.monotonic()
    b = project.run("build")
    assert b.returncode == 0, b.stdout + b.stderr
    assert "adopting it instead of rebuilding" in b.stdout and "#1 [internal]" not in b.stdout
    assert "testing image:" in b.stdout  # the adopted image is tested here before any tag points at it
    new = json.loads((project.path / "build" / "build-record.json").read_text())
    assert new["reused_from"] == digest and new["tested"] and new["tested_here"] and new["revision"] == project.git("rev-parse", "HEAD")
    assert registry.digest("ml/airflow", f"sha-{new['revision'][:7]}") == digest
    print(f"reuse instead of rebuild: {time.monotonic() - t0:.1f}s")


def test_a_planted_image_under_the_inputs_tag_is_tested_here_and_never_tagged(project, registry, docker, tmp_path):
    """Issue 20 item 7, as probed: anyone who can push plants an image tagged inputs-<fp> with the right lock
    label. make build adopts it only after the image tests pass on it here: they fail, the build fails with
    exit 9, no new tag points at it and its record says tested: false (push and release refuse it)."""
    from platformctl.config import collect_overrides, load_config
    from platformctl.image.build import build_plan, image_lock_fingerprint
    from platformctl.engine import DockerEngine

    cfg = load_config(project.path, collect_overrides([], project.env))
    engine = DockerEngine.detect(cfg.image.docker, cfg.image.engine)
    _, _, fp = build_plan(project.path, cfg, engine)
    assert fp, "the base image must be local for an inputs fingerprint"
    planted = tiny_image(docker, tmp_path, fingerprint=image_lock_fingerprint(project.path, cfg))
    res = push_image(planted, project.repo, [f"inputs-{fp[:32]}"], Credentials(USER, PASSWORD))
    b = project.run("build")
    assert b.returncode == 9, b.stdout + b.stderr
    assert "adopting it instead of rebuilding" in b.stdout and "testing image:" in b.stdout
    assert b.stderr.strip().splitlines()[-1].startswith("error: image ")
    rec = json.loads((project.path / "build" / "build-record.json").read_text())
    assert rec["reused_from"] == res.digest and rec["tested"] is False and rec["tested_here"] is False
    assert registry.digest("ml/airflow", f"sha-{project.git('rev-parse', 'HEAD')[:7]}") is None
    assert project.run("push").returncode != 0  # an untested record is never pushed


def test_push_with_credentials_from_dockers_own_store(project, registry, docker, tmp_path):
    """No REGISTRY_* variables: `docker login` (its config.json) is enough for the engine and skopeo."""
    config = tmp_path / "docker-config"
    login = subprocess.run([docker, "--config", str(config), "login", "-u", USER, "--password-stdin", registry.host],
                           input=PASSWORD, capture_output=True, text=True)
    assert login.returncode == 0, login.stderr
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    env = {"REGISTRY_USERNAME": "", "REGISTRY_PASSWORD": "", "DOCKER_CONFIG": str(config)}
    p = project.run("push", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    digest = json.loads((project.path / "build" / "build-record.json").read_text())["digest"]
    assert registry.digest("ml/airflow", json.loads(
        (project.path / "build" / "build-record.json").read_text())["pushed_tags"][0]) == digest
    assert project.run("push", env={**env, "DOCKER_CONFIG": str(tmp_path / "empty")}).returncode == 41


def step_cached(log: str, command: str) -> bool:
    """BuildKit's plain progress says `#N CACHED` for the step `#N [...] RUN <command>`."""
    m = re.search(r"^#(\d+) \[[^\]]*\] RUN " + re.escape(command), log, re.M)
    assert m, f"no step runs {command!r}"
    return re.search(rf"^#{m.group(1)} CACHED$", log, re.M) is not None


def test_build_cache_kept_in_the_registry_serves_a_machine_without_it(registry, docker, tmp_path):
    """image.build_cache=registry: the build carries BuildKit's cache inline, make push moves the buildcache
    tag to it, and a build on a machine with neither the image nor the step's builder cache (a fresh CI
    runner, made here by removing both) takes the cached step from the registry: same bytes, CACHED."""
    from platformctl.engine import BuildSpec, DockerEngine, RegistryAuth
    from platformctl.record import CACHE_TAG
    from tests.conftest import base_image

    engine = DockerEngine.detect(docker, "auto")
    nonce = uuid.uuid4().hex
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base_image()}\n"
                                    f"RUN echo {nonce} && od -An -tx1 -N16 /dev/urandom > /stamp\n")
    repo = f"{registry.host}/ml/cachetest"
    auth = RegistryAuth(registry.host, USER, PASSWORD)

    def build(n: int) -> tuple[str, str]:
        spec = BuildSpec(ctx, ctx / "Dockerfile", (f"ml-platform-test/tiny:cache-{n}-{nonce[:6]}",),
                         cache_from=(f"{repo}:{CACHE_TAG}",), inline_cache=True, cache_auth=auth)
        image_id = engine.build(spec, tmp_path / f"build-{n}.log", echo=False)
        return image_id, (tmp_path / f"build-{n}.log").read_text()

    first, log1 = build(1)  # no cache in the registry yet: a warning of BuildKit's, not a failure
    assert f"echo {nonce}" in log1 and not step_cached(log1, f"echo {nonce}")
    push_image(first, repo, [CACHE_TAG], Credentials(USER, PASSWORD), engine=engine, echo=lambda *a: None)
    stamp = subprocess.run([docker, "run", "--rm", first, "cat", "/stamp"], capture_output=True, text=True,
                           check=True).stdout
    # a machine without any of it
    subprocess.run([docker, "rmi", "-f", first], capture_output=True, check=True)
    assert subprocess.run([docker, "image", "inspect", first], capture_output=True).returncode != 0
    # the step's own build cache records only (the rest of this machine's cache stays warm for other tests)
    df = subprocess.run([docker, "system", "df", "-v", "--format", "{{json .BuildCache}}"], capture_output=True,
                        text=True, check=True).stdout
    ids = [c["ID"] for c in json.loads(df) if nonce in c.get("Description", "")]
    assert ids, "the first build left no cache record for its RUN step"
    for cache_id in ids:
        subprocess.run([docker, "builder", "prune", "-f", "--filter", f"id={cache_id}"], capture_output=True, check=True)
    df = subprocess.run([docker, "system", "df", "-v", "--format", "{{json .BuildCache}}"], capture_output=True,
                        text=True, check=True).stdout
    assert not [c for c in json.loads(df) if nonce in c.get("Description", "")]

    second, log2 = build(2)
    assert step_cached(log2, f"echo {nonce}"), log2
    assert f"importing cache manifest from {repo}:{CACHE_TAG}" in log2
    assert subprocess.run([docker, "run", "--rm", second, "cat", "/stamp"], capture_output=True, text=True,
                          check=True).stdout == stamp  # the registry's layer, not a new run of the step
