"""Property-style: random mutations of every shipped YAML file a user edits (bytes flipped, truncated,
keys renamed, huge or odd numbers, lines duplicated or dropped) never give a traceback, a hang, or a write
outside the repository. hypothesis is not in the locks: a seeded random loop with a bounded count, so a
failure is reproduced by its seed (printed in the assertion).

In process (fast): each mutated file goes through the loader that reads it, and a valid pipeline is
also rendered; the only exceptions allowed are the typed one-line errors. Then a few mutated files per
kind through the real CLI (`render`, `deploy --env`), watching the directory around the repository."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ml_platform import flavors as flavor_mod
from ml_platform.errors import PlatformConfigError
from platformctl.config import load_config
from platformctl.environments import load_environment
from platformctl.errors import PlatformError
from platformctl.pipelines.render import render_one
from platformctl.pipelines.validate import check

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("MUTATION_SEED", "20"))
PER_FILE = int(os.environ.get("MUTATIONS_PER_FILE", "60"))
SLOW = 5.0  # seconds: a "hang"

ODD_VALUES = ["true", "null", "-1", "0", "1e400", "-.inf", ".nan", "9" * 5000, "100000000000000000000",
              "0x7fffffffffffffff", "2025-13-45", "'\\x00'", "&a x", "*a", "!!python/object:os.system x",
              "[" * 40, "{a: " * 40, "~", "''", "\"\\ud800\"", "1" * 300 + "Ti", "0.0000001m"]


def shipped() -> list[Path]:
    files = [ROOT / "platform.yaml", ROOT / "flavors.yaml"]
    files += sorted((ROOT / "environments").glob("*.yaml")) + sorted((ROOT / "pipelines").glob("*.yaml"))
    return files


def mutate(raw: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["flip", "truncate", "rename", "number", "value", "dup", "drop", "insert"])
    if kind == "flip":
        b = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] = rng.choice([b[i] ^ (1 << rng.randrange(8)), rng.randrange(256)])
        return bytes(b)
    if kind == "truncate":
        return raw[:rng.randrange(len(raw))]
    text = raw.decode()
    lines = text.splitlines(keepends=True)
    if kind == "rename":
        keys = re.findall(r"^\s*([A-Za-z_][\w-]*):", text, re.M)
        if keys:
            k = rng.choice(keys)
            text = text.replace(f"{k}:", f"{rng.choice([k[:-1], k + 'x', k.upper(), '1', 'true', k * 3])}:", 1)
        return text.encode()
    if kind in ("number", "value"):
        targets = list(re.finditer(r"\b\d+(\.\d+)?\w*" if kind == "number" else r":\s+([^\s#{][^\n#]*)", text))
        if targets:
            m = rng.choice(targets)
            start, end = (m.span() if kind == "number" else m.span(1))
            text = text[:start] + rng.choice(ODD_VALUES) + text[end:]
        return text.encode("utf-8", "surrogatepass")
    i = rng.randrange(len(lines))
    if kind == "dup":
        lines.insert(i, lines[i] * rng.choice([1, 2, 50]))
    elif kind == "drop":
        del lines[i]
    else:
        lines.insert(i, rng.choice(["  " * rng.randint(0, 6), "\t", "---\n", "...\n", "? x\n"]) + lines[i])
    return "".join(lines).encode()


def load_one(repo: Path, rel: str) -> None:
    """Read the file at repo/rel as the platform does; only typed errors may come out."""
    if rel == "platform.yaml":
        load_config(repo, {})
    elif rel == "flavors.yaml":
        flavor_mod._CACHE.clear()
        try:
            flavor_mod.load_catalog(repo / rel)
        except PlatformConfigError as exc:
            assert "\n" not in str(exc), str(exc)
    elif rel.startswith("environments/"):
        load_environment(repo, Path(rel).stem)
    else:
        c = check(rel, (repo / rel).read_bytes(), ["cpu-small", "cpu-medium", "cpu-large", "mem-large", "gpu-a100"])
        if c.pipeline is not None:
            render_one(c, ROOT / "templates" / "dag.py.j2")
        for p in c.problems:
            assert "\n" not in str(p), str(p)


@pytest.mark.parametrize("src", shipped(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_random_mutations_never_crash_or_hang(tmp_path, src):
    rel = src.relative_to(ROOT).as_posix()
    repo = tmp_path / "repo"
    (repo / Path(rel).parent).mkdir(parents=True, exist_ok=True)
    original = src.read_bytes()
    rng = random.Random(f"{SEED}:{rel}")
    for n in range(PER_FILE):
        data = mutate(original, rng)
        (repo / rel).write_bytes(data)
        t0 = time.perf_counter()
        try:
            load_one(repo, rel)
        except PlatformError as exc:
            assert "\n" not in exc.one_line(), exc.one_line()
        except Exception as exc:  # noqa: BLE001 - the property: nothing else escapes
            (tmp_path / "failing.yaml").write_bytes(data)
            pytest.fail(f"seed {SEED}, {rel} mutation {n}: {type(exc).__name__}: {exc} "
                        f"(input kept in {tmp_path / 'failing.yaml'})")
        took = time.perf_counter() - t0
        assert took < SLOW, f"seed {SEED}, {rel} mutation {n}: {took:.1f} s"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def listing(base: Path) -> set[str]:
    return {os.path.join(d, n) for d, ds, fs in os.walk(base) for n in ds + fs}


@pytest.mark.parametrize("rel,command", [
    ("pipelines/churn_model.yaml", ("render",)),
    ("environments/dev.yaml", ("deploy", "--env", "dev")),
    ("flavors.yaml", ("render",)),
])
def test_mutated_files_through_the_cli_give_one_typed_line(tmp_path, rel, command):
    """Fewer cases (each is a process): exit 0 or a typed code, no traceback, nothing written outside."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("platform.yaml", "flavors.yaml", "templates", "pipelines", "environments"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / name)
    original = (ROOT / rel).read_bytes()
    rng = random.Random(f"{SEED}:cli:{rel}")
    outside = listing(tmp_path.parent) - listing(repo)
    env = {k: v for k, v in os.environ.items() if k not in ("ML_PLATFORM_FLAVORS", "PYTHON", "BASE_IMAGE")}
    env["PLATFORM_ROOT"] = str(repo)
    for n in range(4):
        (repo / rel).write_bytes(mutate(original, rng))
        p = subprocess.run([sys.executable, str(ROOT / "build.py"), *command], capture_output=True, text=True,
                           env=env, cwd=repo, timeout=120)
        assert "Traceback" not in p.stderr, (n, p.stderr)
        assert p.returncode in (0, 2, 11, 13, 14, 20, 22), (n, p.returncode, p.stderr)
        if p.returncode not in (0, 11):  # 11: one line per pipeline problem, then the summary
            assert len(p.stderr.strip().splitlines()) == 1, (n, p.stderr)
    assert listing(tmp_path.parent) - listing(repo) == outside
