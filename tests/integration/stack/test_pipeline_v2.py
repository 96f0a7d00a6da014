"""Format version 2 end to end on the local stack (make up / make run), with every v2 feature live:

churn_features (make run) updates the asset warehouse.churn_features -> the scheduler starts
churn_retrain (asset-scheduled), whose `train` job fans out over three segments (dynamic task
mapping), each mapped job in its own container with its flavor's limits and its segment in $TARGET;
the run parameter `epochs` reaches the command; a run triggered with {"fail": true} fails and the
DAG's failure notifier POSTs to a webhook sink on the stack's network, whose log the test reads.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from ml_platform.flavors import load_catalog
from ml_platform.quantities import cpu_millicores, memory_bytes
from platformctl.stack.api import AirflowAPI
from platformctl.stack.compose import Stack
from platformctl.stack.follow import follow_run
from tests.conftest import ROOT
from tests.integration.helpers import stack_cli
from tests.integration.stack.test_local_stack import job_limits

PROJECT = f"mlp-v2-{uuid.uuid4().hex[:6]}"
SINK = "alert-sink"
SINK_CODE = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        print("ALERT " + self.path + " " + body, flush=True)
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


def cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return stack_cli(PROJECT, *args, timeout=timeout)


@pytest.fixture(scope="module")
def stack(docker: str, image: str):
    sink = f"{PROJECT}-sink"
    # the small stack (make up EXECUTOR=LocalExecutor): v2's features do not depend on the executor, and
    # test_local_stack and test_fleet_faults run the Celery shape
    p = cli("up", "--image", image, "--executor", "LocalExecutor")
    try:
        assert p.returncode == 0, f"make up failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        subprocess.run([docker, "run", "-d", "--name", sink, "--network", f"{PROJECT}_default",
                        "--network-alias", SINK, image, "python", "-c", SINK_CODE], check=True, capture_output=True)
        api = AirflowAPI(Stack(ROOT, PROJECT, "stack/compose.yaml").url)
        api._json("POST", "/connections", ok=(200, 201), json={"connection_id": "ml_alerts", "conn_type": "http",
                                                                "host": SINK, "port": 8080, "schema": "http"})
        yield api, lambda: subprocess.run([docker, "logs", sink], capture_output=True, text=True).stdout
    finally:
        subprocess.run([docker, "rm", "-f", sink], capture_output=True)
        d = cli("down", "--volumes")
        assert d.returncode == 0, d.stderr


def rendered_command(api: AirflowAPI, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[str]:
    ti = api._json("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}")
    return ti["rendered_fields"]["command"]


def test_asset_scheduled_mapped_parameterized_run_and_failure_notifier(stack):
    api, sink_log = stack
    api.wait_for_dag("churn_retrain")
    api.unpause("churn_retrain")
    before = {r["dag_run_id"] for r in api._json("GET", "/dags/churn_retrain/dagRuns")["dag_runs"]}

    # 1. the producer: make run PIPELINE=churn_features; its `features` job updates the asset
    p = cli("run", "--pipeline", "churn_features")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]

    # 2. the scheduler starts churn_retrain on that asset event (no trigger from us)
    deadline = time.monotonic() + 180
    while True:
        runs = [r for r in api._json("GET", "/dags/churn_retrain/dagRuns")["dag_runs"] if r["dag_run_id"] not in before]
        if runs or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert runs, "churn_retrain was not started by the asset event of churn_features"
    (run,) = runs
    assert run["run_type"] == "asset_triggered", run
    result = follow_run(api, "churn_retrain", run["dag_run_id"], timeout=600)
    assert result.state == "success", [(j.label, j.state) for j in result.jobs]
    train = [j for j in result.jobs if j.task_id == "training.train"]
    assert sorted(j.map_index for j in train) == [0, 1, 2]
    small = load_catalog(ROOT / "flavors.yaml").flavors["cpu-small"]
    segments = set()
    for j in train:
        limits = job_limits(j.log)
        assert limits["cpu_millicores"] == cpu_millicores(small.cpu.limit), limits
        assert limits["memory_bytes"] == memory_bytes(small.memory.limit), limits
        segments |= {s for s in ("eu", "us", "apac") if f"train: done for {s}" in j.log}
        assert rendered_command(api, "churn_retrain", run["dag_run_id"], "training.train", j.map_index)[3] == \
            "--epochs=10"  # the param's default, in an asset-triggered run
    assert segments == {"eu", "us", "apac"}
    assert "ALERT" not in sink_log()  # a successful run sends no failure alert

    # 3. make run with run parameters: {"fail": true} makes every mapped job fail -> the notifier fires
    p = cli("run", "--pipeline", "churn_retrain", "--conf", json.dumps({"epochs": 3, "fail": True}))
    assert p.returncode == 31, p.stdout[-3000:]
    for i in range(3):
        assert f"training.train[{i}]" in p.stdout
    runs = api._json("GET", "/dags/churn_retrain/dagRuns", params={"order_by": "-start_date", "limit": 1})
    failed_run = runs["dag_runs"][0]["dag_run_id"]
    assert rendered_command(api, "churn_retrain", failed_run, "training.train", 0)[3] == "--epochs=3"
    expected = {"dag_id": "churn_retrain", "run_id": failed_run, "state": "failed", "message": "churn retraining failed"}
    # DAG callbacks run in the DAG processor: on a loaded machine they can take minutes
    deadline = time.monotonic() + 300
    while True:
        alerts = [json.loads(line.split(" ", 2)[2]) for line in sink_log().splitlines() if line.startswith("ALERT ")]
        if expected in alerts or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert expected in alerts, sink_log()
    assert all(a["run_id"] == failed_run for a in alerts), alerts  # nothing for the successful run
