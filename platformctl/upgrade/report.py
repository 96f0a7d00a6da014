"""Step h: build/upgrade/<from>--<to>/report.md, a self-contained report.html (inline style, no scripts, no
external resources) and report.json, from one list of blocks; and the one-screen summary printed at the end."""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .compare import GROUPS, KINDS
from .rehearse import Rehearsal

Block = tuple  # ("h2", text) | ("p", text) | ("ul", [items]) | ("table", [headers], [[cells]])


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def summary_lines(r: Rehearsal, root: Path) -> list[str]:
    """The one-screen summary: steps with their times, then the verdict and what it rests on."""
    out = [f"upgrade rehearsal: Airflow {r.from_version} -> {r.to_version} (python {r.python}), "
           f"{r.seconds:.0f}s in all"]
    for s in r.runner.steps:
        t = f"{s.seconds:6.1f}s" if s.status != "not run" else "      -"
        out.append(f"  {s.title:<32} {s.status:<8} {t}  {s.summary[:110]}")
    c = r.comparison
    if c is not None:
        out.append("  dependencies: " + ", ".join(
            f"{g} {len(v)}" for g, v in c.groups.items()) + f"; image size {_mb(c.size_current)} -> "
            f"{_mb(c.size_candidate)}")
    rel = r.scratch.out.relative_to(root) if r.scratch.out.is_relative_to(root) else r.scratch.out
    out.append(f"  report: {rel}/report.md (and report.html)")
    items = r.blockers if r.verdict == "blocked" else r.changes
    out.append(f"verdict: {r.verdict.upper()}" + (f" ({len(items)})" if items else ""))
    for it in items[:12]:
        out.append(f"  {it.where + ': ' if it.where else ''}{it.what[:160]}")
    if len(items) > 12:
        out.append(f"  ... and {len(items) - 12} more in the report")
    return out


def blocks(r: Rehearsal, root: Path) -> list[Block]:
    b: list[Block] = [("h1", f"Airflow upgrade rehearsal: {r.from_version} -> {r.to_version}"),
                      ("p", f"Verdict: **{r.verdict}**. Python {r.python}; current image `{r.current_image}`, "
                            f"candidate `{r.candidate_tag}` (local only, never pushed). Whole rehearsal {r.seconds:.0f}s.")]
    items = r.blockers + r.changes
    if items:
        b.append(("h2", "What blocks or needs changing"))
        b.append(("table", ["where", "what"], [[i.where or "-", i.what] for i in items]))
    b.append(("h2", "Steps"))
    b.append(("table", ["step", "status", "seconds", "summary"],
              [[s.title, s.status, "-" if s.status == "not run" else f"{s.seconds:.1f}", s.summary]
               for s in r.runner.steps]))
    not_run = [s.title for s in r.runner.steps if s.status == "not run"]
    if not_run:
        b.append(("p", "Not run (a step they need did not pass): " + ", ".join(not_run) + "."))

    b += _section("Dependency comparison", r.comparison, _comparison, missing=_no_comparison(r))
    b += _section("Image checks on the candidate", r.checks or None, _checks)
    b += _section("DAG parse comparison (dags/ and examples/dags, both backends)", r.parse, _parse)
    b += _section("Lint: ruff Airflow rules (AIR3)", r.lint, _lint)
    b += _section("Metadata database migration (a copy of the current stack's database)", r.migration, _migration)
    runs = (r.current_runs, r.candidate_runs)
    b += _section("Smoke runs", runs if any(x and x.runs for x in runs) else None, _smoke)
    return b


def _section(title: str, part, body: Callable[[Any], list[Block]],
             missing: list[Block] | None = None) -> list[Block]:
    """One step's section of the report: its title, then what the step found, or that it was not run."""
    return [("h2", title), *(body(part) if part is not None else missing or [("p", "Not run.")])]


def _no_comparison(r: Rehearsal) -> list[Block]:
    out: list[Block] = [("p", "Not available: the relock did not pass.")]
    if r.relock and r.relock.conflicts:
        out.append(("ul", [cf.line() for cf in r.relock.conflicts]))
    return out


def _comparison(c) -> list[Block]:
    out: list[Block] = [
        ("p", f"The image's packages (airflow + team locks, Python {c.python}): {c.total()} changed, "
              f"{c.unchanged} unchanged. Image size {_mb(c.size_current)} -> {_mb(c.size_candidate)}"
              + (f" ({c.size_delta / 1e6:+.1f} MB)." if c.size_delta is not None else ".")
              + " Host-only locks: " + ", ".join(f"{k} {v} pins changed" for k, v in c.host_changes.items())
              + "."),
        ("table", ["group", *KINDS], [[g, *[str(c.counts(g)[k]) for k in KINDS]] for g in GROUPS])]
    for g in GROUPS:
        if c.groups[g]:
            out += [("h3", g), ("ul", [x.text() for x in c.groups[g]])]
    return out


def _checks(ch) -> list[Block]:
    return [("ul", [f"{g}: {v}" for g, v in ch.groups.items()] + ch.failures
             + [f"an earlier try timed out: {e}" for e in ch.earlier])]


