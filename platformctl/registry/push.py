"""Push a built image through the container engine, count the bytes uploaded, verify the digest.

The engine uploads only layers the registry does not have (so a re-push uploads 0 bytes) and puts
the manifest (the tag) last: an interrupted push leaves no tag pointing at a partial image. When the
engine starts its own slow retry loop ("Retrying in N seconds") the attempt is aborted and retried
here with a short backoff instead.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Callable

from ..engine import ContainerEngine, connect
from .auth import Credentials
from ..errors import RegistryError, RegistryUnavailable
from .skopeo import classify, with_retries
from ..output import say

Progress = Callable[[str, int], None]  # (tag, bytes uploaded so far)


@dataclass
class PushResult:
    repository: str
    digest: str
    tags: list[str]
    bytes_uploaded: int
    layers_uploaded: int
    layers_reused: int
    seconds: float
    per_tag: dict[str, str] = field(default_factory=dict)


def _push_tag(engine: ContainerEngine, repository: str, tag: str, creds: Credentials | None,
              progress: Progress | None) -> dict:
    sent: dict[str, int] = {}
    status: dict[str, str] = {}
    digest = None
    # closing the event stream closes the engine connection, which cancels an engine-side push still in progress
    with closing(engine.push(repository, tag, creds.for_registry(repository) if creds else None)) as events:
        for ev in events:
            if ev.error is not None:
                raise classify(ev.error, f"push {repository}:{tag}")
            st, lid = ev.status, ev.layer
            if lid:
                status[lid] = st
                if st == "Pushing":
                    sent[lid] = max(sent.get(lid, 0), ev.current)
                    if progress:
                        progress(tag, sum(sent.values()))
                elif st.startswith("Retrying in"):
                    raise RegistryUnavailable(f"push {repository}:{tag}: upload of layer {lid} failed ({st})",
                                              "check the registry is up, then make push again")
            if ev.digest:
                digest = ev.digest
    if not digest:
        raise RegistryUnavailable(f"push {repository}:{tag}: the engine reported no digest", "run make push again")
    pushed = [lid for lid, st in status.items() if st == "Pushed"]
    reused = [lid for lid, st in status.items() if st in ("Layer already exists",) or st.startswith("Mounted from")]
    return {"digest": digest, "bytes": sum(sent.get(lid, 0) for lid in pushed),
            "uploaded": set(pushed), "reused": set(reused)}


def push_image(image: str, repository: str, tags: list[str], creds: Credentials | None, *,
               attempts: int = 4, base_delay: float = 1.0, progress: Progress | None = None,
               echo=say, engine: ContainerEngine | None = None) -> PushResult:
    """Tag the local image `image` as repository:<tag> for every tag and push them, first tag first
    (engine: the one to push with; by default the local Docker engine, not probed)."""
    engine = engine or connect()
    for t in tags:
        engine.tag(image, f"{repository}:{t}")
    t0 = time.perf_counter()
    total_bytes, uploaded, reused = 0, set(), set()
    digest = None
    per_tag: dict[str, str] = {}
    for t in tags:
        r = with_retries(lambda t=t: _push_tag(engine, repository, t, creds, progress),
                         attempts=attempts, base_delay=base_delay, echo=echo)
        if digest and r["digest"] != digest:
            raise RegistryError(f"{repository}:{t} was stored as {r['digest']}, not {digest}",
                                "the registry rewrote the manifest: check its configuration")
        digest = r["digest"]
        per_tag[t] = r["digest"]
        total_bytes += r["bytes"]
        uploaded |= r["uploaded"]
        reused |= r["reused"]
    return PushResult(repository, digest or "", list(tags), total_bytes, len(uploaded), len(reused - uploaded),
                      round(time.perf_counter() - t0, 2), per_tag)
