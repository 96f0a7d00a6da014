"""Format version 2: every new field validated with file:line and a did-you-mean, every problem in one pass."""

from __future__ import annotations

import pytest

from platformctl.pipelines.project import asset_warnings
from platformctl.pipelines.validate import check
from tests.unit.pipelines.samples import FLAVORS, V2, problems

def test_good_v2_pipeline_has_no_problems():
    c = check("pipelines/p.yaml", V2.encode(), FLAVORS)
    assert c.problems == [], c.problems
    assert c.source_version == 2 and c.pipeline.dag.params["epochs"].default == 10
    assert c.pipeline.jobs["score"].depends_on == ["segments"]  # mapping over an output implies the dependency
    assert c.consumes == [("warehouse.features", 4)] and c.produces == ["ml.churn_scores"]


@pytest.mark.parametrize("old,new,expected", [
    ("  max_active_runs: 1", "  retries: 1",
     "pipelines/p.yaml:5: dag.retries is not a known key (moved to defaults.retries in version 2 (make migrate does it))"),
    ("map: {over: [eu, us, apac], as: SEGMENT}", "map: {over: eu, as: SEGMENT}",
     "pipelines/p.yaml:25: jobs.train.map.over must be a list of items or {output: <job>}"),
    ("map: {over: {output: segments}}", "map: {over: {output: segmnts}}",
     "pipelines/p.yaml:29: jobs.score.map.over.output 'segmnts' is not a job in this pipeline (did you mean 'segments'?)"),
    ("map: {over: {output: segments}}", "map: {over: {output: train}}",
     "pipelines/p.yaml:29: jobs.score.map.over.output 'train' is itself mapped"),
    ("{type: integer, default: 10, minimum: 1}", "{type: integer, default: ten}",
     "pipelines/p.yaml:9: dag.params.epochs default 'ten' is not of type integer"),
    ('default: "2025-01-01", format: date', "default: 2025, format: date",
     "pipelines/p.yaml:10: dag.params.cutoff default 2025 is not of type string"),
    ("{type: integer,", "{type: int,", "pipelines/p.yaml:9: dag.params.epochs.type 'int': input should be"),
    ("{type: integer, default: 10, minimum: 1}", "{type: integer, defualt: 10}",
     "pipelines/p.yaml:9: dag.params.epochs.defualt is not a known key (did you mean 'default'?)"),
    ("connection: ml_alerts", "connection: ml alerts!",
     "pipelines/p.yaml:12: dag.notify.on_failure.connection 'ml alerts!' is not a valid Airflow connection id"),
    ("on_failure:", "on_fail:", "pipelines/p.yaml:12: dag.notify.on_fail is not a known key (did you mean 'on_failure'?)"),
    ("{DB_URI: warehouse}", "{DB_URI: 'ware house'}",
     "pipelines/p.yaml:18: defaults.secrets_from_connections DB_URI: 'ware house' is not a valid Airflow connection id"),
    ("retry_delay: 5m", "retry_delay: 5 minutes", "pipelines/p.yaml:17: defaults.retry_delay '5 minutes' is not a duration"),
    ("dagrun_timeout: 2h", "dagrun_timeout: 0", "pipelines/p.yaml:6: dag.dagrun_timeout must be positive"),
    ("end_date: 2027-01-01", "end_date: 2024-01-01", "pipelines/p.yaml:7: dag.end_date 2024-01-01 is before start_date"),
    ("[warehouse.features]", "[airflow://x]", "pipelines/p.yaml:4: dag.schedule 'airflow://x': the asset scheme 'airflow' is reserved"),
    ("{assets: [warehouse.features]}", "{asets: [warehouse.features]}",
     "pipelines/p.yaml:4: dag.schedule must be a cron expression, a preset, null, or one of"),
    ("group: training", "group: train", "pipelines/p.yaml:22: jobs.train has the name of a group"),
    ("group: training", "group: 'a.b'", "pipelines/p.yaml:23: jobs.train.group 'a.b' is not a valid group id"),
    ("as: SEGMENT", "as: 1SEG", "pipelines/p.yaml:25: jobs.train.map.as '1SEG' is not a valid variable name"),
    ("over: [eu, us, apac]", "over: [eu, eu]", "pipelines/p.yaml:25: jobs.train.map.over has duplicate items"),
    ("    outlets: [ml.churn_scores]", "    outlet: [ml.churn_scores]",
     "pipelines/p.yaml:30: jobs.score.outlet is not a known key (did you mean 'outlets'?)"),
])
def test_each_v2_error_names_file_line_and_field(old, new, expected):
    text = V2.replace(old, new, 1)
    assert text != V2
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_typo_wrong_flavor_and_cycle_are_reported_in_one_pass():
    text = (V2.replace("  max_active_runs: 1", "  max_active_run: 1")
            .replace("  segments:\n    command: [python, -m, churn.segments]",
                     "  segments:\n    command: [python, -m, churn.segments]\n    resource_flavor: gpu-a10\n"
                     "    depends_on: [train]"))
    found = problems(text)
    assert any("dag.max_active_run is not a known key (did you mean 'max_active_runs'?)" in p for p in found), found
    assert any("jobs.segments.resource_flavor 'gpu-a10' is not in flavors.yaml (did you mean 'gpu-a100'?" in p
               for p in found), found
    assert any("dependency cycle: segments -> train -> segments" in p for p in found), found


def test_v1_file_problems_in_one_pass_too():
    text = """dag: {name: p, schedul: "@daily"}
defaults: {docker_image: registry.local/x:1, resource_flavor: cpu-smal}
jobs:
  a: {command: [x], depends_on: [b], timeout: 5x}
  b: {command: [y], depends_on: [a]}
"""
    found = problems(text)
    assert len(found) == 4, found  # the typo, the bad timeout, the flavor (for b; a did not parse), the cycle
    assert any("dag.schedul is not a known key" in p for p in found)
    assert any("jobs.a.timeout '5x' is not a duration" in p for p in found)
    assert any("jobs.b.resource_flavor 'cpu-smal'" in p for p in found)
    assert any("dependency cycle: a -> b -> a" in p for p in found)


def test_v2_needs_the_version_line_and_v1_rejects_v2_fields():
    found = problems(V2.replace("version: 2\n", ""))  # read as version 1
    assert any("dag.max_active_runs is not a known key" in p for p in found), found


def test_asset_nobody_produces_is_a_warning_listing_the_producers():
    consumer = check("pipelines/c.yaml", V2.encode(), FLAVORS)
    producer = check("pipelines/p.yaml", V2.replace("[ml.churn_scores]", "[warehouse.featurez]")
                     .replace("name: retrain", "name: other").encode(), FLAVORS)
    asset_warnings([consumer, producer])
    (w,) = consumer.warnings
    assert str(w).startswith("pipelines/c.yaml:4: dag.schedule asset 'warehouse.features' is updated by no pipeline's "
                             "outlets (did you mean 'warehouse.featurez'?)")
    assert "warehouse.featurez (pipelines/p.yaml)" in str(w) and "ml.churn_scores (pipelines/c.yaml)" in str(w)
    assert consumer.problems == [] and consumer.pipeline is not None  # a warning does not stop rendering
