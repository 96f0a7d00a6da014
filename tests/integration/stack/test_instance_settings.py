"""Instance settings as code (#35) against a real local stack's REST API, from the built image.

One stack (its own compose project) runs from a copy of the project whose dev/prod declare a one-slot pool
`serial` (the built-in local environment derives it, and gpu-a100 from the flavor catalog): make up creates
both; two jobs of one run in `serial` run one after the other; a pool changed and one created by hand show as
drift in make status, and make deploy ENV=local puts the declared slots back without deleting the hand-made one
(until the file marks it removed); an environment whose instance lacks a declared connection: make plan exits
51 and make deploy refuses before the switch; a pool typo fails make render; a pool name longer than 256
characters is refused by us and, as proof the rule is Airflow's, by the API itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import requests

from platformctl.stack.api import AirflowAPI
from platformctl.stack.compose import Stack
from tests.conftest import ROOT
from tests.integration.helpers import working_tree_copy

PROJECT = f"mlp-pools-{uuid.uuid4().hex[:6]}"
PAIR = """\
version: 2
dag: {name: pool_pair, schedule: null, tags: [test]}
defaults:
  docker_image: ml-platform/etl-job:0.1.0
  resource_flavor: cpu-small
  pool: serial
jobs:
  first: {command: [python3, -c, "import time; print('first runs'); time.sleep(5)"]}
  second: {command: [python3, -c, "import time; print('second runs'); time.sleep(5)"]}
"""


def cli(root: Path, *args: str, timeout: int = 1500, project: bool = False) -> subprocess.CompletedProcess:
    """`python build.py <args>` in the project copy; STACK_PROJECT names this module's stack for status/plan."""
    cmd = [sys.executable, "build.py", *args, *(["--project", PROJECT] if project else [])]
    p = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "STACK_PROJECT": PROJECT})
    print(f"$ {' '.join(args)} -> {p.returncode}\n{p.stdout[-5000:]}\n{p.stderr[-3000:]}")
    return p


def _add_pool(path: Path, block: str) -> None:
    text = path.read_text()
    assert "pools: {}" in text or "pools:\n" in text, text
    text = text.replace("pools: {}", "pools:\n" + block) if "pools: {}" in text else text.replace(
        "pools:\n", "pools:\n" + block, 1)
    path.write_text(text)


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    root = working_tree_copy(tmp_path_factory.mktemp("pools") / "repo")
    block = "  serial: {slots: 1, description: one job at a time}\n"
    _add_pool(root / "environments/dev.yaml", block)
    _add_pool(root / "environments/prod.yaml", block)
    (root / "pipelines/pool_pair.yaml").write_text(PAIR)
    (root / "build").mkdir(exist_ok=True)
    shutil.copy2(ROOT / "build/build-record.json", root / "build/build-record.json")
    return root


@pytest.fixture(scope="module")
def stack(docker: str, image: str, copy: Path):
    t0 = time.monotonic()
    p = cli(copy, "up", "--image", image, "--wait-timeout", "900", project=True)
    try:
        assert p.returncode == 0, f"make up failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        print(f"make up: {time.monotonic() - t0:.0f}s")
        yield AirflowAPI(Stack(copy, PROJECT, "stack/compose.yaml").url), p.stdout
    finally:
        d = cli(copy, "down", "--volumes", project=True)
        assert d.returncode == 0, d.stderr


def pools(api: AirflowAPI) -> dict[str, dict]:
    return {p["name"]: p for p in api._json("GET", "/pools")["pools"]}


def test_make_up_creates_the_local_pools(stack):
    api, up_out = stack
    got = pools(api)
    assert got["serial"]["slots"] == 1, got  # declared by dev and prod (smallest slots), derived for local
    assert got["gpu-a100"]["slots"] == 4, got  # the flavor's pool, slots as prod declares them
    assert "instance settings: 2 pool change(s) applied (create gpu-a100, create serial)" in up_out


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def test_two_jobs_on_a_one_slot_pool_run_one_after_the_other(stack, copy):
    api, _ = stack
    p = cli(copy, "run", "--pipeline", "pool_pair", project=True)
    assert p.returncode == 0, p.stdout[-3000:]
    run = api._json("GET", "/dags/pool_pair/dagRuns", params={"order_by": "-start_date", "limit": 1})["dag_runs"][0]
    tis = {t["task_id"]: t for t in api.task_instances("pool_pair", run["dag_run_id"])}
    assert {t: (x["state"], x["pool"], x["pool_slots"]) for t, x in tis.items()} == {
        "first": ("success", "serial", 1), "second": ("success", "serial", 1)}
    (a0, a1), (b0, b1) = sorted((_ts(x["start_date"]), _ts(x["end_date"])) for x in tis.values())
    assert a1 <= b0, f"the two jobs overlapped: {a0}-{a1} and {b0}-{b1}"


