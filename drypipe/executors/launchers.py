"""The launchers of an instance still running after its orchestrator died, found in /proc
(scheduler/recovery.py re-attaches them): a launcher is a fork of its spawner, whose command line
ends with `drypipe-spawner <runtime>`, and its working dir names its task."""
from __future__ import annotations

import os
import time


def _proc_table(runtime: str) -> list[tuple[int, int, int, str | None]]:
    """(pid, pgid, sid, cwd) of the processes forked from spawners of this runtime.

    A forked subshell keeps its parent's command line, which ends with
    `drypipe-spawner <runtime>`: that marks the spawners and the launchers of one instance."""
    tail = b"\0drypipe-spawner\0" + os.fsencode(runtime) + b"\0"
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if not f.read().endswith(tail):
                    continue
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            try:
                cwd = os.readlink(f"/proc/{name}/cwd")
            except OSError:
                cwd = None
            out.append((int(name), int(fields[2]), int(fields[3]), cwd))
        except (OSError, IndexError, ValueError):
            continue
    return out


def running_launchers(instance_dir: str, runtime: str, timeout: float = 10.0) -> dict[str, int]:
    """Task key -> pid of the launchers of this instance still running (after a crash).

    First waits for the spawners of earlier orchestrators to exit: they fork what they were
    sent before their orchestrator died, then read EOF. A launcher leads its own process group
    (not its session, which is its spawner's); its working dir names its task (its task dir,
    then its output dir). One that has not entered its task dir yet is waited for."""
    real = os.path.realpath(instance_dir)
    prefixes = (os.path.join(real, ".drypipe", ""), os.path.join(real, "output", ""))
    deadline = time.monotonic() + timeout
    while True:
        table = _proc_table(runtime)
        spawners = [p for p, pgid, sid, _ in table if sid == p]
        launchers, undecided = {}, False
        for pid, pgid, sid, cwd in table:
            if pgid != pid or sid == pid:
                continue
            key = None
            for prefix in prefixes:
                if cwd and cwd.startswith(prefix):
                    key = cwd[len(prefix):].split("/", 1)[0]
            if key is None:
                undecided = True
            else:
                launchers[key] = pid
        if (not spawners and not undecided) or time.monotonic() > deadline:
            return launchers
        time.sleep(0.02)  # a forked launcher enters its task dir within milliseconds


def is_launcher_alive(pid: int, task_dir: str) -> bool:
    """Is pid a live launcher of the task whose dir is task_dir (and not a recycled pid)?

    A launcher's working dir is its task dir or the task's output dir."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return False
    instance_dir, key = os.path.dirname(os.path.dirname(task_dir)), os.path.basename(task_dir)
    return cwd in (os.path.realpath(task_dir), os.path.realpath(os.path.join(instance_dir, "output", key)))
