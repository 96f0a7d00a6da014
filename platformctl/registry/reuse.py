"""`make build` skips the build when the registry already has an image with the same inputs.

`make push` tags every pushed build `inputs-<fingerprint>`. A later build whose inputs fingerprint
matches (same Dockerfile, context files, locks, build args and base image) tags that image with the
new version and sha instead of rebuilding, and pulls it only if this engine does not have it. The
registry is not trusted: the adopted image is tested here (make build's image tests) before any new
tag points at it, and its build record says so (tested_here).
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import PlatformConfig
from ..engine import ContainerEngine
from ..record import inputs_tag
from .auth import Credentials, authfile
from ..errors import RegistryError, RegistryUnavailable
from .refs import build_tags
from .skopeo import Skopeo, classify
from ..output import say


def find(cfg: PlatformConfig, fingerprint: str, creds: Credentials | None, echo=say) -> dict | None:
    """The registry's image for these inputs ({digest, labels}), or None. Never fails the build."""
    repo = cfg.registry.repository
    try:
        with authfile(creds, repo) as auth:
            return Skopeo(authfile=auth, insecure_hosts=set(cfg.registry.insecure_hosts)).inspect(
                f"{repo}:{inputs_tag(fingerprint)}")
    except RegistryUnavailable:
        echo(f"registry {repo.split('/')[0]} not reachable: building without looking for a reusable image")
    except RegistryError as exc:
        echo(f"not looking for a reusable image: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - e.g. skopeo missing: building is always correct
        echo(f"not looking for a reusable image: {exc}")
    return None


def adopt(cfg: PlatformConfig, engine: ContainerEngine, hit: dict, version_tag: str, short_sha: str,
          local_tags: list[str], creds: Credentials | None, echo=say,
          verify: Callable[[str], bool] | None = None) -> tuple[str, list[str]]:
    """Make sure the engine has the registry image, tag it locally, then `verify(image id)` (the image
    tests, run here), and only if that returns True tag it in the registry with this build's tags.
    A registry image is never tagged on trust: nothing is copied when verify is None or returns False,
    and a failing verify raises before anything is copied. Returns (image id, registry tags copied)."""
    repo, digest = cfg.registry.repository, hit["digest"]
    ref = f"{repo}@{digest}"
    image_id = engine.image_id(ref)
    if image_id is None:
        echo(f"pulling {ref}")
        p = engine.pull(ref, timeout=None, auth=creds.for_registry(repo) if creds else None)
        if p.returncode != 0:
            raise classify(p.stderr or p.stdout, f"pull {ref}")
        image_id = engine.inspect(ref)["Id"]
    for t in local_tags:
        engine.tag(image_id, t)
    if verify is None or not verify(image_id):
        return image_id, []
    tags = build_tags(version_tag, short_sha)
    with authfile(creds, repo) as auth:
        sk = Skopeo(authfile=auth, insecure_hosts=set(cfg.registry.insecure_hosts))
        for t in tags:
            sk.copy(ref, f"{repo}:{t}")
    return image_id, tags
