"""The studio's state and API methods (one per /api/<name>), behind the HTTP layer of server.py.

It imports the validator's models and ruamel.yaml (about half a second), so server.py makes it in a
background thread while the browser loads the page.
"""

from __future__ import annotations

import difflib
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from ..pipelines.loader import MAX_BYTES
from .document import NEW_PIPELINE, Document, EditError, sha256
from .protocol import FILE_RE as _FILE
from .protocol import ApiError
from .workspace import analyze, describe_schedule, list_pipelines, load_catalog, preview


class Studio:
    """The studio's state: the project root, the catalog, and the documents being edited."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.pipelines = self.root / "pipelines"
        self.catalog = load_catalog(self.root)
        self.docs: dict[str, Document] = {}
        self.lock = threading.Lock()
        from .runs import Runner

        self.runner = Runner(self.root)

    # -- files --------------------------------------------------------------------------------------
    def path_of(self, file) -> Path:
        if not isinstance(file, str) or not _FILE.match(file):
            raise ApiError(400, f"{file!r} is not a pipeline file name (pipelines/<name>.yaml)")
        path = self.root / file
        if path.is_symlink() or path.resolve().parent != self.pipelines.resolve():
            raise ApiError(403, f"{file} is not inside pipelines/")
        return path

    def _read(self, path: Path) -> str | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(raw) > MAX_BYTES:
            raise ApiError(413, f"{path.name} is {len(raw)} bytes; pipelines are limited to {MAX_BYTES} bytes")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(422, f"{path.name} is not UTF-8 text") from None

    def doc(self, file, *, load: bool = True) -> Document:
        path = self.path_of(file)
        if file not in self.docs:
            text = self._read(path) if load else None
            if text is None:
                raise ApiError(404, f"{file} does not exist (create it with New pipeline)")
            self.docs[file] = Document(file, text, sha256(text))
        return self.docs[file]

    def state(self, doc: Document) -> dict:
        out = analyze(self.root, self.catalog, doc.file, doc.text)
        on_disk = self._read(self.root / doc.file)
        conflict = (on_disk is not None and doc.base_sha is not None and sha256(on_disk) != doc.base_sha) or \
                   (on_disk is not None and doc.base_sha is None)
        out.update(file=doc.file, text=doc.text, dirty=doc.dirty, base_sha=doc.base_sha, conflict=conflict,
                   can_undo=bool(doc.undo_stack), can_redo=bool(doc.redo_stack), new=doc.base_sha is None,
                   schedule_words=describe_schedule((out["dag"] or {}).get("schedule")))
        return out

    # -- API ----------------------------------------------------------------------------------------
    def api(self, name: str, body: dict) -> dict:
        method = getattr(self, "api_" + name.replace("-", "_"))
        if name in ("run-status", "run-log"):  # they wait on Airflow: never hold up the editing calls
            return method(body)
        with self.lock:
            return method(body)

    def api_pipelines(self, body) -> dict:
        files = list_pipelines(self.root)
        for f in files:
            d = self.docs.get(f["file"])
            f["dirty"] = bool(d and d.dirty)
        files += [{"file": f, "dag": None, "jobs": 0, "dirty": True} for f, d in self.docs.items()
                  if d.base_sha is None and not (self.root / f).exists()]
        return {"pipelines": files}

    def api_catalog(self, body) -> dict:
        from ..pipelines.model import PRESETS, TRIGGER_RULES

        c = self.catalog
        return {"flavors": c.flavors, "environments": c.environments, "schema": c.schema,
                "trigger_rules": list(TRIGGER_RULES), "presets": list(PRESETS)}

    def api_open(self, body) -> dict:
        return self.state(self.doc(body.get("file")))

    def api_new(self, body) -> dict:
        name = body.get("name")
        file = f"pipelines/{name}.yaml"
        path = self.path_of(file)
        if path.exists() or file in self.docs:
            raise ApiError(409, f"{file} already exists: open it instead")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", name):
            raise ApiError(400, f"{name!r} is not a valid DAG name")
        self.docs[file] = Document(file, NEW_PIPELINE.format(name=name), None)
        return self.state(self.docs[file])

    def api_edit(self, body) -> dict:
        doc = self.doc(body.get("file"))
        ops = body.get("ops") if "ops" in body else [body.get("op")]
        if not isinstance(ops, list) or not ops:
            raise ApiError(400, "edit needs op or a non-empty ops list")
        before = (doc.text, list(doc.undo_stack), list(doc.redo_stack))
        try:
            for op in ops:
                doc.apply(op)
        except EditError as exc:
            doc.text, doc.undo_stack, doc.redo_stack = before
            raise ApiError(422, str(exc)) from None
        if len(ops) > 1 and doc.text != before[0]:  # one user action, one undo step
            doc.undo_stack[len(before[1]):] = [before[0]]
        return self.state(doc)

    def api_undo(self, body) -> dict:
        return self._history_step(body, Document.undo)

    def api_redo(self, body) -> dict:
        return self._history_step(body, Document.redo)

    def _history_step(self, body, step: Callable[[Document], None]) -> dict:
        """Undo or redo: nothing left to step to is a conflict (409), not a bad request."""
        doc = self.doc(body.get("file"))
        try:
            step(doc)
        except EditError as exc:
            raise ApiError(409, str(exc)) from None
        return self.state(doc)

    def api_preview(self, body) -> dict:
        doc = self.doc(body.get("file"))
        return preview(self.root, self.catalog, doc.file, doc.text)

    def api_reload(self, body) -> dict:
        """Drop the edits and read the file as it is on disk now (the way out of a conflict)."""
        file = body.get("file")
        self.path_of(file)
        self.docs.pop(file, None)
        return self.state(self.doc(file))

    def api_diff(self, body) -> dict:
        """What Save would write, shown before anything is written: the YAML diff (file on disk -> this text)
        and the rendered DAG's diff (the DAG the file on disk renders to -> the one this text renders to,
        i.e. what `make render` changes in dags/). `text_sha` is what Save/Commit must send back to confirm."""
        doc = self.doc(body.get("file"))
        on_disk = self._read(self.path_of(doc.file))
        old_dag = preview(self.root, self.catalog, doc.file, on_disk) if on_disk is not None else None
        new_dag = preview(self.root, self.catalog, doc.file, doc.text)
        old_name = (old_dag or {}).get("dag_file") or "/dev/null"
        new_name = new_dag.get("dag_file") or "/dev/null"
        return {
            "file": doc.file, "text_sha": sha256(doc.text), "new": on_disk is None,
            "yaml_diff": unified(on_disk or "", doc.text, doc.file if on_disk is not None else "/dev/null", doc.file),
            "dag_file": new_dag.get("dag_file"), "old_dag_file": (old_dag or {}).get("dag_file"),
            "dag_diff": unified((old_dag or {}).get("python") or "", new_dag.get("python") or "", old_name, new_name),
            "dag_problems": new_dag.get("problems") or [],
            "valid": not new_dag.get("problems"),
        }

    def _confirmed(self, doc: Document, body: dict) -> None:
        """Save and Commit write only the text whose diff the user confirmed (api_diff's text_sha)."""
        want = body.get("text_sha")
        if want is not None and want != sha256(doc.text):
            raise ApiError(409, f"{doc.file} changed since its diff was shown: nothing was written "
                                "(look at the new diff and confirm again)", stale_diff=True)

    def _check_writable(self, doc: Document, body: dict) -> tuple[Path, str | None, dict]:
        """The checks before a write (Save or Commit): the confirmed text, the conflict check, validity."""
        self._confirmed(doc, body)
        path = self.path_of(doc.file)
        on_disk = self._read(path)
        if on_disk is not None and (doc.base_sha is None or sha256(on_disk) != doc.base_sha):
            raise ApiError(409, f"{doc.file} changed on disk since it was opened: nothing was written "
                                "(reload it to take the file as it is, or copy your text out first)",
                           conflict=True, disk_text=on_disk)
        if on_disk is None and doc.base_sha is not None:
            raise ApiError(409, f"{doc.file} was deleted on disk since it was opened: nothing was written",
                           conflict=True, disk_text=None)
        result = analyze(self.root, self.catalog, doc.file, doc.text)
        if not result["valid"] and body.get("draft") is not True:
            first = result["problems"][0]["text"] if result["problems"] else "invalid"
            raise ApiError(422, f"not saved: {len(result['problems'])} problem(s), first: {first} "
                                "(fix them, or Save draft to write it anyway)", problems=result["problems"])
        return path, on_disk, result

    def _write(self, doc: Document, path: Path, on_disk: str | None) -> None:
        tmp = path.with_name(f".{path.name}.studio-{os.getpid()}.tmp")
        with open(tmp, "x", encoding="utf-8", newline="") as f:
            f.write(doc.text)
        if on_disk is None:
            try:
                os.link(tmp, path)  # create, never replace: a file that appeared meanwhile is kept
            except FileExistsError:
                raise ApiError(409, f"{doc.file} appeared on disk meanwhile: nothing was written",
                               conflict=True) from None
            finally:
                tmp.unlink()
        else:
            os.replace(tmp, path)
        doc.base_sha = sha256(doc.text)

    def api_save(self, body) -> dict:
        doc = self.doc(body.get("file"))
        path, on_disk, result = self._check_writable(doc, body)
        self._write(doc, path, on_disk)
        out = self.state(doc)
        out["saved"] = "draft" if not result["valid"] else "valid"
        return out

    def api_commit(self, body) -> dict:
        """Save, then commit that file alone on the branch the user names (created from HEAD; the default
        branch only with allow_default; never pushed). Other changes in the checkout are left as they are."""
        from ..errors import StudioError
        from . import commit

        doc = self.doc(body.get("file"))
        path, on_disk, result = self._check_writable(doc, body)
        message = body.get("message")
        try:
            plan = commit.plan(self.root, path, doc.text, body.get("branch"), message,
                               allow_default=body.get("allow_default") is True)
            done = commit.commit(plan, message, lambda: self._write(doc, path, on_disk))
        except StudioError as exc:
            raise ApiError(400, exc.one_line()) from None
        out = self.state(doc)
        out["saved"] = "draft" if not result["valid"] else "valid"
        outside = [p for p in done.untouched if not p.startswith("pipelines/")]
        out["committed"] = {"branch": done.branch, "commit": done.commit, "created": done.created,
                            "untouched": done.untouched, "untouched_outside_pipelines": outside}
        return out
    # -- runs on the local stack (runs.py) ---------------------------------------------------------
    def _dag_id(self, file) -> str:
        self.path_of(file)
        doc = self.docs.get(file)
        text = doc.text if doc else self._read(self.root / file)
        if text is None:
            raise ApiError(404, f"{file} does not exist")
        dag = analyze(self.root, self.catalog, file, text)["dag"] or {}
        if not isinstance(dag.get("name"), str):
            raise ApiError(422, f"{file} has no dag.name")
        return dag["name"]

    def api_run_start(self, body) -> dict:
        """Render, validate and deploy to `local`, start the stack if needed, trigger the DAG (in the
        background: the page polls run-status). An invalid or unsaved pipeline is refused, nothing deployed."""
        doc = self.doc(body.get("file"))
        result = analyze(self.root, self.catalog, doc.file, doc.text)
        if not result["valid"]:
            first = result["problems"][0]["text"] if result["problems"] else "invalid"
            raise ApiError(422, f"not run: {len(result['problems'])} problem(s), first: {first} "
                                "(nothing was deployed)", problems=result["problems"])
        if doc.dirty or doc.base_sha is None:
            raise ApiError(409, f"{doc.file} has unsaved edits: save it first (a run deploys the saved file)")
        conf = body.get("conf") or {}
        if not isinstance(conf, dict):
            raise ApiError(400, "conf must be an object of run parameters")
        job = self.runner.start(doc.file, result["dag"]["name"], conf)
        return {"stage": job.stage, "progress": list(job.progress)}

    def api_run_status(self, body) -> dict:
        file = body.get("file")
        return self.runner.status(file, self._dag_id(file))

    def api_run_log(self, body) -> dict:
        file = body.get("file")
        self.path_of(file)
        task, tn, mi = body.get("task_id"), body.get("try_number", 1), body.get("map_index", -1)
        if not isinstance(task, str) or not isinstance(tn, int) or not isinstance(mi, int):
            raise ApiError(400, "run-log needs task_id (string), try_number and map_index (integers)")
        return self.runner.log(file, task, tn, mi)


def unified(a: str, b: str, a_name: str, b_name: str) -> str:
    """A git-style unified diff of two texts ('' when equal)."""
    return "".join(difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                                        f"a/{a_name}" if a_name != "/dev/null" else a_name,
                                        f"b/{b_name}" if b_name != "/dev/null" else b_name, n=3))
