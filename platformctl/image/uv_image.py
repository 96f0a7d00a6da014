"""The uv tools image: a scratch image with the uv binary at /uv, which the image build mounts.

Its layout is that of the official ghcr.io/astral-sh/uv images, so image.uv_image can name one of
those (or a mirror of it). By default it is made here from the hashed tools lock (Dockerfile target
uv-image: pip installs the pinned uv wheel on the base image), once per uv pin and base image, and kept
in the engine like the base image: a build that finds it does not bootstrap uv with pip (~2 s of every
build that starts without a build cache). uv is mounted, never copied: it is in no layer of the result.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from ..config import PlatformConfig
from ..errors import LockInputError
from ..lock import header as hdr
from ..lock.core import REQ_DIR, lock_filename
from ..lock.files import read_pins
from ..engine import BuildSpec, ContainerEngine
from ..output import say

LOCAL_NAME = "ml-platform-uv"
TARGET = "uv-image"


def uv_pin(root: Path, cfg: PlatformConfig) -> str:
    """The uv version pinned by the tools lock of the image's Python."""
    name = lock_filename("tools", cfg.image.python)
    path = root / REQ_DIR / name
    pin = read_pins(path.read_text()).get("uv") if path.exists() else None
    if not pin:
        raise LockInputError(f"{REQ_DIR}/{name}: no uv pin", "add uv to requirements/tools.in and run make lock")
    return pin


def local_tag(root: Path, cfg: PlatformConfig, base_id: str) -> str:
    """ml-platform-uv:<pin>-<id>: the id covers the tools lock (its hashes) and the base image it was made on
    (which decides the wheel's platform), so a new pin or base makes a new image, never a stale one."""
    body = hdr.split((root / REQ_DIR / lock_filename("tools", cfg.image.python)).read_text())[2]
    ident = hashlib.sha256(f"{hdr.body_fingerprint(body)}\n{base_id}".encode()).hexdigest()[:12]
    return f"{LOCAL_NAME}:{uv_pin(root, cfg)}-{ident}"


def uv_image_ref(root: Path, cfg: PlatformConfig, base_id: str | None) -> str | None:
    """The image the build mounts uv from; None = bootstrap uv inside the build (base image not local yet)."""
    if cfg.image.uv_image:
        return cfg.image.uv_image
    return local_tag(root, cfg, base_id) if base_id else None


def ensure_local(root: Path, engine: ContainerEngine, ref: str, spec: BuildSpec, echo: bool = True) -> bool:
    """Make the local uv image `ref` if the engine does not have it. Returns True when it was built."""
    if not ref.startswith(LOCAL_NAME + ":") or engine.image_id(ref):
        return False
    args = {k: spec.build_args[k] for k in ("BASE_IMAGE", "PY_TAG") if k in spec.build_args}
    uv_spec = BuildSpec(context=spec.context, dockerfile=spec.dockerfile, tags=(ref,), build_args=args,
                        secrets=spec.secrets, target=TARGET, platform=spec.platform)
    say(f"making the uv tools image {ref} from the tools lock (once per uv pin and base image)")
    t0 = time.perf_counter()
    engine.build(uv_spec, root / "build" / "uv-image.log", echo=echo)
    say(f"  {ref} made in {time.perf_counter() - t0:.1f}s")
    return True
