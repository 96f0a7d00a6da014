from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from platformctl.registry.auth import Credentials, authfile, from_environment
from platformctl.errors import RegistryAuthError, RegistryError, RegistryUnavailable
from platformctl.registry.refs import build_tags, is_local_registry, registry_host, release_tags
from platformctl.registry.skopeo import classify, with_retries


@pytest.mark.parametrize("version,released,latest,expected", [
    ("1.0.0", [], False, ["1.0.0", "1.0", "1"]),
    ("1.2.5", ["1.2.4", "1.3.0"], False, ["1.2.5", "1.2"]),       # 1 stays on 1.3.0
    ("1.2.3", ["1.2.4"], False, ["1.2.3"]),                        # an older patch moves nothing
    ("2.0.0", ["1.9.9", "sha-abc", "1.9"], True, ["2.0.0", "2.0", "2", "latest"]),
    ("1.0.1", ["2.0.0"], True, ["1.0.1", "1.0", "1"]),             # latest stays on 2.0.0
])
def test_release_tags(version, released, latest, expected):
    assert release_tags(version, released, latest) == expected


def test_build_tags_and_hosts():
    assert build_tags("0.1.0-dev.3-gabc1234", "abc1234") == ["0.1.0-dev.3-gabc1234", "sha-abc1234"]
    assert registry_host("127.0.0.1:5000/ml/airflow") == "127.0.0.1:5000"
    assert registry_host("ml/airflow") == "docker.io"
    assert is_local_registry("localhost:5000/x") and not is_local_registry("ghcr.io/x/y")
    with pytest.raises(ValueError):
        release_tags("1.0", [])


def test_errors_are_classified_from_skopeo_output():
    auth = classify('time="x" level=fatal msg="reading manifest 1 in h/r: unauthorized: authentication required"', "inspect")
    assert isinstance(auth, RegistryAuthError) and auth.exit_code == 41 and "REGISTRY_USERNAME" in auth.one_line()
    down = classify("pinging container registry h: Get \"http://h/v2/\": dial tcp h: connect: connection refused", "x")
    assert isinstance(down, RegistryUnavailable) and down.exit_code == 42
    other = classify("manifest sha256:401abc invalid", "x")  # digits in a digest are not an HTTP status
    assert type(other) is RegistryError


def test_retries_transient_errors_with_backoff_but_not_auth(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RegistryUnavailable("down")
        return "ok"

    msgs: list[str] = []
    assert with_retries(flaky, attempts=4, echo=msgs.append) == "ok" and len(calls) == 3 and len(msgs) == 2
    calls.clear()

    def denied():
        calls.append(1)
        raise RegistryAuthError("no")

    with pytest.raises(RegistryAuthError):
        with_retries(denied, attempts=4, echo=msgs.append)
    assert len(calls) == 1


def test_credentials_never_show_and_the_auth_file_is_private_and_removed():
    c = from_environment({"REGISTRY_USERNAME": "u", "REGISTRY_PASSWORD": "pw-secret"})
    assert "pw-secret" not in repr(c) and from_environment({}) is None
    with authfile(c, "127.0.0.1:5000/a/b", "ghcr.io/x/y") as path:
        p = Path(path)
        assert os.stat(p).st_mode & 0o077 == 0
        assert set(json.loads(p.read_text())["auths"]) == {"127.0.0.1:5000", "ghcr.io"}
    assert not p.exists()
    with authfile(None) as none:
        assert none is None
    assert Credentials("a", "b").docker_auth() == {"username": "a", "password": "b"}


def test_skopeo_calls_retry_transient_errors_themselves(monkeypatch):
    import subprocess

    from platformctl.registry.skopeo import Skopeo

    monkeypatch.setattr("time.sleep", lambda s: None)
    monkeypatch.setattr("shutil.which", lambda b: "/usr/bin/skopeo")
    answers = [(1, "", "pinging container registry h: dial tcp h: connect: connection refused"),
               (1, "", "received unexpected HTTP status: 503 Service Unavailable"),
               (0, '{"Digest": "sha256:aa", "Labels": {"k": "v"}}', "")]
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        rc, out, err = answers[len(calls) - 1]
        return subprocess.CompletedProcess(cmd, rc, out, err)

    monkeypatch.setattr("subprocess.run", fake_run)
    msgs: list[str] = []
    sk = Skopeo(authfile="/tmp/a.json", attempts=3, echo=msgs.append)
    assert sk.inspect("127.0.0.1:5000/x:1") == {"digest": "sha256:aa", "labels": {"k": "v"}}
    assert len(calls) == 3 and len(msgs) == 2 and calls[0][2] == "--authfile=/tmp/a.json"
    calls.clear()
    answers[:] = [(1, "", "reading manifest 1 in h/x: unauthorized: authentication required")]
    with pytest.raises(RegistryAuthError):
        Skopeo(attempts=3, echo=msgs.append).inspect("127.0.0.1:5000/x:1")
    assert len(calls) == 1
