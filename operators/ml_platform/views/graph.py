"""The layout of one pipeline graph for the page (the drawing is templates/graph.svg): layer = the longest
path from a root, order in a layer by the mean order of the parents (one sweep); flavor badges with limits."""

from __future__ import annotations

from dataclasses import dataclass

from .bundle_pipelines import Pipeline

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 230, 80, 70, 24, 16


@dataclass(frozen=True)
class Node:
    name: str
    image: str
    x: int
    y: int
    label: str       # flavor badge: name · cpu · memory [· gpus]
    kind: str        # cpu, gpu or unknown (the badge's colours)
    badge_w: int
    forbidden: bool  # a flavor of the catalog this environment does not allow


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: str        # the SVG path (a horizontal S-curve)


@dataclass(frozen=True)
class Graph:
    dag_id: str
    width: int
    height: int
    nodes: list[Node]
    edges: list[Edge]
    node_w: int = NODE_W
    node_h: int = NODE_H


def layered(jobs: list[str], edges: list[list[str]]) -> dict[str, tuple[int, int]]:
    """Layer = longest path from a root; order in a layer by the mean order of the parents (one sweep)."""
    ups: dict[str, list[str]] = {j: [] for j in jobs}
    for a, b in edges:
        if a in ups and b in ups:
            ups[b].append(a)
    layer: dict[str, int] = {}

    def depth(j: str, seen: frozenset = frozenset()) -> int:
        if j not in layer:
            layer[j] = 0 if j in seen else 1 + max((depth(u, seen | {j}) for u in ups[j] if u not in seen), default=-1)
        return layer[j]

    for j in jobs:
        depth(j)
    pos: dict[str, tuple[int, int]] = {}
    for lv in sorted(set(layer.values())):
        members = [j for j in jobs if layer[j] == lv]
        members.sort(key=lambda j: (sum(pos[u][1] for u in ups[j] if u in pos) / len([u for u in ups[j] if u in pos])
                                    if any(u in pos for u in ups[j]) else jobs.index(j), jobs.index(j)))
        for i, j in enumerate(members):
            pos[j] = (lv, i)
    return pos


def flavor_label(name: str | None, catalog: dict) -> tuple[str, str]:
    f = catalog.get(name or "")
    if f is None:
        return (f"{name}?" if name else "no flavor"), "unknown"
    gpu = f" · {f['gpu']['count']}× {f['gpu'].get('type') or 'gpu'}" if f.get("gpu") else ""
    return f"{name} · {f['cpu']['limit']} cpu · {f['memory']['limit']}{gpu}", "gpu" if f.get("gpu") else "cpu"


def clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def layout(p: Pipeline, catalog: dict, allowed: list[str]) -> Graph:
    pos = layered([j.name for j in p.jobs], p.edges)
    width = PAD * 2 + (max((x for x, _ in pos.values()), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + (max((y for _, y in pos.values()), default=0) + 1) * (NODE_H + GAP_Y) - GAP_Y

    def xy(name: str) -> tuple[int, int]:
        lx, ly = pos[name]
        return PAD + lx * (NODE_W + GAP_X), PAD + ly * (NODE_H + GAP_Y)

    edges = []
    for a, b in p.edges:
        if a in pos and b in pos:
            (ax, ay), (bx, by) = xy(a), xy(b)
            x1, y1, x2, y2 = ax + NODE_W, ay + NODE_H / 2, bx, by + NODE_H / 2
            mid = (x1 + x2) / 2
            edges.append(Edge(a, b, f"M {x1} {y1} C {mid} {y1}, {mid} {y2}, {x2} {y2}"))
    nodes = []
    for j in p.jobs:
        x, y = xy(j.name)
        label, kind = flavor_label(j.flavor, catalog)
        nodes.append(Node(j.name, str(j.image or "no image"), x, y, label, kind,
                          min(NODE_W - 16, 12 + round(5.6 * len(label))),
                          j.flavor in catalog and j.flavor not in allowed))
    return Graph(p.dag_id, width, height, nodes, edges)
