"""The engine's container interface (run to completion with stdin/network/labels, detached start with a
Container handle) as the Docker CLI receives it: a stand-in CLI records every call (unit tests never reach an
engine; tests/integration/test_engine_containers.py runs the same calls against the real one)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from platformctl.engine import Container, ContainerEngine, DockerEngine, available
from platformctl.errors import EngineError

FAKE = r'''#!PYTHON
import json, sys, time
args = sys.argv[1:]
with open(LOG, "a") as f:
    f.write(json.dumps(args) + "\n")
if args[0] == "run" and "-d" in args:
    if "fail-image" in args:
        print("Error response from daemon: no such image", file=sys.stderr); sys.exit(125)
    print("c0ffee" * 10)
elif args[0] == "run":
    if "sleepy" in args:
        time.sleep(5)
    data = sys.stdin.read() if "-i" in args else ""
    print("stdin:" + data)
elif args[0] == "container" and args[1] == "inspect":
    if args[2] == "gone":
        print("Error: No such container: gone", file=sys.stderr); sys.exit(1)
    print(json.dumps([{"Id": args[2], "State": {"Status": "exited", "ExitCode": 3}}]))
elif args[0] == "logs":
    print("line 1"); print("line 2", file=sys.stderr)
elif args[0] == "wait":
    print(3)
elif args[0] == "exec":
    print("exec:" + (sys.stdin.read() if "-i" in args else ""))
elif args[0] == "info":
    print("20.10.24")
'''


@pytest.fixture
def engine(tmp_path):
    log = tmp_path / "calls.jsonl"
    cli = tmp_path / "docker"
    cli.write_text(FAKE.replace("PYTHON", sys.executable).replace("LOG", repr(str(log))))
    cli.chmod(0o755)
    e = DockerEngine(str(cli), "unprobed")
    e.calls = lambda: [json.loads(line) for line in log.read_text().splitlines()]  # type: ignore[attr-defined]
    return e


def test_run_with_stdin_network_volumes_env_labels(engine):
    p = engine.run("img:1", ["-m", "x"], entrypoint="python", network="none", input='{"a": 1}',
                   volumes=["/src:/dst:ro"], env={"K": "v"}, labels={"io.ml-platform.owner": "t"}, user="0",
                   workdir="/w")
    assert p.returncode == 0 and p.stdout.strip() == 'stdin:{"a": 1}'
    call = engine.calls()[-1]
    assert call[:3] == ["run", "--rm", "-i"] and call[-3:] == ["img:1", "-m", "x"]
    opts = call[3:-3]
    pairs = {(opts[i], opts[i + 1]) for i in range(len(opts) - 1)}
    assert {("--network", "none"), ("--entrypoint", "python"), ("-v", "/src:/dst:ro"), ("-e", "K=v"),
            ("--label", "io.ml-platform.owner=t"), ("--user", "0"), ("--workdir", "/w")} <= pairs
    assert opts[opts.index("--name") + 1].startswith("platform-run-")  # named: a timed-out run can be removed


def test_run_without_input_has_no_stdin(engine):
    assert engine.run("img:1", ["true"]).stdout.strip() == "stdin:"
    assert "-i" not in engine.calls()[-1]


def test_a_run_that_times_out_is_removed(engine):
    with pytest.raises(subprocess.TimeoutExpired):
        engine.run("sleepy", ["x"], timeout=1, name="mine")
    assert engine.calls()[-1] == ["rm", "-f", "mine"]


def test_start_returns_a_handle_that_logs_waits_stops_and_removes(engine):
    c = engine.start("img:1", ["bash", "-c", "serve"], ports=["127.0.0.1:8081:8080"], env={"A": "1"},
                     labels={"l": "v"}, name="svc")
    assert isinstance(c, Container) and c.id == "c0ffee" * 10
    start = engine.calls()[-1]
    assert start[:3] == ["run", "-d", "--rm"] and ("-p" in start and "127.0.0.1:8081:8080" in start)
    assert start[-4:] == ["img:1", "bash", "-c", "serve"] and "--name" in start
    assert c.status() == "exited" and not c.running() and c.exit_code() == 3
    assert engine.calls()[-1] == ["container", "inspect", c.id]
    assert c.logs(tail=15) == "line 1\nline 2\n" and engine.calls()[-1] == ["logs", "--tail", "15", c.id]
    assert c.wait() == 3 and engine.calls()[-1] == ["wait", c.id]
    c.stop(timeout=2)
    assert engine.calls()[-1] == ["stop", "-t", "2", c.id]
    assert c.exec(["cat"], input="hi").stdout.strip() == "exec:hi" and engine.calls()[-1] == ["exec", "-i", c.id, "cat"]
    with c:
        pass
    assert engine.calls()[-1] == ["rm", "-f", c.id]  # leaving the block removes it


def test_start_keeps_the_container_when_asked(engine):
    engine.start("img:1", ["x"], remove=False)
    assert "--rm" not in engine.calls()[-1]


def test_a_failed_start_is_an_engine_error(engine):
    with pytest.raises(EngineError, match="no such image"):
        engine.start("fail-image", ["x"])


def test_a_gone_container_has_no_status(engine):
    gone = engine.container("gone")
    assert gone.inspect() is None and gone.status() is None and gone.exit_code() is None and not gone.running()


def test_answers_and_available(engine, tmp_path):
    assert engine.answers()
    assert available(str(tmp_path / "nope")) is None
    found = available(engine.cli)
    assert isinstance(found, ContainerEngine) and found.cli == engine.cli
