"""The graph functions (issue 20): iterative cycle search and heap ordering give exactly what the old
recursive search and the old rescanning order gave, on seeded random graphs, and survive long chains."""

from __future__ import annotations

import random
import sys

import pytest

from platformctl.pipelines.model import PipelineV1 as Pipeline  # the graph code reads both versions alike
from platformctl.pipelines.render import _order
from platformctl.pipelines.validate import _find_cycle


def old_find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """validate._find_cycle before issue 20 (recursive), the reference."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in deps.get(n, []):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d in deps and state.get(d) is None:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(deps):
        if state.get(n) is None:
            found = visit(n)
            if found:
                return found
    return None


def old_order(p: Pipeline) -> list[str]:
    """render._order before issue 20 (a rescan per placed job), the reference."""
    names = list(p.jobs)
    done: list[str] = []
    while len(done) < len(names):
        for n in names:
            if n not in done and all(d in done for d in p.jobs[n].depends_on):
                done.append(n)
                break
    return done


def random_graph(rng: random.Random, acyclic: bool) -> dict[str, list[str]]:
    n = rng.randint(1, 40)
    names = [f"j{rng.randrange(10**6):06d}" for _ in range(n)]
    names = list(dict.fromkeys(names))
    rng.shuffle(names)
    deps: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        pool = names[:i] if acyclic else names
        k = rng.randint(0, min(4, len(pool)))
        picked = rng.sample(pool, k) if pool else []
        if picked and rng.random() < 0.2:
            picked.append(picked[0])  # a duplicate dependency
        if not acyclic and rng.random() < 0.1:
            picked.append("not-a-job")  # unknown names are skipped by the cycle search
        deps[name] = picked
    order = list(deps)
    rng.shuffle(order)  # file order is not dependency order
    return {n: deps[n] for n in order}


def pipeline(deps: dict[str, list[str]]) -> Pipeline:
    return Pipeline.model_validate({"dag": {"name": "g"}, "jobs": {n: {"command": ["x"], "depends_on": d}
                                                                    for n, d in deps.items()}})


@pytest.mark.parametrize("seed", range(300))
def test_cycle_search_matches_the_recursive_one(seed):
    deps = random_graph(random.Random(seed), acyclic=seed % 3 == 0)
    assert _find_cycle(deps) == old_find_cycle(deps)


@pytest.mark.parametrize("seed", range(200))
def test_order_matches_the_old_one(seed):
    p = pipeline(random_graph(random.Random(seed), acyclic=True))
    assert _order(p) == old_order(p)


def test_a_chain_far_deeper_than_the_recursion_limit():
    n = sys.getrecursionlimit() * 3
    deps = {f"j{i:06d}": [f"j{i + 1:06d}"] for i in range(n - 1)}
    deps[f"j{n - 1:06d}"] = []
    assert _find_cycle(deps) is None
    deps[f"j{n - 1:06d}"] = ["j000000"]
    cycle = _find_cycle(deps)
    assert cycle[0] == cycle[-1] == "j000000" and len(cycle) == n + 1
    p = pipeline({k: v for k, v in list(deps.items())[:-1]} | {f"j{n - 1:06d}": []})
    assert _order(p)[0] == f"j{n - 1:06d}" and _order(p)[-1] == "j000000"


def test_order_refuses_a_cycle_instead_of_looping():
    with pytest.raises(ValueError, match="cycle"):
        _order(pipeline({"a": ["b"], "b": ["a"]}))
