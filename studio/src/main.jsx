// The pipeline studio's front end. The server owns the YAML: every change here is an operation sent to
// /api/edit (or the text the user typed in the YAML pane); the answer is the document, its graph and
// the validator's problems, which this page only draws.
import React, { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import {
  ReactFlow, ReactFlowProvider, MiniMap, Controls, Background, Handle, Position, MarkerType,
  applyNodeChanges, applyEdgeChanges, useReactFlow, useNodesInitialized, getViewportForBounds, useStoreApi,
  useUpdateNodeInternals,
} from "@xyflow/react";
import ELK from "elkjs/lib/elk-api.js";
import { EditorView, basicSetup } from "codemirror";
import { yaml } from "@codemirror/lang-yaml";
import { Annotation } from "@codemirror/state";
import "@xyflow/react/dist/style.css";
import "./studio.css";

const TOKEN = new URLSearchParams(location.search).get("token") || "";
const NODE_W = 230;
const NODE_H = 96;
// ELK runs in a Web Worker (elkjs's own elk-worker, 1.6 MB): the browser loads and compiles it on another
// core while this bundle draws the pipeline list, and a 200-job layout does not block the page.
const elk = new ELK({ workerUrl: "/static/elk-worker.js" });
const fromServer = Annotation.define(); // text the server sent, not typed: not sent back
const timings = (window.__studio = { layouts: [] });
elk.layout({ id: "warm", children: [{ id: "a", width: 1, height: 1 }], edges: [] }); // start the worker now

async function api(name, body = {}) {
  const r = await fetch(`/api/${name}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Studio-Token": TOKEN },
    body: JSON.stringify(body),
  });
  const data = await r.json();
  if (!r.ok) {
    const e = new Error(data.error || r.statusText);
    e.data = data;
    e.status = r.status;
    throw e;
  }
  return data;
}

// ---- schema-driven fields ---------------------------------------------------------------------
function resolve(schema, prop) {
  let p = prop;
  if (p.$ref) p = schema.$defs[p.$ref.split("/").pop()];
  let nullable = false;
  if (p.anyOf) {
    nullable = p.anyOf.some((a) => a.type === "null");
    const rest = p.anyOf.filter((a) => a.type !== "null");
    p = { ...p, ...rest[0] };
    delete p.anyOf;
  }
  return { ...p, nullable };
}

// The schema's keys are sorted; show the usual ones in a reading order, any other (new) field after them.
const ORDER = ["name", "schedule", "owner", "tags", "description", "start_date", "catchup", "docker_image",
  "resource_flavor", "command", "arguments", "env", "retries", "timeout", "trigger_rule", "pool"];
const rank = (k) => (ORDER.includes(k) ? ORDER.indexOf(k) : ORDER.length);

function fieldsOf(schema, defName, skip = []) {
  const def = schema.$defs[defName];
  return Object.entries(def.properties)
    .filter(([k]) => !skip.includes(k))
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([k, v]) => ({ key: k, ...resolve(schema, v), required: (def.required || []).includes(k) }));
}

function toText(f, v) {
  if (v === undefined) return "";
  if (v === null) return "null";
  if (f.type === "array") return (v || []).join("\n");
  if (f.type === "object") return Object.entries(v || {}).map(([k, x]) => `${k}=${x}`).join("\n");
  return String(v);
}

function fromText(f, text) {
  if (text.trim() === "") return { unset: true };
  if (f.nullable && text.trim() === "null") return { value: null };
  if (f.type === "array") return { value: text.split("\n").map((s) => s.trim()).filter((s) => s !== "") };
  if (f.type === "object") {
    const out = {};
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      const i = line.indexOf("=");
      if (i < 0) out[line.trim()] = "";
      else out[line.slice(0, i).trim()] = line.slice(i + 1);
    }
    return { value: out };
  }
  if (f.type === "integer" && /^-?\d+$/.test(text.trim())) return { value: parseInt(text.trim(), 10) };
  if (f.type === "boolean" && (text === "true" || text === "false")) return { value: text === "true" };
  return { value: text };
}

function limits(fl) {
  if (!fl) return "";
  const gpu = fl.gpu ? ` · ${fl.gpu.count}× ${fl.gpu.type || "gpu"}` : "";
  return `${fl.cpu.limit} cpu · ${fl.memory.limit}${gpu}`;
}

function Field({ f, value, inherited, onCommit, catalog, problems, words, idPrefix }) {
  const [text, setText] = useState(toText(f, value));
  useEffect(() => setText(toText(f, value)), [JSON.stringify(value)]);
  const id = `${idPrefix}-${f.key}`;
  const commit = (t) => {
    if (t === toText(f, value)) return;
    onCommit(f.key, fromText(f, t));
  };
  const probs = problems.filter((p) => p.key === f.key || p.field.endsWith(`.${f.key}`));
  let input;
  if (f.key === "resource_flavor") {
    const names = Object.keys(catalog.flavors).sort();
    input = (
      <select id={id} value={value ?? ""} onChange={(e) => onCommit(f.key, e.target.value ? { value: e.target.value } : { unset: true })}>
        <option value="">{inherited ? `(default: ${inherited})` : "(none)"}</option>
        {value && !names.includes(value) && <option value={value}>{value} (unknown)</option>}
        {names.map((n) => (
          <option key={n} value={n}>{n} — {limits(catalog.flavors[n])} — {catalog.flavors[n].allowed_in.join(", ") || "no environment"}</option>
        ))}
      </select>
    );
  } else if (f.key === "trigger_rule") {
    input = (
      <select id={id} value={value ?? ""} onChange={(e) => onCommit(f.key, e.target.value ? { value: e.target.value } : { unset: true })}>
        <option value="">(all_success)</option>
        {value && !catalog.trigger_rules.includes(value) && <option value={value}>{value} (unknown)</option>}
        {catalog.trigger_rules.map((n) => <option key={n} value={n}>{n}</option>)}
      </select>
    );
  } else if (f.type === "boolean") {
    input = (
      <select id={id} value={value === undefined ? "" : String(value)} onChange={(e) => onCommit(f.key, fromText(f, e.target.value))}>
        <option value="">(default: {String(f.default)})</option>
        <option value="true">true</option>
        <option value="false">false</option>
      </select>
    );
  } else if (f.type === "array" || f.type === "object") {
    input = (
      <textarea id={id} rows={Math.max(2, text.split("\n").length)} value={text}
        placeholder={f.type === "array" ? "one item per line" : "NAME=value, one per line"}
        onChange={(e) => setText(e.target.value)} onBlur={(e) => commit(e.target.value)} />
    );
  } else {
    input = (
      <input id={id} value={text} placeholder={inherited ? `default: ${inherited}` : f.default != null ? `default: ${f.default}` : ""}
        list={f.key === "schedule" ? "presets" : undefined}
        onChange={(e) => setText(e.target.value)} onBlur={(e) => commit(e.target.value)}
        onKeyDown={(e) => e.key === "Enter" && commit(e.currentTarget.value)} />
    );
  }
  const fl = f.key === "resource_flavor" && catalog.flavors[value || inherited];
  return (
    <label className={`field ${probs.length ? "bad" : ""}`}>
      <span className="fname">{f.title || f.key}{f.required ? " *" : ""}</span>
      {input}
      {f.description && <span className="hint">{f.description}</span>}
      {fl && <span className="hint">limits {limits(fl)}; allowed in: {fl.allowed_in.join(", ") || "none"}</span>}
      {words !== undefined && <span className="hint" id="schedule-words">{words}</span>}
      {probs.map((p, i) => <span key={i} className="problem">{p.message}</span>)}
    </label>
  );
}

function JobForm({ state, job, catalog, edit }) {
  const [name, setName] = useState(job.name);
  useEffect(() => setName(job.name), [job.name]);
  const fields = fieldsOf(catalog.schema, "Job", ["depends_on"]);
  const d = state.defaults || {};
  const inherited = { docker_image: d.docker_image, resource_flavor: d.resource_flavor, timeout: d.timeout, retries: d.retries, pool: d.pool };
  const onCommit = (key, v) => edit(v.unset ? { op: "unset", path: ["jobs", job.name, key] } : { op: "set", path: ["jobs", job.name, key], value: v.value });
  return (
    <div className="form" id="job-form">
      <h3>Job</h3>
      <label className="field">
        <span className="fname">name</span>
        <span className="row">
          <input id="job-name" value={name} onChange={(e) => setName(e.target.value)}
            onKeyDown={(e) => e.key === "Enter" && name !== job.name && edit({ op: "rename_job", name: job.name, new_name: name })} />
          <button id="rename-job" disabled={name === job.name} onClick={() => edit({ op: "rename_job", name: job.name, new_name: name })}>Rename</button>
          <button id="delete-job" className="danger" onClick={() => edit({ op: "delete_job", name: job.name })}>Delete</button>
        </span>
      </label>
      {job.forbidden_in.length > 0 && <div className="problem">flavor {job.flavor} is not allowed in: {job.forbidden_in.join(", ")}</div>}
      {fields.map((f) => (
        <Field key={f.key} f={f} value={job.fields[f.key]} inherited={inherited[f.key]} onCommit={onCommit}
          catalog={catalog} problems={job.problems} idPrefix="job" />
      ))}
    </div>
  );
}

function DagForm({ state, catalog, edit }) {
  const dagFields = fieldsOf(catalog.schema, "DagSpec");
  const defFields = fieldsOf(catalog.schema, "Defaults");
  const section = (name) => (key, v) =>
    edit(v.unset ? { op: "unset", path: [name, key] } : { op: "set", path: [name, key], value: v.value });
  const probs = (prefix) => state.problems.filter((p) => p.field.startsWith(prefix)).map((p) => ({ ...p, key: p.field.split(".")[1] }));
  return (
    <div className="form" id="dag-form">
      <h3>DAG</h3>
      {dagFields.map((f) => (
        <Field key={f.key} f={f} value={(state.dag || {})[f.key]} onCommit={section("dag")} catalog={catalog}
          problems={probs("dag.")} idPrefix="dag" words={f.key === "schedule" ? state.schedule_words : undefined} />
      ))}
      <h3>Defaults for every job</h3>
      {defFields.map((f) => (
        <Field key={f.key} f={f} value={(state.defaults || {})[f.key]} onCommit={section("defaults")} catalog={catalog}
          problems={probs("defaults.")} idPrefix="defaults" />
      ))}
      <datalist id="presets">{catalog.presets.map((p) => <option key={p} value={p} />)}<option value="null" /></datalist>
    </div>
  );
}

// ---- graph ------------------------------------------------------------------------------------
function fmtSecs(d) {
  if (d == null) return "";
  if (d < 60) return `${d.toFixed(1)}s`;
  const s = Math.round(d);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

function RunBadge({ r }) {
  if (!r) return null;
  const st = r.state || "none";
  const m = r.mapped;
  return (
    <div className={`runinfo st-${st}`} data-state={st}>
      <span className="runstate">{st === "none" ? "not started" : st.replace(/_/g, " ")}</span>
      {r.try_number > 0 && <span> · try {r.try_number}</span>}
      {r.duration != null && <span> · {fmtSecs(r.duration)}</span>}
      {m && <span className="mapped"> · ×{m.count} ({Object.entries(m.states).map(([k, v]) => `${v} ${k}`).join(", ")})</span>}
      {m && m.instances && <MapCells instances={m.instances} />}
      {r.why && <div className="why">{r.why}</div>}
    </div>
  );
}

// one small square per map index, coloured by its state (the first `max`: one row on a node; "+N" says the rest)
function MapCells({ instances, chosen, onPick, max = 19 }) {
  const shown = instances.slice(0, max);
  return (
    <div className="mapcells">
      {shown.map((i) => (
        <span key={i.map_index} className={`cell st-${i.state || "none"} ${chosen === i.map_index ? "on" : ""}`}
          data-index={i.map_index} data-state={i.state || "none"} title={`map index ${i.map_index}: ${i.state || "not started"}`}
          onClick={onPick ? (e) => { e.stopPropagation(); onPick(i.map_index); } : undefined} />
      ))}
      {instances.length > shown.length && <span className="more">+{instances.length - shown.length}</span>}
    </div>
  );
}

// the task id of a job: its name, or group.name for a job in a task group
const runOf = (runJobs, name) => runJobs && (runJobs[name] || Object.entries(runJobs).find(([k]) => k.endsWith(`.${name}`))?.[1]);
const taskIdOf = (runJobs, name) => runJobs && (runJobs[name] ? name : Object.keys(runJobs).find((k) => k.endsWith(`.${name}`)));

// when each job's run state reached the screen (the frame after React committed it): the bench measures
// how long after Airflow's own timestamp of a state change it appears on the graph
timings.states = [];
function recordState(job, state) {
  requestAnimationFrame(() => {
    const t = performance.now();
    timings.states.push({ job, state, t, at: performance.timeOrigin + t });
    if (timings.states.length > 20000) timings.states.splice(0, 10000);
  });
}

function JobNode({ data }) {
  const { job, flavor } = data;
  const bad = job.problems.length > 0;
  const r = data.run;
  const st = r ? r.state || "none" : null;
  useEffect(() => { if (st) recordState(job.name, st); }, [st]);
  return (
    <div className={`job ${bad ? "bad" : ""} ${data.selected ? "sel" : ""} ${r ? `st-${r.state || "none"}` : ""}`} title={job.problems.map((p) => p.message).join("\n")}>
      <Handle type="target" position={Position.Left} />
      <div className="jname">{job.name}</div>
      <div className="jimage">{job.image || <i>no image</i>}</div>
      <div className="badges">
        {flavor ? (
          <span className={`badge ${flavor.gpu ? "gpu" : ""}`} title={flavor.description}>{job.flavor} · {limits(flavor)}</span>
        ) : (
          <span className="badge unknown">{job.flavor ? `${job.flavor}?` : "no flavor"}</span>
        )}
        {job.forbidden_in.map((e) => <span key={e} className="badge forbidden" title={`${job.flavor} is not allowed in ${e}`}>✕ {e}</span>)}
      </div>
      {bad && <div className="jprob">{job.problems[0].message}</div>}
      <RunBadge r={r} />
      <Handle type="source" position={Position.Right} />
    </div>
  );
}
const nodeTypes = { job: JobNode };

async function layout(jobs, edges) {
  const t0 = performance.now();
  const names = new Set(jobs.map((j) => j.name));
  const g = await elk.layout({
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered", "elk.direction": "RIGHT",
      "elk.layered.spacing.nodeNodeBetweenLayers": "50", "elk.spacing.nodeNode": "28",
    },
    children: jobs.map((j) => ({ id: j.name, width: NODE_W, height: NODE_H })),
    edges: edges.filter((e) => names.has(e.source) && names.has(e.target))
      .map((e, i) => ({ id: `e${i}`, sources: [e.source], targets: [e.target] })),
  });
  const pos = {};
  for (const c of g.children) pos[c.id] = { x: c.x, y: c.y };
  timings.lastLayoutMs = performance.now() - t0;
  return pos;
}

// the viewport that shows the laid-out graph (ELK's positions and the fixed node size) in the pane element
function fitFor(ps, el) {
  const x = Math.min(...ps.map((q) => q.x)), y = Math.min(...ps.map((q) => q.y));
  const bounds = { x, y, width: Math.max(...ps.map((q) => q.x)) + NODE_W - x, height: Math.max(...ps.map((q) => q.y)) + NODE_H - y };
  return getViewportForBounds(bounds, el.clientWidth, el.clientHeight, 0.05, 1.5, 0.06);
}

function sameViewport(a, b) {
  return Math.abs(a.x - b.x) < 0.5 && Math.abs(a.y - b.y) < 0.5 && Math.abs(a.zoom - b.zoom) < 1e-3;
}

function Graph({ state, catalog, selected, setSelected, edit, runJobs }) {
  const [nodes, setNodes] = useState([]);
  const [edges, setEdges] = useState([]);
  const [pos, setPos] = useState({});
  const { setViewport, getViewport } = useReactFlow();
  timings.getViewport = getViewport;
  const store = useStoreApi();
  const updateNodeInternals = useUpdateNodeInternals();
  const pane = useRef(null);
  const measured = useNodesInitialized();
  const structure = JSON.stringify([state.file, state.jobs.map((j) => j.name), state.edges.map((e) => [e.source, e.target])]);
  const fitted = useRef(null);

  useEffect(() => {
    let live = true;
    const t0 = performance.now();
    // counted when the layout starts, in the same commit as the edit's answer (this effect runs before the
    // App's revision count): a test that saw the answer waits for this layout, not the one before it
    const seq = (timings.started = (timings.started || 0) + 1);
    layout(state.jobs, state.edges).then((p) => {
      if (!live) return;
      timings.pendingDraw = { t0, seq, layoutMs: performance.now() - t0, n: state.jobs.length, pos: p };
      setPos(p);
    });
    return () => { live = false; };
  }, [structure]);

  useEffect(() => {
    // keep what React Flow measured: a node rebuilt without it stays hidden until its size changes
    setNodes((prev) => {
      const measuredById = Object.fromEntries(prev.map((n) => [n.id, n.measured]));
      return state.jobs.map((j) => ({
        id: j.name, type: "job", position: pos[j.name] || { x: 0, y: 0 }, selected: j.name === selected,
        data: { job: j, flavor: catalog.flavors[j.flavor], selected: j.name === selected, run: runOf(runJobs, j.name) },
        style: { width: NODE_W }, initialWidth: NODE_W, initialHeight: NODE_H, measured: measuredById[j.name],
      }));
    });
    setEdges(state.edges.filter((e) => !e.dangling).map((e) => ({
      id: `${e.source}->${e.target}`, source: e.source, target: e.target,
      className: e.cycle ? "cycle" : "", animated: e.cycle,
      markerEnd: { type: MarkerType.ArrowClosed },
    })));
  }, [state, pos, selected, runJobs]);

  // React Flow hit-tests a drag from a handle with the handle bounds it measured, and measures only when a
  // node's size changes. A node object rebuilt while a measurement is in flight can come back with its size
  // but without those bounds (seen: a new job shrinks when its problem line goes away); its handles then
  // ignore the pointer until the node happens to resize. Re-measure any such node.
  useEffect(() => {
    const lost = [];
    for (const [id, n] of store.getState().nodeLookup) if (!n.internals.handleBounds && n.measured?.width) lost.push(id);
    if (lost.length) updateNodeInternals(lost);
  }, [nodes]);
  timings.handlesReady = () => {
    const lookup = store.getState().nodeLookup;
    return [...lookup.values()].every((n) => n.internals.handleBounds && n.internals.handleBounds.source?.length
      && n.internals.handleBounds.target?.length);
  };

  useEffect(() => {
    const p = timings.pendingDraw;
    // wait for this layout's positions to be rendered: a render in between (same job count, older positions)
    // must not fit the viewport to the previous layout (seen: an edge added, the graph fitted to the old one)
    if (!p || p.pos !== pos || (state.jobs.length && !measured)) return;
    if (nodes.some((n) => !pos[n.id])) return;
    if (p.scheduled) return;
    p.scheduled = true;
    requestAnimationFrame(() => {
      const drawn = document.querySelectorAll(".react-flow__node").length;
      const totalMs = performance.now() - p.t0; // laid out, measured and painted once
      const done = () => requestAnimationFrame(() => { // the fitted viewport is on screen: tests may point at nodes now
        timings.layouts.push({ n: p.n, seq: p.seq, layoutMs: p.layoutMs, totalMs, drawn, at: performance.now() });
        if (timings.pendingDraw === p) timings.pendingDraw = null;
        document.body.dataset.layoutDone = String(timings.layouts.length);
      });
      const ps = Object.values(pos);
      if (fitted.current !== structure && ps.length && pane.current) {
        fitted.current = structure;
        const vp = fitFor(ps, pane.current);
        timings.viewport = vp;
        Promise.resolve(setViewport(vp, { duration: 0 })).then(done); // d3-zoom applies it on its own timer
      } else {
        done();
      }
    });
  }, [nodes, measured]);

  // The pane changes size after a fit (a message line above it comes or goes, the window is resized): fit
  // again, unless the user has panned or zoomed since the last fit (then their view stays).
  const posNow = useRef(pos);
  posNow.current = pos;
  useEffect(() => {
    if (!pane.current || typeof ResizeObserver === "undefined") return undefined;
    let size = [pane.current.clientWidth, pane.current.clientHeight];
    const ro = new ResizeObserver(() => {
      const el = pane.current, last = timings.viewport, ps = Object.values(posNow.current);
      if (!el || (el.clientWidth === size[0] && el.clientHeight === size[1])) return;
      size = [el.clientWidth, el.clientHeight];
      if (!last || !ps.length || !sameViewport(getViewport(), last)) return;
      const vp = fitFor(ps, el);
      timings.viewport = vp;
      setViewport(vp, { duration: 0 });
    });
    ro.observe(pane.current);
    return () => ro.disconnect();
  }, []);

  const onNodesChange = useCallback((ch) => setNodes((ns) => applyNodeChanges(ch.filter((c) => c.type !== "remove"), ns)), []);
  const onEdgesChange = useCallback((ch) => setEdges((es) => applyEdgeChanges(ch.filter((c) => c.type !== "remove"), es)), []);
  const onConnect = useCallback((c) => edit({ op: "connect", source: c.source, target: c.target }), [edit]);
  const onDelete = useCallback(({ nodes: ns, edges: es }) => {
    const gone = new Set(ns.map((n) => n.id));
    const ops = [
      ...es.filter((e) => !gone.has(e.source) && !gone.has(e.target)).map((e) => ({ op: "disconnect", source: e.source, target: e.target })),
      ...ns.map((n) => ({ op: "delete_job", name: n.id })),
    ];
    if (ops.length) edit(ops);
  }, [edit]);

  return (
    <div ref={pane} style={{ width: "100%", height: "100%" }}>
    <ReactFlow nodes={nodes} edges={edges} nodeTypes={nodeTypes} onNodesChange={onNodesChange}
      onEdgesChange={onEdgesChange} onConnect={onConnect} onDelete={onDelete}
      onNodeClick={(_, n) => setSelected(n.id)} onPaneClick={() => setSelected(null)}
      deleteKeyCode={["Delete", "Backspace"]} minZoom={0.05} onlyRenderVisibleElements={false}
      autoPanOnConnect={false} autoPanOnNodeFocus={false}
      proOptions={{ hideAttribution: true }}>
      <MiniMap pannable zoomable nodeColor={(n) => (n.data.job.problems.length ? "#e66" : STATE_COLORS[n.data.run?.state] || "#8ab")} />
      <Controls />
      <Background gap={20} />
    </ReactFlow>
    </div>
  );
}

// ---- YAML pane and preview --------------------------------------------------------------------
function YamlPane({ text, onText, problems }) {
  const host = useRef(null);
  const view = useRef(null);
  const timer = useRef(null);
  const cb = useRef(onText);
  cb.current = onText;
  useEffect(() => {
    view.current = new EditorView({
      doc: text, parent: host.current,
      extensions: [basicSetup, yaml(), EditorView.updateListener.of((u) => {
        if (!u.docChanged || u.transactions.some((t) => t.annotation(fromServer))) return;
        clearTimeout(timer.current);
        timer.current = setTimeout(() => { timer.current = null; cb.current(u.state.doc.toString()); }, 350);
      })],
    });
    window.__studio.editor = view.current;
    return () => view.current.destroy();
  }, []);
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== text && !timer.current) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: text }, annotations: fromServer.of(true) });
    }
  }, [text]);
  useEffect(() => () => clearTimeout(timer.current), []);
  return (
    <div className="yaml">
      <div ref={host} id="yaml-editor" />
      {problems.map((p, i) => <div key={i} className="problem">line {p.line ?? "?"}: {p.field} {p.message}</div>)}
    </div>
  );
}

function Preview({ file, state }) {
  const [p, setP] = useState(null);
  useEffect(() => { api("preview", { file }).then(setP, (e) => setP({ problems: [e.message] })); }, [file, state.text]);
  if (!p) return <div>…</div>;
  if (!p.python) return <div className="problems">{p.problems.map((x, i) => <div key={i} className="problem">{x}</div>)}</div>;
  const t = p.totals;
  return (
    <div className="preview">
      <h3>One run asks for (requests / limits)</h3>
      <table id="totals"><thead><tr><th>flavor</th><th>jobs</th><th>cpu</th><th>memory</th><th>gpu</th></tr></thead>
        <tbody>
          {Object.entries(t.by_flavor).map(([k, r]) => <tr key={k}><td>{k}</td><td>{r.jobs}</td><td>{r.cpu}</td><td>{r.memory}</td><td>{r.gpu}</td></tr>)}
          <tr className="total"><td>total</td><td>{t.total.jobs}</td><td>{t.total.cpu}</td><td>{t.total.memory}</td><td>{t.total.gpu}</td></tr>
        </tbody></table>
      <h3>{p.dag_file} (what make render writes)</h3>
      <pre id="dag-python">{p.python}</pre>
    </div>
  );
}

// ---- save: the diffs first -------------------------------------------------------------------
function Diff({ id, text }) {
  if (!text) return <pre id={id} className="diff"><i>no change</i></pre>;
  return (
    <pre id={id} className="diff">
      {text.split("\n").map((l, i) => (
        <div key={i} className={l.startsWith("+") && !l.startsWith("+++") ? "add" : l.startsWith("-") && !l.startsWith("---") ? "del" : l.startsWith("@@") ? "hunk" : ""}>{l}</div>
      ))}
    </pre>
  );
}

function SaveDialog({ pending, onConfirm, onCancel, onCommit }) {
  const [branch, setBranch] = useState("");
  const [message, setMessage] = useState("");
  const [allowDefault, setAllowDefault] = useState(false);
  return (
    <div className="dialog" id="save-dialog">
      <h3>Save {pending.file}{pending.draft ? " as a draft" : ""}: this is what will be written</h3>
      <div className="muted">{pending.file}{pending.new ? " (new file)" : ""}</div>
      <Diff id="yaml-diff" text={pending.yaml_diff} />
      <div className="muted">{pending.dag_file ? `${pending.dag_file}, as make render will write it` : "no DAG: the pipeline has problems"}</div>
      {pending.dag_problems.map((p, i) => <div key={i} className="problem">{p}</div>)}
      <Diff id="dag-diff" text={pending.dag_diff} />
      <div className="row">
        <button id="confirm-save" onClick={onConfirm}>Write {pending.file}</button>
        <button id="cancel-save" onClick={onCancel}>Cancel (nothing is written)</button>
      </div>
      <h3>…or write it and commit it on a branch (never pushed)</h3>
      <div className="row">
        <input id="commit-branch" placeholder="new branch, from the current HEAD" value={branch} onChange={(e) => setBranch(e.target.value)} />
        <label className="muted"><input id="commit-default" type="checkbox" checked={allowDefault} onChange={(e) => setAllowDefault(e.target.checked)} /> default branch</label>
      </div>
      <textarea id="commit-message" rows={2} placeholder="commit message" value={message} onChange={(e) => setMessage(e.target.value)} />
      <div className="row">
        <button id="confirm-commit" disabled={!branch || !message.trim()} onClick={() => onCommit({ branch, message, allow_default: allowDefault })}>Write and commit on {branch || "…"}</button>
      </div>
    </div>
  );
}

// ---- runs on the local stack ------------------------------------------------------------------
const STATE_COLORS = { success: "#3a9d50", failed: "#d33", upstream_failed: "#e8912d", running: "#2b7bd6",
  queued: "#9aa4b5", scheduled: "#9aa4b5", up_for_retry: "#e5c02c", skipped: "#d49fd6" };
const LIVE = new Set(["queued", "scheduled", "running", "up_for_retry", "up_for_reschedule", "deferred", "restarting", null, undefined]);

function RunDialog({ params, onRun, onCancel }) {
  const [values, setValues] = useState(() => Object.fromEntries(Object.entries(params || {}).map(([k, p]) => [k, p.default == null ? "" : String(p.default)])));
  const conf = () => Object.fromEntries(Object.entries(params || {}).map(([k, p]) => {
    const v = values[k];
    if (p.type === "integer") return [k, parseInt(v, 10)];
    if (p.type === "number") return [k, parseFloat(v)];
    if (p.type === "boolean") return [k, v === "true"];
    if (p.type === "array") return [k, v.split("\n").filter((x) => x.trim())];
    return [k, v];
  }));
  return (
    <div className="dialog" id="run-dialog">
      <h3>Run on the local stack (renders, validates, deploys to local; starts the stack if it is not up)</h3>
      {Object.entries(params || {}).map(([k, p]) => (
        <label key={k} className="field"><span className="fname">{k} ({p.type})</span>
          {p.enum ? (
            <select id={`param-${k}`} value={values[k]} onChange={(e) => setValues({ ...values, [k]: e.target.value })}>
              {p.enum.map((x) => <option key={String(x)} value={String(x)}>{String(x)}</option>)}</select>
          ) : p.type === "boolean" ? (
            <select id={`param-${k}`} value={values[k]} onChange={(e) => setValues({ ...values, [k]: e.target.value })}>
              <option value="true">true</option><option value="false">false</option></select>
          ) : (
            <input id={`param-${k}`} value={values[k]} onChange={(e) => setValues({ ...values, [k]: e.target.value })} />
          )}
          {p.description && <span className="hint">{p.description}</span>}
        </label>
      ))}
      <div className="row">
        <button id="run-confirm" onClick={() => onRun(conf())}>Run</button>
        <button id="run-cancel" onClick={onCancel}>Cancel</button>
      </div>
    </div>
  );
}

// the map index shown first: the first failed one, else the first live one, else the first
function firstIndex(instances) {
  const by = (f) => instances.find(f);
  const i = by((x) => x.state === "failed") || by((x) => x.state && LIVE.has(x.state)) || instances[0];
  return i ? i.map_index : null;
}

// a live log is read again every 4 s (and once when its state changes); while the Log tab is open the status
// poll waits 1.5 s: 1/4 + 2/3 of an Airflow request a second, under the one a second per open pipeline
const LOG_FOLLOW_MS = 4000;

function RunLog({ file, name, runJobs, runId }) {
  const [text, setText] = useState("");
  const [chosen, setChosen] = useState(null); // the map index picked (a mapped job)
  const tid = taskIdOf(runJobs, name);
  const r = runOf(runJobs, name);
  const insts = (r && r.mapped && r.mapped.instances) || null;
  const mi = insts ? (insts.some((x) => x.map_index === chosen) ? chosen : firstIndex(insts)) : -1;
  const inst = insts ? insts.find((x) => x.map_index === mi) : null;
  const state = insts ? inst && inst.state : r && r.state;
  const tn = (insts ? inst && inst.try_number : r && r.try_number) || 1;
  const live = !!r && (insts ? !!inst : true) && state != null && LIVE.has(state);
  useEffect(() => {
    if (!tid || !r || state == null || mi == null) { setText(""); return undefined; }
    let stop = false;
    const get = () => api("run-log", { file, task_id: tid, try_number: tn, map_index: mi })
      .then((x) => !stop && setText(x.error ? `(${x.error})` : x.log), () => {});
    get();
    const t = live ? setInterval(get, LOG_FOLLOW_MS) : null; // followed while it runs
    return () => { stop = true; if (t) clearInterval(t); };
  }, [file, tid, runId, mi, state, tn]);
  if (!r) return <div className="muted">{name} has no state in this run.</div>;
  return (
    <div className="runlog">
      <h3>{name}{insts ? ` [${mi}]` : ""}: {state || "not started"}{state ? `, try ${tn}` : ""}{live ? " (following)" : ""}</h3>
      {insts && (
        <div className="mapindex">
          <label>map index{" "}
            <select id="map-index" value={mi ?? ""} onChange={(e) => setChosen(parseInt(e.target.value, 10))}>
              {insts.map((x) => <option key={x.map_index} value={x.map_index}>{x.map_index} — {x.state || "not started"}{x.try_number ? `, try ${x.try_number}` : ""}</option>)}
            </select>
          </label>
          <span className="muted"> of {insts.length} ({Object.entries(r.mapped.states).map(([k, v]) => `${v} ${k}`).join(", ")})</span>
          <MapCells instances={insts} chosen={mi} onPick={setChosen} max={400} />
        </div>
      )}
      {r.why && <div className="muted">{r.why}</div>}
      <pre id="job-log" data-map-index={mi}>{text}</pre>
    </div>
  );
}

// ---- the app ----------------------------------------------------------------------------------
function App() {
  const [catalog, setCatalog] = useState(null);
  const [list, setList] = useState([]);
  const [state, setState] = useState(null);
  const [selected, setSelected] = useState(null);
  const [tab, setTab] = useState("form");
  const [msg, setMsg] = useState({ kind: "", text: "" });
  const [newName, setNewName] = useState("");
  const [newJob, setNewJob] = useState("");
  const file = state && state.file;

  useEffect(() => { // counted once the answer is rendered, so tests and the bench wait for the page, not the fetch
    if (!state) return;
    timings.state = state; // the last document the server sent
    timings.revision = (timings.revision || 0) + 1;
  }, [state]);

  const refreshList = () => api("pipelines").then((r) => setList(r.pipelines));
  useEffect(() => {
    api("catalog").then(setCatalog, (e) => setMsg({ kind: "error", text: e.message }));
    refreshList();
  }, []);

  const run = useCallback(async (name, body, okText) => {
    try {
      const s = await api(name, body);
      setState(s);
      setMsg({ kind: "ok", text: okText || "" });
      return s;
    } catch (e) {
      setMsg({ kind: "error", text: e.message, conflict: e.data && e.data.conflict });
      return null;
    }
  }, []);
  const edit = useCallback((op) => run("edit", Array.isArray(op) ? { file, ops: op } : { file, op }), [file, run]);
  const open = (f) => { setSelected(null); run("open", { file: f }).then(() => { document.body.dataset.file = f; }); };
  // Save first shows what will be written (the YAML diff and the rendered DAG's diff); nothing is written
  // until the user confirms, and the server refuses a confirmation for a text other than the one shown.
  const [pending, setPending] = useState(null);
  const save = async (draft) => {
    try {
      setPending({ ...(await api("diff", { file })), draft });
    } catch (e) {
      setMsg({ kind: "error", text: e.message });
    }
  };
  const confirmSave = async () => {
    const { draft, text_sha } = pending;
    setPending(null);
    const s = await run("save", { file, draft, text_sha }, draft ? "saved as a draft" : "saved");
    if (s) { setMsg({ kind: "ok", text: `saved ${file}${s.saved === "draft" ? " (draft: it has problems)" : ""}` }); refreshList(); }
  };
  const confirmCommit = async (c) => {
    const { draft, text_sha } = pending;
    let s;
    try {
      s = await api("commit", { file, draft, text_sha, ...c });
    } catch (e) {
      setMsg({ kind: "error", text: e.message, conflict: e.data && e.data.conflict }); // the dialog stays open
      return;
    }
    setPending(null);
    setState(s);
    const k = s.committed, out = k.untouched_outside_pipelines;
    setMsg({ kind: "ok", text: `saved ${file} and committed ${k.commit.slice(0, 10)} on ${k.branch}${k.created ? " (new branch)" : ""}; not pushed`
      + (out.length ? `; left untouched outside pipelines/: ${out.join(", ")}` : "") });
    refreshList();
  };
  // runs: a run-status request 1 s after the last answer while a run is being prepared or is live (the
  // server reads Airflow's task-instance list once per status, never more than once a second per run:
  // poll_after), 1.5 s while the Log tab is open (a live log is read every 4 s): <= 1 Airflow request per
  // second per open pipeline. Once on opening (the last run's states). An unchanged answer is not redrawn.
  const [runDialog, setRunDialog] = useState(false);
  const [runStatus, setRunStatus] = useState(null);
  const [runPoll, setRunPoll] = useState(0);
  const logOpen = useRef(false);
  useEffect(() => {
    setRunStatus(null);
    if (!file) return undefined;
    let stop = false, timer = null, last = null;
    const poll = () => api("run-status", { file }).then((st) => {
      if (stop) return;
      timings.run = st;
      timings.polls = (timings.polls || 0) + 1;
      const { requests, ...shown } = st;
      const key = JSON.stringify(shown);
      if (key !== last) { last = key; setRunStatus(st); }
      const every = Math.max(1000, (st.poll_after || 1) * 1000) * (logOpen.current ? 1.5 : 1);
      if (st.live) timer = setTimeout(poll, every);
    }, () => { if (!stop) timer = setTimeout(poll, 4000); });
    poll();
    return () => { stop = true; clearTimeout(timer); };
  }, [file, runPoll]);
  const startRun = async (conf) => {
    setRunDialog(false);
    try {
      await api("run-start", { file, conf });
      setRunPoll((n) => n + 1);
      setMsg({ kind: "ok", text: "run started" });
    } catch (e) {
      setMsg({ kind: "error", text: e.message });
    }
  };
  const undo = () => run("undo", { file });
  const redo = () => run("redo", { file });

  useEffect(() => {
    const onKey = (e) => {
      if (!file || e.target.closest("input, textarea, select, .cm-editor")) return;
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") { e.preventDefault(); e.shiftKey ? redo() : undo(); }
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "y") { e.preventDefault(); redo(); }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [file]);

  if (!catalog) return <div className="msg error">{msg.text || "loading…"}</div>;
  const job = state && selected && state.jobs.find((j) => j.name === selected);
  logOpen.current = tab === "log" && !!job;
  const general = state ? state.problems.filter((p) => !p.job) : [];
  return (
    <div className="app">
      <aside className="side">
        <h2>Pipelines</h2>
        <ul id="pipelines">
          {list.map((p) => (
            <li key={p.file} className={p.file === file ? "cur" : ""}>
              <a href="#" data-file={p.file} onClick={(e) => { e.preventDefault(); open(p.file); }}>{p.dag || p.file}</a>
              <span className="muted"> {p.jobs} jobs{p.dirty ? " · edited" : ""}</span>
            </li>
          ))}
        </ul>
        <div className="row">
          <input id="new-name" placeholder="new_pipeline" value={newName} onChange={(e) => setNewName(e.target.value)} />
          <button id="new-pipeline" onClick={() => { setSelected(null); run("new", { name: newName }).then((s) => { if (s) { refreshList(); document.body.dataset.file = s.file; } }); }}>New</button>
        </div>
      </aside>
      <main className="main">
        {state ? (
          <>
            <div className="toolbar">
              <b>{state.file}</b>
              <span className={`status ${state.valid ? "valid" : "invalid"}`} id="validity">{state.valid ? "valid" : `${state.problems.length} problem(s)`}</span>
              {state.dirty && <span className="muted" id="dirty">unsaved</span>}
              <input id="new-job" placeholder="job name" value={newJob} onChange={(e) => setNewJob(e.target.value)}
                onKeyDown={(e) => e.key === "Enter" && newJob && edit({ op: "add_job", name: newJob }).then((s) => s && (setSelected(newJob), setNewJob("")))} />
              <button id="add-job" disabled={!newJob} onClick={() => edit({ op: "add_job", name: newJob }).then((s) => s && (setSelected(newJob), setNewJob("")))}>Add job</button>
              <button id="undo" disabled={!state.can_undo} onClick={undo}>Undo</button>
              <button id="redo" disabled={!state.can_redo} onClick={redo}>Redo</button>
              <button id="save" disabled={!state.dirty && !state.conflict} onClick={() => save(false)}>Save</button>
              <button id="save-draft" onClick={() => save(true)}>Save draft</button>
              <button id="run" disabled={state.dirty || !state.valid || (runStatus && runStatus.live && !runStatus.run_id)}
                title={state.dirty ? "save first: a run deploys the saved file" : "run on the local stack"}
                onClick={() => setRunDialog(true)}>Run</button>
            </div>
            {(state.conflict || msg.conflict) && (
              <div className="msg error" id="conflict">{state.file} changed on disk since it was opened: saving will not overwrite it.{" "}
                <button id="reload" onClick={() => run("reload", { file }, "reloaded from disk")}>Reload from disk (drops your edits)</button></div>
            )}
            {msg.text && <div className={`msg ${msg.kind}`} id="message">{msg.text}</div>}
            {runDialog && <RunDialog params={(state.dag || {}).params} onRun={startRun} onCancel={() => setRunDialog(false)} />}
            {runStatus && runStatus.stage && (
              <div className={`msg ${runStatus.error ? "error" : "ok"}`} id="run-progress">
                <b>run: {runStatus.stage}</b>{runStatus.run_id ? ` · ${runStatus.run_id}` : ""}{runStatus.run_state ? ` · ${runStatus.run_state}` : ""}
                {runStatus.error ? ` · ${runStatus.error}` : ""}
                {runStatus.live && !runStatus.run_id && runStatus.progress.length > 0 && <div className="muted">{runStatus.progress.at(-1)}</div>}
              </div>
            )}
            {pending && <SaveDialog pending={pending} onConfirm={confirmSave} onCommit={confirmCommit} onCancel={() => setPending(null)} />}
            <div className="work">
              <div className="graph" id="graph"><Graph state={state} catalog={catalog} selected={selected} setSelected={setSelected} edit={edit} runJobs={runStatus && runStatus.jobs} /></div>
              <div className="panel">
                <div className="tabs">
                  {["form", "yaml", "preview", "log"].map((t) => <button key={t} id={`tab-${t}`} className={tab === t ? "on" : ""} onClick={() => setTab(t)}>{t === "form" ? (job ? "Job" : "DAG") : t === "yaml" ? "YAML" : t === "log" ? "Log" : "Preview"}</button>)}
                </div>
                {tab === "form" && (job ? <JobForm key={job.name} state={state} job={job} catalog={catalog} edit={edit} /> : <DagForm state={state} catalog={catalog} edit={edit} />)}
                {tab === "yaml" && <YamlPane text={state.text} problems={state.problems} onText={(t) => edit({ op: "set_text", text: t })} />}
                {tab === "preview" && <Preview file={file} state={state} />}
                {tab === "log" && (job ? <RunLog key={job.name} file={file} name={job.name} runJobs={runStatus && runStatus.jobs} runId={runStatus && runStatus.run_id} />
                  : <div className="muted">Click a job on the graph to see its log.</div>)}
                {general.length > 0 && tab !== "yaml" && (
                  <div className="problems" id="problems">{general.map((p, i) => <div key={i} className="problem">{p.line ? `line ${p.line}: ` : ""}{p.field} {p.message}</div>)}</div>
                )}
              </div>
            </div>
          </>
        ) : (
          <div className="empty">Open a pipeline on the left, or create one.</div>
        )}
      </main>
    </div>
  );
}

createRoot(document.getElementById("root")).render(<ReactFlowProvider><App /></ReactFlowProvider>);
