"""`python -m drypipe` where only DryPipe itself is installed (the copy uploaded to a remote
instance, without click or SQLAlchemy): the one command that needs nothing else,
`task --from-remote --task-key K [-pid DIR]`, which runs an uploaded task's launcher."""
from __future__ import annotations

import os
import sys

USAGE = ("usage (remote runtime, without click): python -m drypipe task --from-remote "
         "--task-key KEY [--pipeline-instance-dir DIR]")


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "task" or "--from-remote" not in argv:
        print(f"drypipe: error: this DryPipe has only its remote runtime (no click); {USAGE}", file=sys.stderr)
        return 2
    instance_dir, key = os.environ.get("DRYPIPE_PIPELINE_INSTANCE_DIR", "."), None
    args = iter(argv[1:])
    for a in args:
        if a in ("--pipeline-instance-dir", "-pid", "--instance-dir", "--instance-directory"):
            instance_dir = next(args, instance_dir)
        elif a.startswith(("--pipeline-instance-dir=", "--instance-dir=", "--instance-directory=")):
            instance_dir = a.split("=", 1)[1]
        elif a in ("--task-key", "-k"):
            key = next(args, None)
        elif a.startswith("--task-key="):
            key = a.split("=", 1)[1]
    from ..dsl.task import check_key
    from ..errors import DryPipeError
    try:
        check_key(key)
    except DryPipeError as e:
        print(f"drypipe: error: {e}", file=sys.stderr)
        return 2
    script = os.path.join(instance_dir, ".drypipe", key, "task")
    if not os.path.exists(script):
        print(f"drypipe: error: task {key!r} was not uploaded to {instance_dir}", file=sys.stderr)
        return 2
    os.execvp("bash", ["bash", script, "run"])
    return 2