def test_drift_in_status_then_deploy_restores_the_declared_pools(stack, copy):
    api, _ = stack
    serial = pools(api)["serial"]  # by hand, through the API: 3 slots instead of 1
    api._json("PATCH", "/pools/serial", json={"name": "serial", "slots": 3, "description": serial["description"],
                                              "include_deferred": serial["include_deferred"]})
    api._json("POST", "/pools", ok=(200, 201), json={"name": "handmade", "slots": 2, "include_deferred": False})
    p = cli(copy, "status", "--env", "local")
    assert "  DRIFT pool serial: slots 3 on the instance, 1 declared" in p.stdout, p.stdout
    assert "  DRIFT pool handmade: only on the instance (2 slots), not declared" in p.stdout
    s = json.loads(cli(copy, "status", "--env", "local", "--json").stdout)["environments"]["local"]["settings"]
    assert [(c["name"], c["action"], c["differs"]) for c in s["changes"]] == [("serial", "update", ["slots"])]

    url = api.base_url
    p = cli(copy, "deploy", "--env", "local", "--airflow-url", url)
    assert p.returncode == 0, p.stderr
    assert "instance settings: 1 pool change(s) applied (update serial)" in p.stdout
    got = pools(api)
    assert got["serial"]["slots"] == 1 and got["handmade"]["slots"] == 2  # never deleted unless marked removed

    # marked removed in a file of its own (local.yaml replaces the built-in local): deleted by the next deploy
    (copy / "environments/local.yaml").write_text(
        "bundle: {kind: local, path: .platform/bundles/local}\n"
        "pools:\n  serial: {slots: 1}\n  gpu-a100: {slots: 4}\n  handmade: {removed: true}\n")
    try:
        p = cli(copy, "deploy", "--env", "local", "--airflow-url", url)
        assert p.returncode == 0, p.stderr
        assert "delete handmade" in p.stdout  # and the descriptions local.yaml no longer gives
        assert "handmade" not in pools(api)
        p = cli(copy, "status", "--env", "local")
        assert "  settings: as declared (2 pool(s)" in p.stdout, p.stdout
    finally:
        (copy / "environments/local.yaml").unlink()


def test_missing_connection_refuses_plan_and_deploy_before_the_switch(stack, copy):
    api, _ = stack
    env = copy / "environments/stackenv.yaml"
    env.write_text(f"bundle: {{kind: local, path: .platform/bundles/stackenv}}\n"
                   f"allowed_flavors: [cpu-small, cpu-medium, cpu-large]\n"
                   f"managed: {{api_url: '{api.base_url}'}}\n"
                   "pools:\n  serial: {slots: 1}\n  gpu-a100: {slots: 4}\n"
                   "connections:\n  ml_alerts: {conn_type: http}\n  warehouse: {conn_type: postgres}\n")
    try:
        api._json("POST", "/connections", ok=(200, 201), json={"connection_id": "ml_alerts", "conn_type": "http",
                                                                "host": "alerts.invalid"})
        p = cli(copy, "plan", "--env", "stackenv", "--no-resources")
        assert p.returncode == 51, p.stdout
        assert "  MISSING connection warehouse (postgres), declared at environments/stackenv.yaml:9" in p.stdout
        assert "refused: the instance lacks connection warehouse" in p.stderr
        p = cli(copy, "deploy", "--env", "stackenv")
        assert p.returncode == 25, p.stderr
        assert "connection warehouse declared at environments/stackenv.yaml:9 is not on the instance" in p.stderr
        assert not (copy / ".platform/bundles/stackenv/current.json").exists()  # nothing switched
        # created (by whoever holds its secret): the plan passes, deploy goes through
        api._json("POST", "/connections", ok=(200, 201), json={"connection_id": "warehouse",
                                                                "conn_type": "postgres"})
        p = cli(copy, "plan", "--env", "stackenv", "--no-resources")
        assert p.returncode == 50 and "connections: 2 found" in p.stdout, p.stdout
    finally:
        env.unlink()


def test_pool_typo_fails_render_with_one_line(copy):
    typo = copy / "pipelines/typo.yaml"
    typo.write_text(PAIR.replace("pool_pair", "typo").replace("pool: serial", "pool: seriall"))
    try:
        p = cli(copy, "render")
        assert p.returncode == 11, p.stdout
        assert ("pipelines/typo.yaml:6: defaults.pool 'seriall' is not a pool of dev, prod, local "
                "(did you mean 'serial'?") in p.stderr, p.stderr
    finally:
        typo.unlink()


def test_a_pool_name_airflow_refuses_is_refused_before_the_api(stack, copy):
    api, _ = stack
    long = "p" * 257
    r = requests.post(f"{api.base_url}/api/v2/pools", json={"name": long, "slots": 1}, timeout=30)
    assert r.status_code == 422, r.text  # Airflow's own rule
    env = copy / "environments/longpool.yaml"
    env.write_text(f"bundle: {{kind: local}}\npools:\n  {long}: {{slots: 1}}\n")
    try:
        p = cli(copy, "plan", "--env", "longpool", "--no-resources")
        assert p.returncode == 2, p.stderr
        assert "environments/longpool.yaml:2: pools: pool name 'pppp" in p.stderr
        assert "Airflow refuses more than 256" in p.stderr
    finally:
        env.unlink()
