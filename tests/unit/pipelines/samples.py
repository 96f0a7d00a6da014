"""The valid pipelines the validation tests break one way at a time (test_validate, test_v2, test_schemas):
one of each format version, every field a bad example needs, problems() as `make render` words them, and
breakages(): the ways they are broken (breakages.yaml), with what the validator and the JSON Schema must say."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from platformctl.pipelines.validate import check

FLAVORS = ["cpu-large", "cpu-small", "gpu-a100", "mem-large"]

V1 = """version: 1
dag:
  name: churn_model
  schedule: "0 3 * * *"
defaults:
  docker_image: registry.local/ml/churn:1.4.2
  resource_flavor: cpu-small
  timeout: 10m
jobs:
  extract:
    command: [python, -m, churn.extract]
  train:
    resource_flavor: gpu-a100
    command: [python, -m, churn.train]
    depends_on: [extract]
    env: {TARGET: x}
"""

V2 = """version: 2
dag:
  name: retrain
  schedule: {assets: [warehouse.features]}
  max_active_runs: 1
  dagrun_timeout: 2h
  end_date: 2027-01-01
  params:
    epochs: {type: integer, default: 10, minimum: 1}
    cutoff: {type: string, default: "2025-01-01", format: date}
  notify:
    on_failure: {connection: ml_alerts, message: failed}
defaults:
  docker_image: registry.local/ml/churn:1.4.2
  resource_flavor: cpu-small
  retries: 2
  retry_delay: 5m
  secrets_from_connections: {DB_URI: warehouse}
jobs:
  segments:
    command: [python, -m, churn.segments]
  train:
    group: training
    command: [python, -m, churn.train, "--epochs={{ params.epochs }}"]
    map: {over: [eu, us, apac], as: SEGMENT}
    depends_on: [segments]
  score:
    command: [python, -m, churn.score]
    map: {over: {output: segments}}
    outlets: [ml.churn_scores]
    trigger_rule: all_success
"""


def problems(text: str) -> list[str]:
    return [str(p) for p in check("pipelines/p.yaml", text.encode(), FLAVORS).problems]


@dataclass(frozen=True)
class Breakage:
    sample: str  # V1 or V2
    old: str
    new: str
    problem: str  # how the validator's line starts
    schema: str | None = None  # the field the JSON Schema names too, where it can express the rule

    def text(self) -> str:
        good = SAMPLES[self.sample]
        broken = good.replace(self.old, self.new, 1)
        assert broken != good, f"{self.old!r} is not in {self.sample}"
        return broken


SAMPLES = {"V1": V1, "V2": V2}


def breakages(*samples: str, schema: bool = False) -> list:
    """breakages.yaml's cases of these samples (those the JSON Schema can express, with schema=True), as
    pytest params named by the field they break."""
    table = yaml.safe_load(Path(__file__).with_name("breakages.yaml").read_text())
    cases = [Breakage(name, **row) for name in samples for row in table[name]]
    return [pytest.param(b, id=b.schema or b.problem.split(": ")[1].split(" ")[0])
            for b in cases if b.schema or not schema]
