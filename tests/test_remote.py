"""Tasks on a remote host, against the real sshd of scripts/sshd-up.sh (user drypipe-remote,
whose home holds the remote base dir: a remote task sees only what DryPipe transferred)."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, drypipe, state_files, wait_until
from drypipe import Instance

pytestmark = pytest.mark.ssh
GEN = "tests.pipelines.remote"


@pytest.fixture
def ssh():
    from conftest import service_env
    e = service_env("ssh.env", "sshd-up.sh")
    return e


def remote_env(ssh, base, **extra):
    specs = f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}:{ssh['DRYPIPE_TEST_SSH_PORT']}:" \
            f"{ssh['DRYPIPE_TEST_SSH_KEY']}"
    env = {"REMOTE_SPECS": specs, "REMOTE_BASE": base, "DRYPIPE_SSH_KNOWN_HOSTS": ssh["DRYPIPE_TEST_SSH_KNOWN_HOSTS"]}
    env.update(extra)
    return env


def remote_sh(ssh, command, check=True):
    return subprocess.run(["ssh", "-p", ssh["DRYPIPE_TEST_SSH_PORT"], "-i", ssh["DRYPIPE_TEST_SSH_KEY"], "-o",
                           f"UserKnownHostsFile={ssh['DRYPIPE_TEST_SSH_KNOWN_HOSTS']}", "-o", "BatchMode=yes",
                           f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}", command],
                          capture_output=True, text=True, timeout=60, check=check).stdout


@pytest.fixture
def base(ssh, request):
    """A fresh remote base dir in drypipe-remote's home."""
    path = f"/home/{ssh['DRYPIPE_TEST_SSH_USER']}/base-{request.node.name[:40]}"
    remote_sh(ssh, f"rm -rf {path} ~/executions.log; mkdir -p {path}")
    return path


def run(inst, gen, env, *extra):
    return drypipe("run", "-q", "-pid", inst, "--generator", f"{GEN}:{gen}", *extra, cwd=REPO, env=env)


def test_mixed_local_and_remote_tasks_files_and_variables_both_ways(ssh, base, instance_dir):
    env = remote_env(ssh, base, LOCAL_INSTANCE=str(instance_dir))
    res = run(instance_dir, "mixed", env)
    assert res.returncode == 0, res
    remote_inst = f"{base}/{instance_dir.name}"
    line = f"drypipe-remote saw hello x=7 in {remote_inst}\n"
    n = 14 + len(line)  # remote-py: y (7 * 2) + the length of remote-b's file
    assert (instance_dir / "output" / "local-d" / "d.txt").read_text() == f"{line}n={n} who=drypipe-remote\n"
    outputs = Instance(str(instance_dir)).outputs("remote-py")
    assert outputs == {"who": "drypipe-remote", "n": n}
    assert remote_sh(ssh, f"stat -c %U {remote_inst}/output/remote-b/b.txt").strip() == "drypipe-remote"
    assert state_files(instance_dir) == {k: ["state.completed"] for k in ("local-a", "remote-b", "remote-py", "local-d")}
    tasks = {t.key: t for t in Instance(str(instance_dir)).tasks()}
    assert tasks["remote-b"].job_id.startswith("drypipe-remote@127.0.0.1:2222:")
    # its attempt, measured on the host by its launcher and brought back with drypipe.log
    att = {a["name"]: a for a in Instance(str(instance_dir)).attempts()}
    rb = att["remote-b"]
    assert (rb["executer"], rb["status"], rb["exit"], rb["attempt"]) == ("remote", "completed", 0, 1)
    assert rb["host"] and rb["cpu_user"] is not None and rb["wchar"] > 0 and rb["realtime"] >= 0
    assert rb["native_id"] == tasks["remote-b"].job_id


