"""The service layer: what each command does, as plain functions with typed arguments and results.

`platformctl/commands/<x>.py` only parses arguments, calls a service here and prints its result; a service
never imports `platformctl.commands` (tests/unit/services checks it), and services call each other (the
stack's `up` and `run` call `services.deploy.deploy`, with the configuration already loaded). Which image an
environment gets is deploy.images.environment_image (deploy and plan share it). Progress
lines a service prints while it works go through an `echo` callback (default: output.say).

    context.Context         the root, the --set overrides and the configuration, loaded once per command
    deploy                  deploy / rollback / gc -> DeployResult / RollbackResult / GcOutcome
    stack                   up / run / down -> UpResult / RunResult / DownResult
    build                   build / test -> BuildResult
    ship                    push / release / promote -> PushResult / ReleaseResult / PromoteResult
    inspect                 plan / status / diff (read-only) -> Plan / Status / dict
"""
