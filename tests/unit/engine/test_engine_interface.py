"""The container-engine interface: the Docker implementation turns the engine API's push stream into
PushEvents (closing the stream closes the connection) and pulls with given credentials from a private config."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

from platformctl.engine import ContainerEngine, PushEvent, RegistryAuth
from platformctl.engine.docker import DockerEngine


class FakeAPI:
    def __init__(self, messages):
        self.messages, self.closed, self.auth = messages, False, "unset"

    def push(self, repository, tag, stream, decode, auth_config):
        self.auth = auth_config
        yield from self.messages

    def close(self):
        self.closed = True


def engine_with(api) -> DockerEngine:
    e = DockerEngine("docker", "buildx")
    e._api = lambda: api  # type: ignore[method-assign]
    return e


def test_push_events_carry_bytes_digest_and_errors():
    api = FakeAPI([{"status": "Pushing", "id": "l1", "progressDetail": {"current": 10}},
                   {"status": "Pushed", "id": "l1"}, {"status": "v1: digest", "aux": {"Digest": "sha256:d"}}])
    e = engine_with(api)
    assert isinstance(e, ContainerEngine)
    events = list(e.push("r/x", "v1", RegistryAuth("r", "u", "p")))
    assert events[0] == PushEvent(status="Pushing", layer="l1", current=10)
    assert events[-1].digest == "sha256:d" and api.closed and api.auth == {"username": "u", "password": "p"}
    failing = engine_with(FakeAPI([{"errorDetail": {"message": "denied"}, "error": "denied"}, {"status": "x"}]))
    assert [ev.error for ev in failing.push("r/x", "v1")] == ["denied"]


def test_closing_the_push_early_closes_the_connection():
    api = FakeAPI([{"status": "Pushing", "id": "l1"}, {"status": "Retrying in 5 seconds", "id": "l1"}])
    with closing(engine_with(api).push("r/x", "v1")) as events:
        next(events)
    assert api.closed


def test_pull_with_credentials_uses_a_private_config_that_is_removed(tmp_path):
    seen = tmp_path / "seen"
    cli = tmp_path / "docker"
    cli.write_text(f"#!/bin/sh\n[ \"$1\" = --config ] && cat \"$2/config.json\" > {seen} && "
                   f"ls -l \"$2/config.json\" > {seen}.mode && echo \"$2\" > {seen}.dir\necho pulled\n")
    cli.chmod(0o755)
    p = DockerEngine(str(cli), "buildx").pull("r.example:5000/ml/x@sha256:d", timeout=10,
                                              auth=RegistryAuth("r.example:5000", "u", "p"))
    assert p.returncode == 0
    auths = json.loads(seen.read_text())["auths"]
    assert list(auths) == ["r.example:5000"] and "pw-secret" not in repr(RegistryAuth("r", "u", "pw-secret"))
    assert Path(f"{seen}.mode").read_text().startswith("-rw-------")
    assert not Path(Path(f"{seen}.dir").read_text().strip()).exists()  # removed after the call
