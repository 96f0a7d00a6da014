"""`make plan ENV=<env> [VERSION=X.Y.Z]`: what deploy (or promote + deploy) would change; writes nothing."""

from __future__ import annotations

import json

from ..output import say, warn
from ..services import inspect
from ..services.context import context_of
from ..deploy.plan import lines


def cmd_plan(root, args) -> int:
    plan = inspect.plan(root, context_of(root, args).config, args.env, version=args.version,
                        resources=not args.no_resources, airflow_url=args.airflow_url)
    if args.json:
        say(json.dumps(plan.to_json(), indent=2, sort_keys=True))
    else:
        say("\n".join(lines(plan)))
    missing = plan.settings.get("missing", [])
    if missing:
        warn(f"error: plan for {plan.environment} refused: the instance lacks connection {', '.join(missing)} "
             f"(create it there, or change connections in environments/{plan.environment}.yaml)")
    elif plan.refused:
        warn(f"error: plan for {plan.environment} refused: deploy would refuse {len(plan.policy)} job(s)"
            + (f" ({plan.policy[0]['reason']})" if plan.policy else "")
            + "; change the pipelines or the environment's allowed lists")
    if args.fail_on == "refused" and not plan.refused:
        return 0  # GATE=refused: changes are expected (CI shows them), only a refusal fails the step
    return plan.exit_code


def register(sub) -> None:
    p = sub.add_parser("plan", help="show what make deploy ENV= (or promote VERSION=) would change; exit 0 none, "
                                    "50 changes, 51 refused")
    p.add_argument("--env", required=True, help="environment name (environments/<env>.yaml, or local)")
    p.add_argument("--version", default=None, help="plan make promote of release X.Y.Z, then deploy")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--fail-on", choices=("changes", "refused"), default="changes",
                   help="changes (default): exit 50 when something would change; refused: exit 0 then, "
                        "non-zero only when deploy would refuse (for CI, where make turns every failure into 2)")
    p.add_argument("--no-resources", action="store_true",
                   help="skip the per-job pods/limits (they need the image and a Docker engine)")
    p.add_argument("--airflow-url", default=None, help="read the instance's pools and connections from this "
                   "Airflow API (default: the environment's managed.api_url; local: the running local stack)")
    p.set_defaults(func=cmd_plan)