def test_unknown_host_key_is_refused(ssh, base, instance_dir, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    env = remote_env(ssh, base, DRYPIPE_SSH_KNOWN_HOSTS=str(empty))
    res = run(instance_dir, "one_remote", env)
    assert res.returncode == 1
    assert "only-remote" in res.stderr and "drypipe-remote@127.0.0.1:2222: unknown host key" in res.stderr
    assert empty.read_text() == ""  # nothing was accepted silently


def test_changed_host_key_is_refused(ssh, base, instance_dir, tmp_path):
    forged = tmp_path / "known_hosts"
    other = subprocess.run(["ssh-keygen", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k"), "-q"], check=True)
    del other
    forged.write_text(f"[127.0.0.1]:{ssh['DRYPIPE_TEST_SSH_PORT']} " + (tmp_path / "k.pub").read_text())
    res = run(instance_dir, "one_remote", remote_env(ssh, base, DRYPIPE_SSH_KNOWN_HOSTS=str(forged)))
    assert res.returncode == 1 and "host key CHANGED" in res.stderr and "only-remote" in res.stderr


def test_authentication_failure_names_host_and_task(ssh, base, instance_dir, tmp_path):
    subprocess.run(["ssh-keygen", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "wrong"), "-q"], check=True)
    env = remote_env(ssh, base)
    env["REMOTE_SPECS"] = env["REMOTE_SPECS"].rsplit(":", 1)[0] + f":{tmp_path / 'wrong'}"
    res = run(instance_dir, "one_remote", env)
    assert res.returncode == 1
    assert "only-remote" in res.stderr and "drypipe-remote@127.0.0.1:2222: authentication failed" in res.stderr


def test_missing_remote_dir_names_host_and_task(ssh, instance_dir):
    res = run(instance_dir, "one_remote", remote_env(ssh, "/nonexistent/base"))
    assert res.returncode == 1
    assert "only-remote" in res.stderr and "remote_base_dir /nonexistent/base does not exist" in res.stderr


def test_remote_python_without_drypipes_needs(ssh, base, instance_dir):
    (instance_dir).mkdir()
    (instance_dir / "in.txt").write_text("x")
    res = run(instance_dir, "one_remote_python", remote_env(ssh, base, REMOTE_PYTHON="/usr/bin/no-such-python3"))
    assert res.returncode == 1
    assert "remote-py" in res.stderr and "remote python '/usr/bin/no-such-python3' is missing" in res.stderr


def _drop_ssh_sessions():
    subprocess.run(["pkill", "-f", "sshd: drypipe-remote"], check=False)


def test_sshd_going_away_and_coming_back(ssh, base, instance_dir):
    env = remote_env(ssh, base, N_SLEEPERS="4", SLEEP_FOR="4")
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(instance_dir),
                             "--generator", f"{GEN}:sleepers"], cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: remote_sh(ssh, "cat ~/executions.log 2>/dev/null", check=False).count("sleep-") == 4,
                   timeout=60, what="the remote tasks to start")
        subprocess.run([str(REPO / "scripts" / "sshd-down.sh")], check=True, capture_output=True)
        _drop_ssh_sessions()
        proc_alive_while_down = proc.poll() is None
        subprocess.run([str(REPO / "scripts" / "sshd-up.sh")], check=True, capture_output=True)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        subprocess.run([str(REPO / "scripts" / "sshd-up.sh")], capture_output=True)
    assert proc_alive_while_down
    assert proc.returncode == 0, err
    runs = remote_sh(ssh, "cat ~/executions.log").split("\n")
    assert sorted(line.split()[0] for line in runs if line) == [f"sleep-{i}" for i in range(4)]  # once each
    assert [(instance_dir / "output" / f"sleep-{i}" / "o.txt").read_text() for i in range(4)] == \
        [f"{i}\n" for i in range(4)]