def _parse(p) -> list[Block]:
    out: list[Block] = [("p", f"DAGs parsed: {p.dags_current} in the current image, {p.dags_candidate} in the "
                              f"candidate; import errors {len(p.errors_current)} -> {len(p.errors_candidate)}.")]
    if p.errors_candidate or p.errors_current:
        rows = [[k, p.errors_current.get(k, "-"), p.errors_candidate.get(k, "-")]
                for k in sorted(set(p.errors_current) | set(p.errors_candidate))]
        out.append(("table", ["file", "current", "candidate"], rows))
    out.append(("table", ["file", "DAG", "change"], [[x.where, x.dag, x.what] for x in p.changes])
               if p.changes else ("p", "Every DAG has the same task ids, operators and dependencies in both images."))
    return out


def _lint(lint) -> list[Block]:
    out: list[Block] = [("p", f"{lint.ruff} over {', '.join(lint.paths)}: {len(lint.findings)} findings.")]
    if lint.findings:
        out.append(("table", ["where", "rule", "message"], [[f.where, f.code, f.message] for f in lint.findings]))
    return out


def _migration(m) -> list[Block]:
    return [("p", f"Revision {m.revision_before or '?'} -> {m.revision_after or '?'} (candidate head "
                  f"{m.candidate_head or '?'}), {m.seconds:.0f}s." + (f" Error: {m.error}" if m.error else "")),
            ("ul", m.steps)]


def _smoke(runs) -> list[Block]:
    cur, new = ({x.pipeline: x for x in (side.runs if side else [])} for side in runs)
    rows = []
    for name in sorted(set(cur) | set(new)):
        a, c2 = cur.get(name), new.get(name)
        rows.append([name, _run_text(a), _run_text(c2)])
        jobs_a = {j.task: j for j in (a.jobs if a else [])}
        jobs_b = {j.task: j for j in (c2.jobs if c2 else [])}
        for t in sorted(set(jobs_a) | set(jobs_b)):
            ja, jb = jobs_a.get(t), jobs_b.get(t)
            rows.append([f"  {name}.{t}", f"{ja.state} {ja.seconds}s" if ja else "-",
                         f"{jb.state} {jb.seconds}s" if jb else "-"])
    return [("table", ["pipeline / job", "current image", "candidate"], rows)]


def _run_text(x) -> str:
    if x is None:
        return "not run"
    text = f"{x.state} in {x.seconds:.1f}s"
    if x.earlier:
        text += f" (on try {len(x.earlier) + 1}; before: {'; '.join(x.earlier)})"
    return text + (f": {x.error}" if x.error else "")


def _md_inline(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(bs: list[Block]) -> str:
    out: list[str] = []
    for blk in bs:
        kind = blk[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + blk[1])
        elif kind == "p":
            out.append(blk[1])
        elif kind == "ul":
            out.append("\n".join(f"- {x}" for x in blk[1]) or "- (none)")
        elif kind == "table":
            head, rows = blk[1], blk[2]
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(_md_inline(str(c)) for c in row) + " |" for row in rows]
            out.append("\n".join(lines))
        out.append("")
    return "\n".join(out)


CSS = ("body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;"
       "vertical-align:top;font-size:.9em}th{background:#f3f3f3}code{background:#f3f3f3;padding:0 .2em}"
       ".ready{color:#186a1e}.blocked{color:#a01010}.needs{color:#8a5a00}")


def _html_inline(text: str) -> str:
    import re

    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


def to_html(bs: list[Block], verdict: str) -> str:
    cls = {"ready": "ready", "blocked": "blocked"}.get(verdict, "needs")
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>Airflow upgrade rehearsal</title>"
           f"<style>{CSS}</style></head><body>"]
    for blk in bs:
        kind = blk[0]
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{html.escape(blk[1])}</{kind}>")
        elif kind == "p":
            text = _html_inline(blk[1])
            if "Verdict:" in blk[1]:
                text = f"<span class='{cls}'>{text}</span>"
            out.append(f"<p>{text}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_html_inline(x)}</li>" for x in blk[1]) + "</ul>")
        elif kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in blk[1]) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                                 for row in blk[2]) + "</table>")
    out.append("</body></html>")
    return "\n".join(out)


def to_json(r: Rehearsal) -> dict:
    def conv(x):
        if dataclasses.is_dataclass(x):
            return {f.name: conv(getattr(x, f.name)) for f in dataclasses.fields(x) if f.name not in ("scratch",)}
        if isinstance(x, dict):
            return {str(k): conv(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [conv(v) for v in x]
        if isinstance(x, Path):
            return str(x)
        if callable(x):
            return None
        return x
    data = conv(r)
    data["runner"] = [conv(s) for s in r.runner.steps]
    return data


def write(r: Rehearsal, root: Path) -> list[Path]:
    bs = blocks(r, root)
    summary = summary_lines(r, root)
    bs.insert(1, ("h2", "Summary"))
    bs.insert(2, ("p", "```\n" + "\n".join(summary) + "\n```"))
    md = to_markdown(bs)
    paths = [r.scratch.out / "report.md", r.scratch.out / "report.html", r.scratch.out / "report.json"]
    paths[0].write_text(md)
    hbs = [blk if blk[0] != "p" or not blk[1].startswith("```") else ("pre", "\n".join(summary)) for blk in bs]
    page = to_html([b for b in hbs if b[0] != "pre"], r.verdict)
    pre = "<pre>" + html.escape("\n".join(summary)) + "</pre>"
    page = page.replace("<h2>Summary</h2>", "<h2>Summary</h2>" + pre, 1)
    paths[1].write_text(page)
    paths[2].write_text(json.dumps(to_json(r), indent=1, sort_keys=True, default=str))
    return paths
