"""The real services of the integration tier are there and usable.

scripts/slurm-up.sh and scripts/sshd-up.sh (as root; scripts/services-up.sh does both) start a
single-node Slurm cluster and a private sshd on 127.0.0.1, and write the env a client needs to
<services dir>/slurm.env and ssh.env; the down scripts remove those files. Without them these
tests skip. Services dir: $DRYPIPE_TEST_SERVICES, default <repo>/.test-services.
"""
from __future__ import annotations

import os
import pwd
import subprocess
import uuid
from pathlib import Path

import paramiko
import pytest

from conftest import service_env, wait_until







def run(cmd, env=None, cwd=None, timeout=60) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# ---------------------------------------------------------------- Slurm


@pytest.fixture
def slurm_env() -> dict[str, str]:
    return {**os.environ, **service_env("slurm.env", "slurm-up.sh")}


def sbatch(env, cwd, *args) -> str:
    return run(["sbatch", "--parsable", *args], env=env, cwd=cwd).strip().split(";")[0]


def in_queue(env, job_id) -> str:
    """squeue's default view: jobs not finished yet."""
    return run(["squeue", "-h", "-j", job_id], env=env).strip()


def states(env, job_id) -> dict[str, str]:
    """Job (or array task) id -> state, finished jobs included (kept MinJobAge seconds)."""
    out = run(["squeue", "-t", "all", "-h", "-o", "%i %T", "-j", job_id], env=env)
    return dict(line.split() for line in out.splitlines() if line.strip())


@pytest.mark.slurm
def test_sbatch_job_runs_with_its_own_slurm_tmpdir(slurm_env, tmp_path):
    out = tmp_path / "hi.txt"
    tmpdir_file = tmp_path / "tmpdir.txt"
    script = f"echo hi > {out}; test -d \"$SLURM_TMPDIR\" && echo \"$SLURM_TMPDIR\" > {tmpdir_file}"
    job_id = sbatch(slurm_env, tmp_path, "--wrap", script)
    wait_until(lambda: not in_queue(slurm_env, job_id), timeout=60, what=f"job {job_id} to end")
    wait_until(out.exists, timeout=10, what=f"{out}")
    assert out.read_text() == "hi\n"
    assert states(slurm_env, job_id) == {job_id: "COMPLETED"}
    # TaskProlog gave the job a private SLURM_TMPDIR; the Epilog removed it when the job ended.
    job_tmpdir = Path(tmpdir_file.read_text().strip())
    assert job_tmpdir.name == job_id
    wait_until(lambda: not job_tmpdir.exists(), timeout=10, what=f"the Epilog to remove {job_tmpdir}")


@pytest.mark.slurm
def test_job_array_of_5(slurm_env, tmp_path):
    job_id = sbatch(slurm_env, tmp_path, "--array=0-4", "--wrap",
                    f"echo $SLURM_ARRAY_JOB_ID > {tmp_path}/task-$SLURM_ARRAY_TASK_ID")
    expected = {f"{job_id}_{i}": "COMPLETED" for i in range(5)}
    wait_until(lambda: states(slurm_env, job_id) == expected, timeout=60,
               what=f"the 5 tasks of array {job_id} to complete")
    for i in range(5):
        assert (tmp_path / f"task-{i}").read_text() == f"{job_id}\n"


@pytest.mark.slurm
def test_scancel_ends_a_running_job_as_cancelled(slurm_env, tmp_path):
    job_id = sbatch(slurm_env, tmp_path, "--wrap", "sleep 300")
    wait_until(lambda: states(slurm_env, job_id).get(job_id) == "RUNNING", timeout=60,
               what=f"job {job_id} to run")
    run(["scancel", job_id], env=slurm_env)
    wait_until(lambda: states(slurm_env, job_id).get(job_id) == "CANCELLED", timeout=60,
               what=f"job {job_id} to be CANCELLED")


# ---------------------------------------------------------------- SSH


