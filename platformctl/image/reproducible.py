"""make verify-reproducible: build the committed tree again with no cache and compare it with what was built
(the build record's image, or a pushed image: REF=). The same commit and locks must give the same image id
and layer digests; when they do not, the report names the first differing layer (and the Dockerfile step
that made it) and the first differing files in it: path, size, mtime, mode, owner and content hash.

Images are compared as OCI layouts written by the engine's own tools (`podman save --format oci-dir` for a
local image, `skopeo copy` for a registry's), layer tars read with the standard library's tarfile.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import git
from ..engine import ContainerEngine
from ..engine.podman import engine_env
from ..errors import EngineError, NotReproducible, ReproducibleRefused
from ..record import BuildRecord

MAX_FILES = 10  # differing files named in the report


@dataclass(frozen=True)
class Entry:
    """One member of a layer tar, as the comparison sees it."""

    path: str
    kind: str  # file, dir, symlink, hardlink, other
    size: int
    mtime: int
    mode: str
    owner: str
    content: str  # sha256 of a file's bytes, a link's target, "" otherwise

    def differs(self, other: Entry) -> list[str]:
        return [f"{k} {getattr(self, k)} != {getattr(other, k)}"
                for k in ("kind", "size", "mtime", "mode", "owner", "content") if getattr(self, k) != getattr(other, k)]


@dataclass(frozen=True)
class FileDiff:
    path: str
    what: str  # "only in the expected image", "only in the rebuild", or the differing attributes


@dataclass
class LayerDiff:
    index: int  # 0-based among the image's layers
    expected: str | None  # diff id (sha256 of the uncompressed tar)
    actual: str | None
    step: str = ""  # the Dockerfile instruction that made it (image history)
    files: list[FileDiff] = field(default_factory=list)
    more: int = 0  # differing files beyond the ones listed

    def line(self) -> str:
        head = f"layer {self.index + 1} differs" + (f" ({self.step[:100]})" if self.step else "")
        if not self.files:
            return head
        shown = "; ".join(f"{f.path}: {f.what}" for f in self.files)
        return f"{head}: {shown}" + (f" (+{self.more} more)" if self.more else "")


@dataclass
class ReproResult:
    expected_id: str | None
    actual_id: str
    expected_layers: list[str]
    actual_layers: list[str]
    first: LayerDiff | None = None
    config_only: bool = False  # the layers agree, the image config (labels, env, created...) does not

    @property
    def same(self) -> bool:
        return self.first is None and not self.config_only


def _run(cmd: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=engine_env(), timeout=timeout)


def export_local(engine: ContainerEngine, ref: str, dest: Path) -> Path:
    """ref (a local image) as an OCI layout in dest, uncompressed layers."""
    return engine.save_oci_layout(ref, dest)


def export_remote(ref: str, dest: Path) -> Path:
    """A registry's image (REF=) as an OCI layout in dest, through skopeo."""
    host = ref.split("/", 1)[0]
    tls = ["--src-tls-verify=false"] if host.startswith(("127.", "localhost")) else []
    p = _run(["skopeo", "copy", *tls, f"docker://{ref}", f"oci:{dest}"])
    if p.returncode:
        raise EngineError(f"skopeo copy docker://{ref} failed: {p.stderr.strip()[-300:]}",
                          "check REF= (a pushed image: repository:tag or repository@sha256:...)")
    return dest


def _blob(layout: Path, digest: str) -> Path:
    algo, hexd = digest.split(":", 1)
    return layout / "blobs" / algo / hexd


