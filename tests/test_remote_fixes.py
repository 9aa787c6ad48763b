"""Remote tasks against the real sshd of scripts/sshd-up.sh (user drypipe-remote) and, for remote
Slurm, the real cluster drypipe-remote reaches over ssh:

- a launcher slow to start is not taken for ended (it runs once; an earlier attempt's ending
  in its remote task dir is not taken for this attempt's);
- at most N remote process tasks run at once per host (DRYPIPE_REMOTE_MAX_PARALLEL, else the
  host's CPU count);
- the job ids of a remote Slurm array whose orchestrator died between sbatch and its commit
  are recovered (RemoteExecutor.recover_array_jobs)."""
import os
import shlex
import subprocess
import sys
import uuid

import pytest

from conftest import REPO, drypipe
from drypipe import Instance

pytestmark = pytest.mark.ssh
GEN = "tests.pipelines.remote_fixes"


@pytest.fixture
def ssh():
    from conftest import service_env
    return service_env("ssh.env", "sshd-up.sh")


@pytest.fixture
def slurm():
    from conftest import service_env
    return service_env("slurm.env", "slurm-up.sh")


def specs(ssh) -> str:
    return f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}:{ssh['DRYPIPE_TEST_SSH_PORT']}:" \
           f"{ssh['DRYPIPE_TEST_SSH_KEY']}"


def remote_env(ssh, base, **extra):
    env = {"REMOTE_SPECS": specs(ssh), "REMOTE_BASE": base,
           "DRYPIPE_SSH_KNOWN_HOSTS": ssh["DRYPIPE_TEST_SSH_KNOWN_HOSTS"]}
    env.update(extra)
    return env


def remote_sh(ssh, command, check=True) -> str:
    return subprocess.run(["ssh", "-F", "/dev/null", "-p", ssh["DRYPIPE_TEST_SSH_PORT"], "-i",
                           ssh["DRYPIPE_TEST_SSH_KEY"], "-o", "IdentitiesOnly=yes", "-o",
                           f"UserKnownHostsFile={ssh['DRYPIPE_TEST_SSH_KNOWN_HOSTS']}", "-o", "BatchMode=yes",
                           f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}", command],
                          capture_output=True, text=True, timeout=60, check=check).stdout


@pytest.fixture
def base(ssh, request):
    """A fresh remote base dir in drypipe-remote's home (removed afterwards): the tasks' record
    files go in it, so tests running at the same time do not mix."""
    path = f"/home/{ssh['DRYPIPE_TEST_SSH_USER']}/fix-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"
    remote_sh(ssh, f"mkdir -p {shlex.quote(path)}")
    yield path
    remote_sh(ssh, f"rm -rf {shlex.quote(path)}", check=False)


def run(inst, gen, env, *extra, timeout=180):
    return drypipe("run", "-q", "-pid", inst, "--generator", f"{GEN}:{gen}", *extra, cwd=REPO, env=env,
                   timeout=timeout)


def executions(ssh, base) -> list[str]:
    return [ln.split()[0] for ln in remote_sh(ssh, f"cat {base}/executions.log 2>/dev/null", check=False).splitlines()]


# ---------------------------------------------------------------- 1. launchers slow to start

SLOW_BASH = r"""#!/bin/bash
# TEST DOUBLE of bash (tests/test_remote_fixes.py): a host slow to start task launchers. A
# launcher (`bash .drypipe/<key>/task run ...`, started from the remote instance dir) whose
# base dir holds .slow-launch starts the seconds it says late; any other bash is /bin/bash at once.
if [[ $# -ge 2 && $1 == .drypipe/*/task && $2 == run && -f ../.slow-launch ]]; then
  read -r delay < ../.slow-launch
  echo "$1 delayed ${delay}s" >> ../slow-launch.log
  sleep "$delay"
fi
exec /bin/bash "$@"
"""


