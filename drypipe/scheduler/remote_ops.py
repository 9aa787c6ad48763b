"""Remote operations by hand (the guide's remote commands), on one task or an array parent
whose TaskConf has ssh_specs: upload, start, fetch state, download."""
from __future__ import annotations

import os
import time

from ..conf import TaskConf
from ..errors import DryPipeError
from ..executors.remote import HostUnreachable
from ..executors.slurm import read_array_keys
from ..state import statefile
from ..state import states as S
from . import arrays, remote_tasks
from .materialize import DRYPIPE_ROOT, task_dir, upload_paths


def _remote_node(orch, key):
    n = orch.graph.nodes.get(key)
    if n is None:
        raise DryPipeError(f"no task {key!r} in {orch.instance_dir}")
    if not n.conf.is_remote:
        raise DryPipeError(f"task {key!r} does not run on a remote host (its TaskConf has no ssh_specs)")
    return n, orch.remote.host_for(n.conf)


def _ensure_materialized(orch, n) -> None:
    if not os.path.exists(os.path.join(task_dir(orch.instance_dir, n.key), "task")):
        if n.pending:
            raise DryPipeError(f"task {n.key!r} waits on upstream tasks: its inputs are not ready")
        orch.materializer.materialize(n, n.state_name, slurm=n.executer_type == "slurm")


def upload_task_inputs(orch, key: str) -> list[str]:
    """Send a task's launcher, the runtime and its input files to its host; the paths sent."""
    n, h = _remote_node(orch, key)
    _ensure_materialized(orch, n)
    extra = orch.remote.prepare_host(h, False, orch.materializer.code_dir, DRYPIPE_ROOT, "python3")
    paths = sorted(set(extra + [".drypipe/_runtime/task-runner.sh", f".drypipe/{key}/task",
                                *upload_paths(orch.instance_dir, n.spec)]))
    orch.remote.rsync(h, paths, upload=True)
    return paths


def upload_drypipe(orch, key: str) -> str:
    """Send the pipeline's code and DryPipe itself to the task's host (for python steps)."""
    n, h = _remote_node(orch, key)
    python = n.conf.python_bin or "python3"
    orch.remote.prepare_host(h, True, orch.materializer.code_dir, DRYPIPE_ROOT, python,
                             remote_tasks.packages([n]))
    return f"{h.spec.label}:{h.remote_dir}/.drypipe"


def remote_exec(orch, key: str, wait: bool) -> str:
    """Start a task on its host (as `drypipe run` would); with wait, until it ends."""
    n, h = _remote_node(orch, key)
    if n.state in S.ACTIVE:
        raise DryPipeError(f"task {key!r} is already running ({n.state_name})")
    orch.restart_tasks([key])
    orch.run_tasks([key], wait=wait)
    return n.state_name


def parse_remote_dest(dest: str) -> tuple[str, str]:
    """'USER@HOST:DIR' or 'USER@HOST:PORT:DIR' -> ('USER@HOST' or 'USER@HOST:PORT', 'DIR')."""
    if ":" not in dest or "@" not in dest.split(":")[0]:
        raise DryPipeError(f"--ssh-remote-dest {dest!r}: expected USER@HOST:DIR or USER@HOST:PORT:DIR")
    user_host, rdir = dest.rsplit(":", 1)
    return user_host, rdir


def default_ssh_key() -> str:
    """The ssh key of a remote destination given by hand: $DRYPIPE_SSH_KEY, else the first of
    ~/.ssh/id_ed25519, id_rsa, id_ecdsa that exists, else ~/.ssh/id_rsa."""
    return os.environ.get("DRYPIPE_SSH_KEY") or next(
        (p for p in (os.path.expanduser(f"~/.ssh/{n}") for n in ("id_ed25519", "id_rsa", "id_ecdsa"))
         if os.path.exists(p)), os.path.expanduser("~/.ssh/id_rsa"))


def exec_at_remote_dest(orch, key: str, dest: str, wait: bool = True) -> str:
    """Run a task on the host of `dest` (USER@HOST[:PORT]:DIR, in DIR/<instance>) as a plain
    process, whatever its TaskConf says, with the key of default_ssh_key(); with wait, until it
    ends. Returns its state name (its node's message says why it failed)."""
    user_host, rdir = parse_remote_dest(dest)
    ssh_key = default_ssh_key()
    n = orch.graph.nodes.get(key)
    if n is None:
        raise DryPipeError(f"no task {key!r} in {orch.instance_dir}")
    n.conf = TaskConf.from_dict({**n.conf.to_dict(), "ssh_specs": f"{user_host}:{ssh_key}",
                                 "remote_base_dir": rdir, "executer_type": "process"})
    orch.any_nonlocal = True
    return remote_exec(orch, key, wait=wait)


