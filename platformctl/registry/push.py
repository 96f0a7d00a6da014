"""Push a built image through the Docker engine, count the bytes uploaded, verify the digest.

The engine uploads only layers the registry does not have (so a re-push uploads 0 bytes) and puts
the manifest (the tag) last: an interrupted push leaves no tag pointing at a partial image. When the
engine starts its own slow retry loop ("Retrying in N seconds") the attempt is aborted and retried
here with a short backoff instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import os

from ..errors import EngineError
from ..image.engine import START_HINT
from .auth import Credentials
from .errors import RegistryError, RegistryUnavailable
from .skopeo import classify, with_retries

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


def engine_client():
    """A Docker SDK API client for the engine at DOCKER_HOST (one per operation: closing it cancels)."""
    import docker  # the docker SDK: only the build side needs it

    try:
        return docker.APIClient(base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
                                version="auto")
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot reach the Docker engine: {exc}", START_HINT) from None


def _push_tag(repository: str, tag: str, creds: Credentials | None, progress: Progress | None) -> dict:
    api = engine_client()
    sent: dict[str, int] = {}
    status: dict[str, str] = {}
    digest = None
    try:
        stream = api.push(repository, tag=tag, stream=True, decode=True,
                          auth_config=creds.docker_auth() if creds else None)
        for msg in stream:
            if "errorDetail" in msg or "error" in msg:
                text = (msg.get("errorDetail") or {}).get("message") or msg.get("error") or "push failed"
                raise classify(text, f"push {repository}:{tag}")
            st, lid = msg.get("status", ""), msg.get("id")
            if lid:
                status[lid] = st
                if st == "Pushing":
                    sent[lid] = max(sent.get(lid, 0), int((msg.get("progressDetail") or {}).get("current") or 0))
                    if progress:
                        progress(tag, sum(sent.values()))
                elif st.startswith("Retrying in"):
                    raise RegistryUnavailable(f"push {repository}:{tag}: upload of layer {lid} failed ({st})",
                                              "check the registry is up, then make push again")
            if msg.get("aux", {}).get("Digest"):
                digest = msg["aux"]["Digest"]
    finally:
        api.close()  # closing the connection cancels an engine-side push still in progress
    if not digest:
        raise RegistryUnavailable(f"push {repository}:{tag}: the engine reported no digest", "run make push again")
    pushed = [lid for lid, st in status.items() if st == "Pushed"]
    reused = [lid for lid, st in status.items() if st in ("Layer already exists",) or st.startswith("Mounted from")]
    return {"digest": digest, "bytes": sum(sent.get(lid, 0) for lid in pushed),
            "uploaded": set(pushed), "reused": set(reused)}


def push_image(image: str, repository: str, tags: list[str], creds: Credentials | None, *,
               attempts: int = 4, base_delay: float = 1.0, progress: Progress | None = None,
               echo=print) -> PushResult:
    """Tag the local image `image` as repository:<tag> for every tag and push them, first tag first."""
    api = engine_client()
    try:
        for t in tags:
            api.tag(image, repository, t)
    finally:
        api.close()
    t0 = time.perf_counter()
    total_bytes, uploaded, reused = 0, set(), set()
    digest = None
    per_tag: dict[str, str] = {}
    for t in tags:
        r = with_retries(lambda t=t: _push_tag(repository, t, creds, progress),
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
