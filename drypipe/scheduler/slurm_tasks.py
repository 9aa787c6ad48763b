"""The orchestrator's side of Slurm tasks on this host: one job array per TaskConf and
MaxArraySize chunk, each described by an array dir .drypipe/_arrays/<n>/.

Submission is two-phase, so that a crash at any instant neither loses a job nor submits one
twice: `plan` writes the array dirs and records in each task's job id where its job will be
found (`submitting:<array dir>:<index>`), committed with the `launch` event; `submit` then
runs sbatch and records the real job ids. After a crash in between, recovery reads the array
dir's job-id file (or squeue by the array's comment) to find the job, or relaunches."""
from __future__ import annotations

import os

from ..conf import TaskConf
from ..errors import DryPipeError
from ..executors.slurm import pending_job_id, write_array_dir
from ..executors.slurm_text import scaled_options


def effective_conf(n) -> TaskConf:
    """n's TaskConf as its next job asks for it: --mem and --time scaled by retry_scale ** k at
    its k-th automatic retry (TaskConf(retries=N, retry_scale={"mem": 2}))."""
    conf = n.conf
    if not n.retry or not conf.retry_scale:
        return conf
    return TaskConf.from_dict({**conf.to_dict(),
                               "sbatch_options": scaled_options(conf.sbatch_options, conf.retry_scale, n.retry)})


def plan(orch, nodes) -> list[tuple[object, str, list]]:
    """Group launched Slurm tasks into arrays (per TaskConf and MaxArraySize chunk): write each
    array dir and mark each task's job id as pending. Returns (conf, array dir, nodes) groups."""
    groups: dict[tuple, list] = {}
    for n in nodes:  # a retry with scaled --mem/--time is an array of its own
        groups.setdefault((n.conf_id, n.retry if n.conf.retry_scale else 0), []).append(n)
    size = orch.slurm.max_array_size()
    out = []
    for group in groups.values():
        for chunk in (group[i:i + size] for i in range(0, len(group), size)):
            array_dir = new_array_dir(orch)
            write_array_dir(orch.instance_dir, array_dir, [(n.key, n.start_step) for n in chunk])
            rel = os.path.relpath(array_dir, orch.instance_dir)
            for i, n in enumerate(chunk):
                n.job_id = pending_job_id(rel, i)
                orch.store.touch(n)
            out.append((effective_conf(chunk[0]), array_dir, chunk))
    return out


def submit(orch, planned) -> None:
    """sbatch each planned array; a refusal fails its tasks with sbatch's message."""
    for conf, array_dir, chunk in planned:
        try:
            ids = orch.slurm.sbatch_array(conf, array_dir, [(i, n.key) for i, n in enumerate(chunk)])
        except DryPipeError as e:
            for n in chunk:
                n.job_id = None  # no job: refused
                orch.fail_unlaunched(n, str(e))
            continue
        for n, jid in zip(chunk, ids):
            orch.set_job_id(n, jid)
    orch.store.flush()


def new_array_dir(orch) -> str:
    """.drypipe/_arrays/<n>, n one more than the last one of the instance."""
    base = os.path.join(orch.instance_dir, ".drypipe", "_arrays")
    os.makedirs(base, exist_ok=True)
    if orch.array_seq is None:
        orch.array_seq = 1 + max((int(d) for d in os.listdir(base) if d.isdigit()), default=0)
    path = os.path.join(base, str(orch.array_seq))
    orch.array_seq += 1
    return path
