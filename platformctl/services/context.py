"""What every command starts from: the repository root, the overrides (environment variables and --set),
and the configuration, each worked out once per run and only when first needed (the CLI makes one Context
and hands it to the command; services take the PlatformConfig itself)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on first use: the CLI makes a Context for every command, even those without one
    from ..config import PlatformConfig


@dataclass
class Context:
    root: Path
    sets: list[str] = field(default_factory=list)  # --set KEY=VALUE, as given

    @cached_property
    def overrides(self) -> dict[str, Any]:
        from ..config import collect_overrides

        return collect_overrides(self.sets)

    @cached_property
    def config(self) -> PlatformConfig:
        """platform.yaml + .platform/local.yaml + the environment + --set, validated (read on first use:
        commands that need no configuration never read it)."""
        from ..config import load_config

        return load_config(self.root, self.overrides)

    def config_with_sources(self) -> tuple[PlatformConfig, dict[str, str]]:
        """The configuration and where each value not from platform.yaml came from (make doctor)."""
        from ..config import load_config_with_sources

        cfg, sources = load_config_with_sources(self.root, self.overrides)
        self.__dict__.setdefault("config", cfg)
        return self.config, sources


def context_of(root: Path, args) -> Context:
    """The Context the CLI attached to args, else a new one (a handler called directly, e.g. by a test)."""
    ctx = getattr(args, "context", None)
    if isinstance(ctx, Context) and ctx.root == root:
        return ctx
    return Context(root, list(getattr(args, "sets", None) or []))