def test_host_that_does_not_come_back_leaves_tasks_resumable(ssh, base, instance_dir):
    env = remote_env(ssh, base, N_SLEEPERS="2", SLEEP_FOR="3", DRYPIPE_SSH_UNREACHABLE_TIMEOUT="3")
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(instance_dir),
                             "--generator", f"{GEN}:sleepers"], cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: remote_sh(ssh, "cat ~/executions.log 2>/dev/null", check=False).count("sleep-") == 2,
                   timeout=60, what="the remote tasks to start")
        subprocess.run([str(REPO / "scripts" / "sshd-down.sh")], check=True, capture_output=True)
        _drop_ssh_sessions()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        subprocess.run([str(REPO / "scripts" / "sshd-up.sh")], check=True, capture_output=True)
    assert proc.returncode == 1
    assert "2 task(s) on unreachable hosts (not failed" in err
    states = {t.key: t.state for t in Instance(str(instance_dir)).tasks()}
    assert set(states.values()) <= {"launched", "step-started"}  # not failed, not lost
    res = run(instance_dir, "sleepers", env)
    assert res.returncode == 0, res
    runs = [ln for ln in remote_sh(ssh, "cat ~/executions.log").split("\n") if ln]
    assert sorted(ln.split()[0] for ln in runs) == ["sleep-0", "sleep-1"]  # resumed, not rerun


def test_new_host_keys_are_accepted_only_when_asked(ssh, base, instance_dir, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    res = run(instance_dir, "one_remote", remote_env(ssh, base, DRYPIPE_SSH_KNOWN_HOSTS=str(known),
                                                     DRYPIPE_SSH_ACCEPT_NEW="1"))
    assert res.returncode == 0, res
    recorded = known.read_text()
    assert f"[127.0.0.1]:{ssh['DRYPIPE_TEST_SSH_PORT']} ssh-ed25519 " in recorded
    pinned = Path(ssh["DRYPIPE_TEST_SSH_KNOWN_HOSTS"]).read_text().split()[-1]
    assert pinned in recorded  # the key it recorded is the server's real one
    res = run(tmp_path / "second", "one_remote", remote_env(ssh, base, DRYPIPE_SSH_KNOWN_HOSTS=str(known)))
    assert res.returncode == 0, res  # now known: no opt-in needed


def test_container_resolved_in_remote_containers_dir(ssh, base, instance_dir):
    """Apptainer cannot be installed here: tests/doubles/apptainer (a TEST DOUBLE) is put on the
    remote user's PATH; it logs its command line on the host and runs the command there."""
    home = f"/home/{ssh['DRYPIPE_TEST_SSH_USER']}"
    double = (Path(__file__).parent / "doubles" / "apptainer").read_text()
    remote_sh(ssh, f"mkdir -p {home}/dbin {home}/containers && touch {home}/containers/tool.sif && "
                   f"rm -f {home}/apptainer.log && cat > {home}/dbin/apptainer <<'DOUBLE'\n{double}DOUBLE\n"
                   f"chmod +x {home}/dbin/apptainer")
    env = remote_env(ssh, base, REMOTE_CONTAINERS_DIR=f"{home}/containers", REMOTE_PATH=f"{home}/dbin:/usr/bin:/bin",
                     REMOTE_DOUBLE_LOG=f"{home}/apptainer.log")
    res = run(instance_dir, "in_container", env)
    assert res.returncode == 0, res
    remote_inst = f"{base}/{instance_dir.name}"
    call = shlex.split(remote_sh(ssh, f"cat {home}/apptainer.log").strip())
    assert call[1:] == ["exec", "--bind", remote_inst, "--bind", f"{remote_inst}/.drypipe/_code",
                        f"{home}/containers/tool.sif", "bash", f"{remote_inst}/.drypipe/boxed/task", "step", "0"]
    assert (instance_dir / "output" / "boxed" / "o.txt").read_text() == f"in {home}/containers/tool.sif\n"


def test_remote_bash_task_calling_a_script_of_the_code_dir(ssh, base, instance_dir):
    res = run(instance_dir, "remote_script", remote_env(ssh, base))
    assert res.returncode == 0, res
    assert (instance_dir / "output" / "scripted" / "o.txt").read_text() == (
        f"script ran as drypipe-remote from {base}/{instance_dir.name}/.drypipe/_code\n")
