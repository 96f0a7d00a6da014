"""One module per command group; each has `register(subparsers)` and handlers `(root, args) -> int`.

To add a command: write platformctl/commands/<name>.py with register(), and list it here.
"""

COMMAND_MODULES = ["doctor", "lock", "render", "build", "schema", "deploy", "stack", "registry", "studio", "plan",
                   "status", "migrate", "docs", "upgrade", "reproducible", "supply"]
