"""An environment's deploy ledger as a service (`make history`): its own module, so that the command imports
the environment, the store and the ledger, not the deploy machinery (rendering, signing, the image checks)."""

from __future__ import annotations

from pathlib import Path

from ..deploy.ledger import History, ledger_for
from ..deploy.store import open_store
from ..environments import Environment, load_environment


def history(root: Path, env: Environment | str, limit: int = 20) -> History:
    """The environment's deploy ledger, newest first: the newest `limit` entries (0: all)."""
    env = env if isinstance(env, Environment) else load_environment(root, env)
    return ledger_for(open_store(root, env), env).history(limit)