@pytest.fixture
def ssh_env() -> dict[str, str]:
    return service_env("ssh.env", "sshd-up.sh")


def paramiko_client(ssh_env, known_hosts: str) -> paramiko.SSHClient:
    """Connect with only the pinned host keys of known_hosts: unknown hosts are refused."""
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(ssh_env["DRYPIPE_TEST_SSH_HOST"], port=int(ssh_env["DRYPIPE_TEST_SSH_PORT"]),
                   username=ssh_env["DRYPIPE_TEST_SSH_USER"],
                   key_filename=ssh_env["DRYPIPE_TEST_SSH_KEY"],
                   look_for_keys=False, allow_agent=False, timeout=10)
    return client


def exec_remote(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, stderr = client.exec_command(command, timeout=30)
    out = stdout.read().decode()
    rc = stdout.channel.recv_exit_status()
    assert rc == 0, f"{command!r} exited {rc}: {stderr.read().decode()}"
    return out


@pytest.mark.ssh
def test_paramiko_runs_a_command_as_the_remote_user(ssh_env):
    with paramiko_client(ssh_env, ssh_env["DRYPIPE_TEST_SSH_KNOWN_HOSTS"]) as client:
        user, home = exec_remote(client, 'id -un; echo "$HOME"').split()
    assert user == ssh_env["DRYPIPE_TEST_SSH_USER"] != "root"
    assert home == pwd.getpwnam(user).pw_dir  # sshd is on this machine


@pytest.mark.ssh
def test_paramiko_refuses_an_unknown_host_key(ssh_env, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.touch()
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        paramiko_client(ssh_env, str(empty))


@pytest.mark.ssh
def test_paramiko_refuses_a_changed_host_key(ssh_env, tmp_path):
    other = tmp_path / "other_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)])
    key_type, key_b64 = other.with_suffix(".pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    host, port = ssh_env["DRYPIPE_TEST_SSH_HOST"], ssh_env["DRYPIPE_TEST_SSH_PORT"]
    known_hosts.write_text(f"[{host}]:{port} {key_type} {key_b64}\n")
    with pytest.raises(paramiko.BadHostKeyException):
        paramiko_client(ssh_env, str(known_hosts))


@pytest.mark.ssh
def test_rsync_to_the_remote_home_and_back(ssh_env, tmp_path):
    e = ssh_env
    rsh = (f"ssh -F /dev/null -p {e['DRYPIPE_TEST_SSH_PORT']} -i {e['DRYPIPE_TEST_SSH_KEY']} "
           f"-o IdentitiesOnly=yes -o UserKnownHostsFile={e['DRYPIPE_TEST_SSH_KNOWN_HOSTS']} "
           "-o StrictHostKeyChecking=yes -o BatchMode=yes")
    remote = f"{e['DRYPIPE_TEST_SSH_USER']}@{e['DRYPIPE_TEST_SSH_HOST']}"
    remote_dir = f"drypipe-test-{uuid.uuid4().hex}"  # relative: in the remote user's home
    payload = tmp_path / "out" / "payload.bin"
    payload.parent.mkdir()
    payload.write_bytes(os.urandom(100_000))
    try:
        run(["rsync", "-a", "-e", rsh, f"{payload.parent}/", f"{remote}:{remote_dir}/"])
        with paramiko_client(e, e["DRYPIPE_TEST_SSH_KNOWN_HOSTS"]) as client:
            owner, size = exec_remote(client, f"stat -c '%U %s' {remote_dir}/payload.bin").split()
        assert (owner, int(size)) == (e["DRYPIPE_TEST_SSH_USER"], 100_000)
        run(["rsync", "-a", "-e", rsh, f"{remote}:{remote_dir}/", f"{tmp_path}/back/"])
        assert (tmp_path / "back" / "payload.bin").read_bytes() == payload.read_bytes()
    finally:
        with paramiko_client(e, e["DRYPIPE_TEST_SSH_KNOWN_HOSTS"]) as client:
            exec_remote(client, f"rm -rf {remote_dir}")
