"""The orchestrator's side of Slurm tasks on this host: one job array per TaskConf and
MaxArraySize chunk, each described by an array dir .drypipe/_arrays/<n>/."""
from __future__ import annotations

import os

from ..errors import DryPipeError


def submit(orch, nodes) -> None:
    """One sbatch per TaskConf and MaxArraySize chunk."""
    groups: dict[int, list] = {}
    for n in nodes:
        groups.setdefault(n.conf_id, []).append(n)
    size = orch.slurm.max_array_size()
    for group in groups.values():
        for chunk in (group[i:i + size] for i in range(0, len(group), size)):
            try:
                ids = orch.slurm.submit_array(chunk[0].conf, [(n.key, n.start_step) for n in chunk],
                                              new_array_dir(orch))
            except DryPipeError as e:
                for n in chunk:
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
