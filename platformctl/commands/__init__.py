"""One module per command group; each has `register(subparsers)` and handlers `(root, args) -> int`.

To add a command: write platformctl/commands/<name>.py with register() and list each command it registers in
COMMANDS (a unit test checks the table against what the modules register).
"""

# command -> the module registering it: a run imports that module only (each pulls in its own libraries;
# `history` and `audit` start ~0.3 s sooner without the modules before theirs)
COMMANDS = {
    "doctor": "doctor",
    "lock": "lock", "lock-check": "lock",
    "render": "render", "render-check": "render",
    "build": "build", "test": "build",
    "schema": "schema",
    "deploy": "deploy", "rollback": "deploy", "gc": "deploy", "history": "deploy", "signing-key": "deploy",
    "up": "stack", "down": "stack", "run": "stack",
    "push": "registry", "release": "registry", "promote": "registry",
    "studio": "studio", "studio-assets": "studio", "studio-assets-check": "studio",
    "plan": "plan",
    "status": "status", "diff": "status",
    "migrate": "migrate",
    "docs": "docs", "docs-check": "docs",
    "upgrade-test": "upgrade",
    "verify-reproducible": "reproducible",
    "audit": "supply", "sbom": "supply", "verify-image": "supply", "image-key": "supply",
}

# the modules, in the order their commands are listed above (every module registers at least one)
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))