@pytest.fixture
def slow_host(ssh):
    """drypipe-remote's ssh sessions find bash in ~/.drypipe-test-slowbin first (a line at the top
    of its ~/.bashrc, which Debian's bash reads for commands run by sshd): a wrapper that delays
    the launchers started under a base dir holding .slow-launch, and only those (other tests'
    bash sessions go straight to /bin/bash). Removed afterwards."""
    line = '[[ -d $HOME/.drypipe-test-slowbin ]] && PATH=$HOME/.drypipe-test-slowbin:$PATH  # drypipe-test-slowbin'
    remote_sh(ssh, f"mkdir -p ~/.drypipe-test-slowbin && cat > ~/.drypipe-test-slowbin/bash <<'DOUBLE'\n"
                   f"{SLOW_BASH}DOUBLE\nchmod +x ~/.drypipe-test-slowbin/bash && "
                   f"(grep -q drypipe-test-slowbin ~/.bashrc || sed -i '1i {line}' ~/.bashrc)")
    assert remote_sh(ssh, "command -v bash").strip().endswith("/.drypipe-test-slowbin/bash")

    def slow(base, seconds):
        remote_sh(ssh, f"echo {int(seconds)} > {base}/.slow-launch")
    try:
        yield slow
    finally:
        remote_sh(ssh, "sed -i '/drypipe-test-slowbin/d' ~/.bashrc; rm -rf ~/.drypipe-test-slowbin", check=False)


def test_a_launcher_slow_to_start_runs_once_and_completes(ssh, base, instance_dir, slow_host):
    """Its host takes 4 s to start the launcher: polled meanwhile, the task must not look ended
    (it was relaunched over and over, each launcher running the task)."""
    slow_host(base, 4)
    res = run(instance_dir, "counted", remote_env(ssh, base))
    assert res.returncode == 0, res
    assert remote_sh(ssh, f"cat {base}/slow-launch.log").count("delayed 4s") >= 1  # it was slow
    assert executions(ssh, base) == ["counted"]
    t = {t.key: t for t in Instance(str(instance_dir)).tasks()}["counted"]
    assert t.state_name == "completed", (t.state_name, t.message)
    assert (instance_dir / "output" / "counted" / "o.txt").read_text() == "done\n"


def test_a_relaunch_is_not_ended_by_the_previous_attempts_state_file(ssh, base, instance_dir, slow_host):
    """Attempt 1 fails (state.failed.0 stays in its remote task dir); attempt 2's launcher is slow
    to start: until it does, the remote state file is attempt 1's, which must not end attempt 2."""
    env = remote_env(ssh, base)
    res = run(instance_dir, "fails_once", env)
    assert res.returncode == 1, res
    assert {t.key: t.state_name for t in Instance(str(instance_dir)).tasks()} == {"flaky": "failed.0"}
    slow_host(base, 4)
    res = run(instance_dir, "fails_once", env, "--restart-failed")
    assert res.returncode == 0, res
    assert executions(ssh, base) == ["flaky", "flaky"]
    t = {t.key: t for t in Instance(str(instance_dir)).tasks()}["flaky"]
    assert t.state_name == "completed", (t.state_name, t.message)


# ---------------------------------------------------------------- 2. a cap per host

def run_wired(inst, gen, env, timeout=180):
    """`drypipe run` of a remote_fixes pipeline."""
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst), "--generator",
                           f"{GEN}:{gen}"], cwd=REPO, env=full, capture_output=True, text=True, timeout=timeout)


def max_overlap(times_log: str) -> tuple[int, set]:
    """(most tasks running at once, keys) from 'key start|end EPOCH' lines."""
    events = []
    keys = set()
    for line in times_log.splitlines():
        key, what, at = line.split()
        keys.add(key)
        events.append((float(at), 0 if what == "end" else 1))  # at a tie, an end comes first
    running = most = 0
    for _, delta in sorted(events):
        running += 1 if delta else -1
        most = max(most, running)
    return most, keys


def test_remote_process_tasks_are_capped_per_host_by_the_env_var(ssh, base, instance_dir):
    env = remote_env(ssh, base, DRYPIPE_REMOTE_MAX_PARALLEL="2", N_TASKS="6", SLEEP_FOR="1.5")
    res = run_wired(instance_dir, "timed", env)
    assert res.returncode == 0, res.stderr
    most, keys = max_overlap(remote_sh(ssh, f"cat {base}/times.log"))
    assert keys == {f"t-{i}" for i in range(6)}
    assert most == 2  # never more than 2 at once, and the 2 slots were used
    states = {t.key: t.state_name for t in Instance(str(instance_dir)).tasks()}
    assert states == {f"t-{i}": "completed" for i in range(6)}
    assert [(instance_dir / "output" / f"t-{i}" / "o.txt").read_text() for i in range(6)] == \
        [f"{i}\n" for i in range(6)]


