#!/usr/bin/env python3
"""One machine of bench/fleet.py: a DAG processor or a worker with its own bundle storage, reading the
store through its own proxy. Commands on stdin, one answer line on stdout each ("OK <json>").

    init                unpinned initialize() (what the DAG processor does at start)
    refresh             one refresh()
    poll <seconds>      refresh() every <seconds> until the live version changes (the DAG processor's loop)
    fetch <version>     a pinned bundle's initialize() (a worker running a task of a run on <version>)

argv: endpoint storage-dir naive(0|1). naive=1 is the way versions were read before #34: one GET per
file, one after another, and an unconditional GET of the pointer on every refresh.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

endpoint, storage, naive = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"] = storage
os.environ["AIRFLOW__DAG_PROCESSOR__PARSING_PRE_IMPORT_MODULES"] = "False"  # not what is measured here
logging.disable(logging.WARNING)  # the bundle's info lines are not wanted on stdout

import airflow.providers.amazon.aws.hooks.s3  # noqa: F401 - loaded before timing, as in a running worker
from ml_platform.bundle import PlatformDagBundle


class NaiveBundle(PlatformDagBundle):
    use_archive = False
    fetch_workers = 1
    conditional_pointer = False


cls = NaiveBundle if naive else PlatformDagBundle
KW = {"name": "ml-platform", "bucket_name": "dags", "prefix": "airflow/bench", "endpoint_url": endpoint,
      "aws_conn_id": None, "refresh_interval": 5}
proc: PlatformDagBundle | None = None


def answer(**kw) -> None:
    print("OK " + json.dumps(kw), flush=True)


answer(ready=True)
for line in sys.stdin:
    cmd, *args = line.split()
    t0 = time.perf_counter()
    if cmd == "init":
        proc = cls(**KW)
        proc.initialize()
    elif cmd == "refresh":
        proc.refresh()
    elif cmd == "poll":
        before = proc.get_current_version().version
        while True:
            time.sleep(float(args[0]))
            proc.refresh()
            if proc.get_current_version().version != before:
                break
    elif cmd == "fetch":
        worker = cls(version=args[0], **KW)
        worker.initialize()
        answer(version=args[0], seconds=time.perf_counter() - t0, at=time.time())
        continue
    answer(version=proc.get_current_version().version, seconds=time.perf_counter() - t0, at=time.time())