def fetch_remote_state(orch, key: str, wait: bool, timeout: float = 24 * 3600) -> str:
    """Poll a remote task's state (mirrored into the DB); ingest it when it has ended."""
    n, h = _remote_node(orch, key)
    if n.state not in S.ACTIVE:
        return n.state_name
    orch.remote.watch(key, n.job_id if n.executer_type == "slurm" else None, h)
    deadline = time.monotonic() + timeout
    while True:
        orch.remote.poll_now()
        remote_tasks.poll(orch)
        orch.store.flush()
        if n.state not in S.ACTIVE or not wait or time.monotonic() > deadline:
            return n.state_name
        time.sleep(max(1.0, orch.remote.next_poll_in()))  # polling a remote host: paced


def array_upload(orch, parent: str) -> int:
    """Upload an array parent's children (launchers, inputs) and its array dir to their host."""
    keys = [k for _, k, _ in arrays.children(orch, parent)]
    hosts = {id(_remote_node(orch, k)[1]): _remote_node(orch, k)[1] for k in keys}
    if len(hosts) != 1:
        raise DryPipeError(f"array {parent!r}: its children must all run on one remote host")
    h = next(iter(hosts.values()))
    extra = orch.remote.prepare_host(h, False, orch.materializer.code_dir, DRYPIPE_ROOT, "python3")
    paths = set(extra) | {".drypipe/_runtime/task-runner.sh", f".drypipe/{parent}/task-keys.tsv",
                          f".drypipe/{parent}/array.sh"}
    for k in keys:
        n = orch.graph.nodes[k]
        _ensure_materialized(orch, n)
        paths |= {f".drypipe/{k}/task", f".drypipe/{k}/sbatch-launcher.sh", *upload_paths(orch.instance_dir, n.spec)}
    orch.remote.rsync(h, sorted(p for p in paths if os.path.exists(os.path.join(orch.instance_dir, p))),
                       upload=True)
    return len(keys)


def array_submit_from_remote(orch, parent: str) -> list[str]:
    """sbatch an uploaded array parent on its remote login node (its children not submitted yet)."""
    todo = [(i, k) for i, k, _ in arrays.children(orch, parent) if orch.graph.nodes[k].state == S.READY]
    if not todo:
        raise DryPipeError(f"array {parent!r}: no child left to submit")
    nodes = [orch.graph.nodes[k] for _, k in todo]
    _, h = _remote_node(orch, nodes[0].key)
    array_upload(orch, parent)
    for n in nodes:
        orch.mark_launched(n, slurm=True)
    orch.store.flush()
    try:
        ids = orch.remote.sbatch_elements(h, nodes[0].conf, arrays.parent_dir(orch, parent), todo)
    except (DryPipeError, HostUnreachable) as e:  # refused, or the host is gone: ready again
        for n in nodes:
            orch.fire(n, "launch-lost", message=str(e))
        orch.store.flush()
        raise DryPipeError(str(e)) from e
    for n, jid in zip(nodes, ids):
        orch.set_job_id(n, jid)
    orch.store.flush()
    return ids


def array_watch_from_remote(orch, parent: str, wait: bool, timeout: float = 24 * 3600) -> dict[str, int]:
    """Poll the children of an array parent on their host; ingest those that ended."""
    keys = [k for _, k, _ in arrays.children(orch, parent)]
    active = [orch.graph.nodes[k] for k in keys if orch.graph.nodes[k].state in S.ACTIVE]
    for n in active:
        orch.remote.watch(n.key, n.job_id, orch.remote.host_for(n.conf))
    deadline = time.monotonic() + timeout
    while orch.remote.running:
        orch.remote.poll_now()
        remote_tasks.poll(orch)
        orch.store.flush()
        if not wait or time.monotonic() > deadline:
            break
        time.sleep(max(1.0, orch.remote.next_poll_in()))  # polling a remote host: paced
    counts: dict[str, int] = {}
    for k in keys:
        s = orch.graph.nodes[k].state
        counts[s] = counts.get(s, 0) + 1
    return counts


def array_download(orch, parent: str) -> int:
    """Fetch the task and output dirs of all children of an array parent from their host."""
    keys = [k for k, _ in read_array_keys(os.path.join(orch.instance_dir, ".drypipe", parent))]
    _, h = _remote_node(orch, keys[0])
    orch.remote.rsync(h, [p for k in keys for p in (f".drypipe/{k}/", f"output/{k}/")], upload=False)
    for k in keys:  # the downloaded state file outranks a stale local one
        tdir = task_dir(orch.instance_dir, k)
        name = statefile.read(tdir)
        if name:
            statefile.write(tdir, name)
    return len(keys)
