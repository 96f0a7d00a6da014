"""Format version 2: every new field validated with file:line and a did-you-mean (each way of breaking one:
breakages.yaml, run by test_validate), every problem in one pass."""

from __future__ import annotations

from platformctl.pipelines.project import asset_warnings
from platformctl.pipelines.validate import check
from tests.unit.pipelines.samples import FLAVORS, V2, problems

def test_good_v2_pipeline_has_no_problems():
    c = check("pipelines/p.yaml", V2.encode(), FLAVORS)
    assert c.problems == [], c.problems
    assert c.source_version == 2 and c.pipeline.dag.params["epochs"].default == 10
    assert c.pipeline.jobs["score"].depends_on == ["segments"]  # mapping over an output implies the dependency
    assert c.consumes == [("warehouse.features", 4)] and c.produces == ["ml.churn_scores"]


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