def test_remote_process_tasks_are_capped_by_the_hosts_cpu_count(ssh, base, instance_dir):
    cpus = int(remote_sh(ssh, "nproc").strip())
    n = cpus + 2
    env = remote_env(ssh, base, N_TASKS=str(n), SLEEP_FOR="1.5")
    env_without = {k: v for k, v in os.environ.items() if k != "DRYPIPE_REMOTE_MAX_PARALLEL"}
    proc = subprocess.run([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(instance_dir), "--generator",
                           f"{GEN}:timed"], cwd=REPO, env={**env_without, **env}, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    most, keys = max_overlap(remote_sh(ssh, f"cat {base}/times.log"))
    assert len(keys) == n and most == cpus


# ---------------------------------------------------------------- 3. remote Slurm job ids

# `drypipe run` that dies right after remote_tasks.launch returned (the remote sbatch answered),
# before launch_round commits the job ids.
RUN_AND_DIE = ("import os, sys; from drypipe.scheduler import remote_tasks; launch = remote_tasks.launch\n"
               "def die_after(orch, nodes):\n"
               "    launch(orch, nodes); os._exit(17)\n"
               "remote_tasks.launch = die_after\n"
               "from drypipe.cli.main import main; sys.argv[0] = 'drypipe'; main()")


@pytest.mark.slurm
def test_remote_slurm_job_ids_are_recovered_after_a_crash_before_their_commit(ssh, slurm, base, instance_dir):
    from drypipe.executors.remote import RemoteExecutor
    from drypipe.executors.slurm import job_name
    from drypipe.conf import TaskConf

    env = remote_env(ssh, base, N_ARRAY="3")
    proc = subprocess.run([sys.executable, "-c", RUN_AND_DIE, "run", "-q", "-pid", str(instance_dir), "--generator",
                           f"{GEN}:remote_slurm"], cwd=REPO, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=180)
    name = job_name(str(instance_dir))
    try:
        assert proc.returncode == 17, proc.stderr
        keys = [f"rs-{i}" for i in range(3)]
        tasks = {t.key: t for t in Instance(str(instance_dir)).tasks()}
        queued = remote_sh(ssh, f"squeue -h -r -t all --name={name} -o '%i|%k'").split()
        # committed with the launch: where the job will be found, not the job id yet
        pending = {k: ("launched", f"submitting:.drypipe/_arrays/{queued[0].split('|')[1]}:{i}")
                   for i, k in enumerate(keys)}
        assert {k: (tasks[k].state, tasks[k].job_id) for k in keys} == pending
        assert len(queued) == 3 and len({q.split("|")[1] for q in queued}) == 1
        job = queued[0].split("_")[0]
        expected = {f"rs-{i}": f"{job}_{i}" for i in range(3)}
        array = instance_dir / ".drypipe" / "_arrays" / queued[0].split("|")[1]
        assert (array / "job-id").read_text().split() == [job]  # recorded here, as local sbatch does

        def recover():
            ex = RemoteExecutor(str(instance_dir), accept_new=False)
            ex.known_hosts = ssh["DRYPIPE_TEST_SSH_KNOWN_HOSTS"]
            try:
                h = ex.host_for(TaskConf(ssh_specs=specs(ssh), remote_base_dir=base))
                return ex.recover_array_jobs(h, keys + ["never-launched"]), ex.counters["ssh_commands"]
            finally:
                ex.close()

        assert recover() == (expected, 0)  # from the local job-id file: no round trip
        (array / "job-id").unlink()  # died before even that: the host's copy of the file
        assert recover() == (expected, 1)
        remote_sh(ssh, f"rm {base}/{instance_dir.name}/.drypipe/_arrays/{array.name}/job-id")
        assert recover() == (expected, 1)  # neither: squeue, by the array's comment
        # the next run finds the jobs the same way, watches them to their end, submits nothing
        res = subprocess.run([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(instance_dir),
                              "--generator", f"{GEN}:remote_slurm"], cwd=REPO, env={**os.environ, **env},
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        tasks = {t.key: t for t in Instance(str(instance_dir)).tasks()}
        assert {k: (tasks[k].state, tasks[k].job_id) for k in keys} == {k: ("completed", expected[k]) for k in keys}
        assert len(remote_sh(ssh, f"squeue -h -r -t all --name={name} -o '%i'").split()) == 3  # no second array
    finally:
        remote_sh(ssh, f"scancel --name={name}", check=False)


def test_recover_array_jobs_without_arrays_asks_nothing(tmp_path):
    from drypipe.conf import TaskConf
    from drypipe.executors.remote import RemoteExecutor
    ex = RemoteExecutor(str(tmp_path))
    h = ex.host_for(TaskConf(ssh_specs="me@nowhere.invalid:/k", remote_base_dir="/b"))
    assert ex.recover_array_jobs(h, ["a", "b"]) == {}
    assert ex.counters["ssh_commands"] == 0
