"""Before the dev venv exists: can the host Python make one? (stdlib only: it runs with the system python3.)

Debian and Ubuntu ship `venv`/`ensurepip` apart from python3 (python3-venv). As root with apt, and unless
PLATFORM_NO_INSTALL=1, this installs it, announced on one line; otherwise it prints the exact command and
exits with the missing-tool code.

    python3 -m platformctl.host.venvcheck
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from ..errors import ToolMissingError  # stdlib-only, like this module
from ..output import say, warn

EXIT_CODE = ToolMissingError.exit_code


def has_venv() -> bool:
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> int:
    if has_venv():
        return 0
    pkg = f"python{sys.version_info[0]}.{sys.version_info[1]}-venv"
    allowed = os.environ.get("PLATFORM_NO_INSTALL", "").lower() not in {"1", "true", "yes"}
    if allowed and os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"setup: installing {pkg} with apt-get (the host Python cannot make a venv without it)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        ok = subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env).returncode == 0 and \
            subprocess.run(["apt-get", "install", "-y", "-q", pkg], capture_output=True, env=env).returncode == 0
        if ok and subprocess.run([sys.executable, "-c", "import ensurepip, venv"]).returncode == 0:
            return 0
        warn(f"error: apt-get install {pkg} failed (run it by hand to see why)")
        return EXIT_CODE
    if shutil.which("apt-get"):
        pre = "" if os.geteuid() == 0 else "sudo "
        fix = f"run: {pre}apt-get install -y {pkg}"
    else:
        fix = "install your OS's venv support for this Python, or point HOST_PYTHON= at a Python that has it"
    warn(f"error: {sys.executable} cannot make a virtual environment (no ensurepip/venv) ({fix})")
    return EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