def read_layout(layout: Path) -> tuple[dict, dict]:
    """(manifest, config) of the one image in an OCI layout."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]).read_text())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_text())
    return manifest, config


def layer_steps(config: dict) -> list[str]:
    """The Dockerfile instruction behind each layer (history entries that made no layer are skipped)."""
    return [h.get("created_by", "") for h in config.get("history", []) if not h.get("empty_layer")]


def entries(tar_path: Path) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    with tarfile.open(tar_path, "r:*") as tf:
        for m in tf:
            kind = ("file" if m.isreg() else "dir" if m.isdir() else "symlink" if m.issym()
                    else "hardlink" if m.islnk() else "other")
            content = ""
            if m.isreg():
                h = hashlib.sha256()
                f = tf.extractfile(m)
                assert f is not None
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
                content = h.hexdigest()[:16]
            elif m.issym() or m.islnk():
                content = m.linkname
            path = "/" + m.name.lstrip("./")
            # permission bits only: Go's tar writer also stores the type bits in the mode field, Python's does not
            out[path] = Entry(path, kind, m.size, int(m.mtime), oct(m.mode & 0o7777), f"{m.uid}:{m.gid}", content)
    return out


def diff_files(expected: dict[str, Entry], actual: dict[str, Entry]) -> list[FileDiff]:
    out: list[FileDiff] = []
    for path in sorted(expected.keys() | actual.keys()):
        e, a = expected.get(path), actual.get(path)
        if e is None:
            out.append(FileDiff(path, "only in the rebuild"))
        elif a is None:
            out.append(FileDiff(path, "only in the expected image"))
        elif d := e.differs(a):
            out.append(FileDiff(path, ", ".join(d)))
    return out


def compare_layouts(expected: Path, actual: Path, expected_id: str | None = None, actual_id: str = "") -> ReproResult:
    em, ec = read_layout(expected)
    am, ac = read_layout(actual)
    el, al = ec["rootfs"]["diff_ids"], ac["rootfs"]["diff_ids"]
    result = ReproResult(expected_id, actual_id, el, al)
    steps = layer_steps(ac)
    for i in range(max(len(el), len(al))):
        e = el[i] if i < len(el) else None
        a = al[i] if i < len(al) else None
        if e == a:
            continue
        ld = LayerDiff(i, e, a, steps[i] if i < len(steps) else "")
        if e and a:
            files = diff_files(entries(_blob(expected, em["layers"][i]["digest"])),
                               entries(_blob(actual, am["layers"][i]["digest"])))
            ld.files, ld.more = files[:MAX_FILES], max(0, len(files) - MAX_FILES)
        result.first = ld
        return result
    strip = lambda c: {k: v for k, v in c.items() if k != "history"}  # noqa: E731
    result.config_only = strip(ec) != strip(ac) or expected_id not in (None, actual_id)
    return result


def refuse_unless_clean(root: Path, engine: ContainerEngine) -> None:
    if engine.name != "podman":
        raise ReproducibleRefused(
            f"make verify-reproducible needs the podman engine; image.engine is {engine.name}: Docker 20.10's "
            "BuildKit ignores SOURCE_DATE_EPOCH, so the same commit never gives the same image id with it",
            "run make verify-reproducible ENGINE=podman (docs/image.md)")
    if git.dirty(root):
        raise ReproducibleRefused(
            "the working tree has uncommitted changes: a rebuild of it says nothing about any commit",
            "commit or stash them (git status), then run make verify-reproducible again")


def compare(engine: ContainerEngine, expected_ref: str, actual_ref: str, *, remote: bool = False,
            expected_id: str | None = None, actual_id: str = "") -> ReproResult:
    with tempfile.TemporaryDirectory(prefix="verify-repro-") as tmp:
        e = Path(tmp) / "expected"
        a = Path(tmp) / "actual"
        (export_remote if remote else lambda r, d: export_local(engine, r, d))(expected_ref, e)
        export_local(engine, actual_ref, a)
        return compare_layouts(e, a, expected_id, actual_id)


def expected_from_record(root: Path) -> tuple[str, str]:
    record = BuildRecord.load(root)
    if record is None or not record.image_id:
        raise ReproducibleRefused("no build record to compare with (build/build-record.json)",
                                  "run make build ENGINE=podman first, or give REF=<pushed image>")
    head = git.head(root)
    if record.revision and head and record.revision != head:
        raise ReproducibleRefused(f"the build record is of commit {record.revision[:12]}, HEAD is {head[:12]}",
                                  "run make build ENGINE=podman on this commit first, or give REF=<pushed image>")
    return record.image_id, record.image_id


def report_error(result: ReproResult) -> NotReproducible:
    if result.first is not None:
        return NotReproducible(f"the rebuild is not the same image: {result.first.line()}",
                               "see docs/image.md (reproducible builds) for the usual causes: a clock written at "
                               "install time, timestamp bytecode, an unpinned download")
    return NotReproducible(f"the rebuild has the same layers but another image config ({result.actual_id[:19]} != "
                           f"{(result.expected_id or '')[:19]})",
                           "compare the two images' labels and environment (podman image inspect)")


def cleanup(engine: ContainerEngine, ref: str) -> None:
    engine.remove_image(ref)


__all__ = ["ReproResult", "compare", "compare_layouts", "diff_files", "entries", "expected_from_record",
           "refuse_unless_clean", "report_error"]


def verify_reproducible(root: Path, cfg, engine: ContainerEngine, *, ref: str | None = None,
                        echo: bool = True) -> ReproResult:
    """Build HEAD again with no cache and compare it with the build record's image (or `ref`, a pushed one).
    Raises ReproducibleRefused before building (wrong engine, dirty tree, no record of HEAD)."""
    from dataclasses import replace

    from .build import build_plan
    from .uv_image import ensure_local

    refuse_unless_clean(root, engine)
    expected_ref, expected_id = (ref, None) if ref else expected_from_record(root)
    spec, vinfo, _ = build_plan(root, cfg, engine)
    spec = replace(spec, tags=(f"{cfg.image.name}:verify-{vinfo.short}",), no_cache=True)
    if spec.build_args.get("UV_IMAGE"):
        ensure_local(root, engine, spec.build_args["UV_IMAGE"], spec, echo=echo)
    actual_id = engine.build(spec, root / "build" / "verify-reproducible.log", echo=echo)
    try:
        layers = (engine.inspect(actual_id).get("RootFS") or {}).get("Layers") or []
        if expected_id is not None and actual_id == expected_id:
            return ReproResult(expected_id, actual_id, layers, layers)
        return compare(engine, expected_ref, actual_id, remote=ref is not None, expected_id=expected_id,
                       actual_id=actual_id)
    finally:
        cleanup(engine, spec.tags[0])
