"""Bundles know their image (issue 38): what an image serves, and whether it serves a bundle.

An image says what its operator package serves in the label io.ml-platform.serves
(`ml_platform=<version> formats=<n>,<n>`), set by make build from operators/ml_platform; the build record and
the promotion record (deploy/<env>/image.json) keep it. A bundle's manifest records what its DAGs were rendered
for (ml_platform_version, pipeline_formats). The rule is ml_platform.bundle_format.image_problem: the same
one the bundle class applies in the image after the switch; make plan and make deploy apply it before.
"""

from __future__ import annotations

import re

from ml_platform import __version__
from ml_platform.bundle_format import SERVED_PIPELINE_FORMATS, image_problem

SERVES_LABEL = "io.ml-platform.serves"
_SERVES = re.compile(r"^ml_platform=(?P<version>[0-9A-Za-z.+-]+) formats=(?P<formats>\d+(,\d+)*)$")


def serves_label() -> str:
    """This repository's operator package, as the image built from it will serve (the build argument)."""
    return f"ml_platform={__version__} formats={','.join(map(str, SERVED_PIPELINE_FORMATS))}"


def parse_serves(label: str | None) -> tuple[str, tuple[int, ...]] | None:
    m = _SERVES.match(label or "")
    if not m:
        return None
    return m.group("version"), tuple(int(x) for x in m.group("formats").split(","))


def serves_problem(needs: dict, label: str | None) -> tuple[bool, str | None]:
    """(known, problem): whether the image's label says what it serves, and why it cannot serve `needs`."""
    parsed = parse_serves(label)
    if parsed is None:
        return False, None
    version, formats = parsed
    return True, image_problem(needs, served_formats=formats, ml_platform_version=version)
