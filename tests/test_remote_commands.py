"""The remote commands by hand, through the real CLI against the real sshd of scripts/sshd-up.sh
(user drypipe-remote; the remote base dirs are in its home) and, for the array commands, the
real Slurm cluster that drypipe-remote reaches over ssh (/etc/slurm/slurm.conf there):

  prepare, upload-task-inputs, upload-drypipe-for-remote-instance, remote-exec [--wait],
  fetch-remote-state --wait, task --ssh-remote-dest, task --from-remote,
  array-create-parent, array-upload, array-submit-from-remote, array-watch-from-remote --wait,
  array-download;

values full of shell metacharacters through remote tasks, and a full remote disk (a tiny tmpfs
mounted as root). Tests of behaviour DryPipe gets wrong are strict xfails naming the bug."""
import json
import os
import shlex
import shutil
import socket
import subprocess
import uuid

import pytest

from conftest import REPO, drypipe
from drypipe import Instance

pytestmark = pytest.mark.ssh
GEN = "tests.pipelines.remote_commands"
PIPELINES = REPO / "tests" / "pipelines"


# ---------------------------------------------------------------- fixtures and helpers


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


def label(ssh) -> str:
    return f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}:{ssh['DRYPIPE_TEST_SSH_PORT']}"


def remote_env(ssh, base, **extra):
    env = {"REMOTE_SPECS": specs(ssh), "REMOTE_BASE": base,
           "DRYPIPE_SSH_KNOWN_HOSTS": ssh["DRYPIPE_TEST_SSH_KNOWN_HOSTS"]}
    env.update(extra)
    return env


def ssh_argv(ssh) -> list[str]:
    return ["ssh", "-F", "/dev/null", "-p", ssh["DRYPIPE_TEST_SSH_PORT"], "-i", ssh["DRYPIPE_TEST_SSH_KEY"],
            "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={ssh['DRYPIPE_TEST_SSH_KNOWN_HOSTS']}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]


def remote_sh(ssh, command, check=True) -> subprocess.CompletedProcess:
    return subprocess.run([*ssh_argv(ssh), f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}",
                           command], capture_output=True, text=True, timeout=60, check=check)


def remote_files(ssh, d) -> set[str]:
    """The paths under remote dir d (files and dirs), relative to it."""
    out = remote_sh(ssh, f"cd {shlex.quote(d)} && find . -mindepth 1 -printf '%P\\n'").stdout
    return set(out.splitlines())


def remote_read(ssh, path) -> str:
    return remote_sh(ssh, f"cat {shlex.quote(path)}").stdout


def fetch_remote_dir(ssh, remote_dir, local_dir):
    """rsync a remote dir (as the remote host has it) to a local dir."""
    rsh = shlex.join(ssh_argv(ssh))
    os.makedirs(local_dir, exist_ok=True)
    subprocess.run(["rsync", "-a", "-e", rsh, f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}:"
                    f"{remote_dir}/", f"{local_dir}/"], check=True, capture_output=True, timeout=120)


@pytest.fixture
def base(ssh, request):
    """A fresh remote base dir in drypipe-remote's home (removed afterwards)."""
    path = f"/home/{ssh['DRYPIPE_TEST_SSH_USER']}/cmds-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"
    remote_sh(ssh, f"mkdir -p {shlex.quote(path)}")
    yield path
    remote_sh(ssh, f"rm -rf {shlex.quote(path)}", check=False)


def dp(*args, env, cwd=REPO, check=None, timeout=300):
    return drypipe(*args, cwd=cwd, env=env, check=check, timeout=timeout)


def prepare(inst, gen, env, cwd=REPO, module=GEN):
    res = dp("prepare", "-pid", inst, "--generator", f"{module}:{gen}", env=env, cwd=cwd, check=True)
    return res


def tasks(inst) -> dict:
    return {t.key: t for t in Instance(str(inst)).tasks()}


def with_input(instance_dir, name="in.txt", data=b"hello\n"):
    instance_dir.mkdir(parents=True, exist_ok=True)
    (instance_dir / name).write_bytes(data)
    return instance_dir


# ---------------------------------------------------------------- one task by hand


def test_upload_task_inputs_sends_the_launcher_and_the_input_files(ssh, base, instance_dir):
    env = remote_env(ssh, base)
    with_input(instance_dir, data=b"hello \x00 bytes\n")
    prepare(instance_dir, "inputs", env)
    res = dp("upload-task-inputs", "-pid", instance_dir, "--task-key", "rb", env=env, check=True)
    assert res.stdout == "task rb: uploaded 3 paths\n"
    rdir = f"{base}/{instance_dir.name}"
    files = remote_files(ssh, rdir)
    assert {".drypipe/_runtime/task-runner.sh", ".drypipe/rb/task", "in.txt", "output"} <= files
    assert not any(f.startswith(".drypipe/rpy") for f in files)  # only the task asked for
    assert not any(f.startswith(".drypipe/rb/state.") for f in files)  # uploaded, not started
    assert remote_sh(ssh, f"sha256sum < {rdir}/in.txt").stdout.split()[0] == \
        subprocess.run(["sha256sum"], input=(instance_dir / "in.txt").read_bytes(), capture_output=True,
                       check=True).stdout.decode().split()[0]
    assert remote_read(ssh, f"{rdir}/.drypipe/rb/task") == (instance_dir / ".drypipe" / "rb" / "task").read_text()
    assert tasks(instance_dir)["rb"].state == "ready"


def test_upload_drypipe_for_remote_instance_sends_drypipe_and_the_pipeline_code(ssh, base, instance_dir):
    env = remote_env(ssh, base)
    with_input(instance_dir)
    prepare(instance_dir, "inputs", env)
    res = dp("upload-drypipe-for-remote-instance", "-pid", instance_dir, "--task-key", "rpy", env=env, check=True)
    rdir = f"{base}/{instance_dir.name}"
    assert res.stdout == f"task rpy: DryPipe and pipeline code in {label(ssh)}:{rdir}/.drypipe\n"
    files = remote_files(ssh, f"{rdir}/.drypipe")
    for f in ("_python/drypipe/__init__.py", "_python/drypipe/runtime/pycall.py", "_python/dry_pipe/__init__.py",
              "_code/remote_commands.py"):
        assert f in files, f
    assert not any("__pycache__" in f for f in files)
    assert remote_read(ssh, f"{rdir}/.drypipe/_code/remote_commands.py") == \
        (PIPELINES / "remote_commands.py").read_text()
    # what a remote python step imports, with the uploaded copies only
    out = remote_sh(ssh, f"cd {rdir} && PYTHONPATH=.drypipe/_code:.drypipe/_python python3 -c "
                         "'import dry_pipe, drypipe.runtime.pycall, remote_commands; print(dry_pipe.__file__)'")
    assert out.stdout.strip() == f"{rdir}/.drypipe/_python/dry_pipe/__init__.py"


def _check_rb_completed(ssh, base, instance_dir):
    rdir = f"{base}/{instance_dir.name}"
    t = tasks(instance_dir)["rb"]
    assert t.state_name == "completed", (t.state_name, t.message)
    assert t.job_id.startswith(f"{label(ssh)}:")
    assert (instance_dir / "output" / "rb" / "o.txt").read_text() == \
        f"drypipe-remote read hello in {rdir}/output/rb\n"
    assert Instance(str(instance_dir)).outputs("rb") == {"o": str(instance_dir / "output" / "rb" / "o.txt"), "y": 15}
    assert sorted(p.name for p in (instance_dir / ".drypipe" / "rb").glob("state.*")) == ["state.completed"]
    assert (instance_dir / ".drypipe" / "rb" / "out.log").exists()  # downloaded with the task dir


def test_remote_exec_wait_runs_the_task_remotely_and_downloads_it(ssh, base, instance_dir):
    env = remote_env(ssh, base)
    with_input(instance_dir)
    prepare(instance_dir, "inputs", env)
    res = dp("remote-exec", "-pid", instance_dir, "--task-key", "rb", "--wait", env=env)
    assert res.returncode == 0, res
    assert res.stdout == "task rb: completed\n"
    _check_rb_completed(ssh, base, instance_dir)


def test_remote_exec_then_fetch_remote_state_wait(ssh, base, instance_dir):
    env = remote_env(ssh, base)
    with_input(instance_dir)
    prepare(instance_dir, "inputs", env)
    res = dp("remote-exec", "-pid", instance_dir, "--task-key", "rb", env=env, check=True)
    assert res.stdout == "task rb: launched\n"
    assert tasks(instance_dir)["rb"].state == "launched"
    assert tasks(instance_dir)["rpy"].state == "ready"  # nothing else started
    res = dp("fetch-remote-state", "-pid", instance_dir, "--task-key", "rb", "--wait", env=env, check=True)
    assert res.stdout == "task rb: completed\n"
    _check_rb_completed(ssh, base, instance_dir)
    assert tasks(instance_dir)["rpy"].state == "ready"
    # fetching again: nothing to do, still completed
    res = dp("fetch-remote-state", "-pid", instance_dir, "--task-key", "rb", env=env, check=True)
    assert res.stdout == "task rb: completed\n"


def test_remote_python_task_by_hand(ssh, base, instance_dir):
    """The pipeline module imported by its top-level name (cwd: its dir): it lands in .drypipe/_code."""
    env = remote_env(ssh, base)
    with_input(instance_dir, data=b"sixsix")
    prepare(instance_dir, "inputs", env, cwd=PIPELINES, module="remote_commands")
    dp("upload-drypipe-for-remote-instance", "-pid", instance_dir, "--task-key", "rpy", env=env, cwd=PIPELINES,
       check=True)
    dp("remote-exec", "-pid", instance_dir, "--task-key", "rpy", env=env, cwd=PIPELINES, check=True)
    res = dp("fetch-remote-state", "-pid", instance_dir, "--task-key", "rpy", "--wait", env=env, cwd=PIPELINES,
             check=True)
    assert res.stdout == "task rpy: completed\n", (instance_dir / ".drypipe" / "rpy" / "out.log").read_text()
    assert Instance(str(instance_dir)).outputs("rpy") == {"who": "drypipe-remote", "total": 2 + 6}


def test_remote_python_task_by_hand_with_a_dotted_module(ssh, base, instance_dir):
    env = remote_env(ssh, base)
    with_input(instance_dir, data=b"sixsix")
    prepare(instance_dir, "inputs", env)
    dp("upload-drypipe-for-remote-instance", "-pid", instance_dir, "--task-key", "rpy", env=env, check=True)
    dp("remote-exec", "-pid", instance_dir, "--task-key", "rpy", env=env, check=True)
    res = dp("fetch-remote-state", "-pid", instance_dir, "--task-key", "rpy", "--wait", env=env, check=True)
    assert res.stdout == "task rpy: completed\n", (instance_dir / ".drypipe" / "rpy" / "out.log").read_text()
    assert Instance(str(instance_dir)).outputs("rpy") == {"who": "drypipe-remote", "total": 2 + 6}


# ---------------------------------------------------------------- task --from-remote


def test_task_from_remote_runs_an_uploaded_copy_without_a_database(ssh, base, instance_dir, tmp_path):
    env = remote_env(ssh, base)
    with_input(instance_dir)
    prepare(instance_dir, "inputs", env)
    dp("upload-task-inputs", "-pid", instance_dir, "--task-key", "rb", env=env, check=True)
    copy = tmp_path / "copy" / instance_dir.name
    fetch_remote_dir(ssh, f"{base}/{instance_dir.name}", copy)  # the instance as uploaded
    assert not (copy / ".drypipe" / "drypipe.db").exists()
    res = dp("task", "-pid", copy, "--task-key", "rb", "--from-remote", env=env)
    assert res.returncode == 0, res
    assert sorted(p.name for p in (copy / ".drypipe" / "rb").glob("state.*")) == ["state.completed"]
    whoami = subprocess.run(["whoami"], capture_output=True, text=True, check=True).stdout.strip()
    assert (copy / "output" / "rb" / "o.txt").read_text() == f"{whoami} read hello in {copy}/output/rb\n"
    assert (copy / ".drypipe" / "rb" / "output-vars").read_bytes().split(b"\0")[:2] == [b"y", b"15"]
    assert not (copy / ".drypipe" / "drypipe.db").exists()  # no database was made
    assert tasks(instance_dir)["rb"].state == "ready"  # the real instance was not touched
    assert not (instance_dir / "output" / "rb" / "o.txt").exists()


def test_task_from_remote_refuses_a_task_that_was_not_uploaded(tmp_path):
    (tmp_path / "empty").mkdir()
    res = dp("task", "-pid", tmp_path / "empty", "--task-key", "nope", "--from-remote", env={})
    assert res.returncode != 0 and "task 'nope' was not uploaded" in res.stderr, res


def test_task_from_remote_on_the_remote_host_with_the_uploaded_drypipe(ssh, base, instance_dir):
    env = remote_env(ssh, base)
    with_input(instance_dir)
    prepare(instance_dir, "inputs", env)
    dp("upload-task-inputs", "-pid", instance_dir, "--task-key", "rb", env=env, check=True)
    dp("upload-drypipe-for-remote-instance", "-pid", instance_dir, "--task-key", "rpy", env=env, check=True)
    rdir = f"{base}/{instance_dir.name}"
    res = remote_sh(ssh, f"cd {rdir} && PYTHONPATH=.drypipe/_python python3 -m drypipe task -pid . "
                         "--task-key rb --from-remote", check=False)
    assert res.returncode == 0, res.stderr
    assert remote_sh(ssh, f"ls {rdir}/.drypipe/rb/").stdout.split().count("state.completed") == 1


# ---------------------------------------------------------------- task --ssh-remote-dest


def _dest(ssh, base, port=True):
    host = f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}"
    return f"{host}:{ssh['DRYPIPE_TEST_SSH_PORT']}:{base}" if port else f"{host}:{base}"


def _dest_env(ssh, base):
    return remote_env(ssh, base, DRYPIPE_SSH_KEY=ssh["DRYPIPE_TEST_SSH_KEY"])


def test_task_ssh_remote_dest_with_a_port(ssh, base, instance_dir):
    """USER@HOST:PORT:DIR, the only spelling that reaches the test sshd's port (undocumented:
    the --ssh-remote-dest help says USER@HOST:DIR, and dest.rsplit(':', 1) lets a port through)."""
    env = _dest_env(ssh, base)
    with_input(instance_dir)
    prepare(instance_dir, "local_and_remote", env)  # a remote task in the graph: see the next test
    res = dp("task", "-pid", instance_dir, "--task-key", "lt", "--ssh-remote-dest", _dest(ssh, base), env=env)
    assert res.returncode == 0, res
    assert "task lt: completed" in res.stderr
    rdir = f"{base}/{instance_dir.name}"
    assert (instance_dir / "output" / "lt" / "o.txt").read_text() == f"drypipe-remote hello {rdir}/output/lt\n"
    assert tasks(instance_dir)["lt"].state == "completed"
    assert Instance(str(instance_dir)).outputs("lt")["y"] == 5


def test_task_ssh_remote_dest_on_an_all_local_pipeline_runs_remotely(ssh, base, instance_dir):
    env = _dest_env(ssh, base)
    with_input(instance_dir)
    prepare(instance_dir, "all_local", env)
    res = dp("task", "-pid", instance_dir, "--task-key", "lt", "--ssh-remote-dest", _dest(ssh, base), env=env)
    rdir = f"{base}/{instance_dir.name}"
    assert (instance_dir / "output" / "lt" / "o.txt").read_text() == f"drypipe-remote hello {rdir}/output/lt\n"
    assert res.returncode == 0, res


def _port_open(host, port) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def test_task_ssh_remote_dest_documented_form_uses_port_22_and_says_so(ssh, base, instance_dir):
    """The documented USER@HOST:DIR cannot carry a port: it connects to port 22 (paramiko gets the
    port from ssh_specs and ignores ~/.ssh/config, rsync gets `ssh -p 22`, so no Host entry helps)."""
    if _port_open(ssh["DRYPIPE_TEST_SSH_HOST"], 22):
        pytest.skip("something listens on port 22 here: the unreachable case cannot be shown")
    env = _dest_env(ssh, base)
    with_input(instance_dir)
    prepare(instance_dir, "local_and_remote", env)
    res = dp("task", "-pid", instance_dir, "--task-key", "lt", "--ssh-remote-dest", _dest(ssh, base, port=False),
             env=env, timeout=120)
    assert res.returncode != 0
    assert "unreachable" in res.stderr and f"{ssh['DRYPIPE_TEST_SSH_HOST']}" in res.stderr, res


# ---------------------------------------------------------------- arrays on remote Slurm


@pytest.mark.slurm
def test_array_commands_over_ssh_with_remote_slurm(ssh, slurm, base, instance_dir):
    env = remote_env(ssh, base, N_ARRAY="3")
    prepare(instance_dir, "slurm_array", env)
    res = dp("array-create-parent", "-pid", instance_dir, "--task-key", "P", "--filter", "arr-*", env=env,
             check=True)
    assert res.stdout == "array P: 3 tasks\n"
    res = dp("array-upload", "-pid", instance_dir, "--task-key", "P", env=env, check=True)
    assert res.stdout == "array P: uploaded 3 tasks\n"
    rdir = f"{base}/{instance_dir.name}"
    files = remote_files(ssh, rdir)
    assert {".drypipe/P/array.sh", ".drypipe/P/task-keys.tsv", ".drypipe/_runtime/task-runner.sh"} <= files
    for i in range(3):
        assert {f".drypipe/arr-{i}/task", f".drypipe/arr-{i}/sbatch-launcher.sh"} <= files
    assert not any(f.startswith(".drypipe/other") for f in files)
    assert {k: t.state for k, t in tasks(instance_dir).items()} == \
        {"arr-0": "ready", "arr-1": "ready", "arr-2": "ready", "other": "ready"}

    res = dp("array-submit-from-remote", "-pid", instance_dir, "--task-key", "P", env=env, check=True)
    assert res.stdout.startswith("array P: submitted 3 tasks as job ")
    job = res.stdout.split()[-1]
    ts = tasks(instance_dir)
    assert {ts[f"arr-{i}"].job_id for i in range(3)} == {f"{job}_{i}" for i in range(3)}
    assert all(ts[f"arr-{i}"].state in ("launched", "step-started", "completed") for i in range(3))

    res = dp("array-watch-from-remote", "-pid", instance_dir, "--task-key", "P", "--wait", env=env, check=True)
    assert res.stdout == "3 completed\n"
    # array-download fetches them all again: remove what the watch downloaded to see it come back
    for i in range(3):
        shutil.rmtree(instance_dir / "output" / f"arr-{i}")
    res = dp("array-download", "-pid", instance_dir, "--task-key", "P", env=env, check=True)
    assert res.stdout == "array P: downloaded 3 tasks\n"

    ts = tasks(instance_dir)
    inst = Instance(str(instance_dir))
    for i in range(3):
        assert ts[f"arr-{i}"].state_name == "completed", ts[f"arr-{i}"].message
        line = (instance_dir / "output" / f"arr-{i}" / "o.txt").read_text()
        words = line.split()
        assert words[0] == str(i) and words[1] == "on" and words[2] != "no-slurm" and words[3] == "drypipe-remote"
        assert inst.outputs(f"arr-{i}")["sq"] == i * i
        assert sorted(p.name for p in (instance_dir / ".drypipe" / f"arr-{i}").glob("state.*")) == \
            ["state.completed"]
    assert ts["other"].state == "ready"  # not in the array, never run
    assert not (instance_dir / "output" / "other").exists()


# ---------------------------------------------------------------- shell metacharacters


META_VALUES = [
    "$(touch /tmp/PWNED-{t}-subst)", "`touch /tmp/PWNED-{t}-bt`", "$(touch PWNED-{t}-rel)",
    "'; touch /tmp/PWNED-{t}-sq; echo '", "\"; touch /tmp/PWNED-{t}-dq; echo \"",
    "a;touch /tmp/PWNED-{t}-semi;b", "x && touch /tmp/PWNED-{t}-and | cat > /tmp/PWNED-{t}-pipe",
    "line1\nline2\n\n", "\n$(touch /tmp/PWNED-{t}-nl)\n", "k=v=w", "==", "x=1 y=2",
    "$HOME ${PATH} $$ $? $0 \\ \\n", "' \" ` $ \\", "$'\\x41'", " lead and trail ", "\r\t\x0b\x0c",
    "-n", "--", "", "é 日本 😀", "*?[a-z]{1,2}~!#%^&()<>|", "EOF\n'EOF'\nEOF",
]


def _no_pwned(ssh, token, *local_dirs):
    """Nothing named PWNED-<token> was created: local /tmp, the remote home and /tmp, local dirs."""
    local = [p for d in ("/tmp", *map(str, local_dirs)) for p in
             subprocess.run(["find", d, "-name", f"PWNED-{token}*"], capture_output=True, text=True).stdout.split()]
    remote = remote_sh(ssh, f"find ~ /tmp -name 'PWNED-{token}*' 2>/dev/null", check=False).stdout.split()
    assert local == [] and remote == []


def test_metacharacter_values_reach_a_remote_task_and_come_back_byte_for_byte(ssh, base, tmp_path):
    token = uuid.uuid4().hex[:8]
    values = [v.replace("{t}", token) for v in META_VALUES]
    inst = tmp_path / "instance"
    inst.mkdir()
    (inst / "values.json").write_text(json.dumps(values), encoding="utf-8")
    res = dp("run", "-q", "-pid", inst, "--generator", f"{GEN}:values", env=remote_env(ssh, base))
    assert res.returncode == 0, res
    instance = Instance(str(inst))
    rdir = f"{base}/{inst.name}"
    for i, v in enumerate(values):
        assert (inst / "output" / f"rv-{i}" / "out.txt").read_bytes() == v.encode("utf-8"), i
        assert instance.outputs(f"rv-{i}")["r"] == v, i
        assert (inst / "output" / f"lv-{i}" / "out.txt").read_bytes() == v.encode("utf-8"), i  # downstream
    # what the remote task wrote on the remote host, byte for byte too
    for i in (0, 3, 7, 8):
        out = subprocess.run([*ssh_argv(ssh), f"{ssh['DRYPIPE_TEST_SSH_USER']}@{ssh['DRYPIPE_TEST_SSH_HOST']}",
                              f"cat {rdir}/output/rv-{i}/out.txt"], capture_output=True, check=True).stdout
        assert out == values[i].encode("utf-8"), i
    _no_pwned(ssh, token, inst)


def test_metacharacters_in_the_instance_dir_and_input_file_names(ssh, base, tmp_path):
    token = uuid.uuid4().hex[:8]
    name = f"i $(touch PWNED-{token}-dir) `touch PWNED-{token}-bt` x;y'q\" & z"
    fname = f"in $(touch PWNED-{token}-f) \"q\" ;x'.txt"
    inst = tmp_path / name
    with_input(inst, fname, b"data\n")
    res = dp("run", "-q", "-pid", inst, "--generator", f"{GEN}:inputs", env=remote_env(ssh, base, IN_FILE=fname))
    assert res.returncode == 0, res
    rdir = f"{base}/{name}"
    assert (inst / "output" / "rb" / "o.txt").read_text() == f"drypipe-remote read data in {rdir}/output/rb\n"
    assert Instance(str(inst)).outputs("rpy") == {"who": "drypipe-remote", "total": 2 + 5}
    assert remote_sh(ssh, f"cat {shlex.quote(rdir + '/' + fname)}").stdout == "data\n"
    _no_pwned(ssh, token, tmp_path)


# ---------------------------------------------------------------- a full remote disk


@pytest.fixture
def tiny_remote_disk(ssh):
    """A 256 KiB tmpfs mounted (as root) in drypipe-remote's home: the remote base dir."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = f"/home/{ssh['DRYPIPE_TEST_SSH_USER']}/cmds-full-{uuid.uuid4().hex[:8]}"
    os.mkdir(path)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0777", "tmpfs", path],
                         capture_output=True, text=True)
    if res.returncode != 0:
        os.rmdir(path)
        pytest.skip(f"mount -t tmpfs is not permitted here: {res.stderr.strip()}")
    try:
        yield path
    finally:
        import time
        for _ in range(20):  # the remote rsync may still be exiting: busy for a moment
            if subprocess.run(["umount", path], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", path], capture_output=True)
        os.rmdir(path)


def test_full_remote_disk_fails_the_task_naming_host_task_and_cause(ssh, tiny_remote_disk, instance_dir):
    with_input(instance_dir, "in.bin", os.urandom(4 * 1024 * 1024))
    res = dp("run", "-q", "-pid", instance_dir, "--generator", f"{GEN}:big_input",
             env=remote_env(ssh, tiny_remote_disk), timeout=120)
    assert res.returncode == 1, res
    t = tasks(instance_dir)["big"]
    assert t.state_name == "failed.0"
    for text in (t.message, res.stderr):
        assert label(ssh) in text and "No space left on device" in text, text
    line = next(ln for ln in res.stderr.splitlines() if "No space left on device" in ln)
    assert line.strip().startswith("big: failed.0 - ")  # the summary line names the task


def _rsync_without_stderr(tmp_path) -> str:
    """A PATH dir whose rsync is the real one with its stderr dropped."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = shutil.which("rsync")
    (bin_dir / "rsync").write_text(f"#!/bin/bash\nexec {shlex.quote(real)} \"$@\" 2>/dev/null\n")
    (bin_dir / "rsync").chmod(0o755)
    return str(bin_dir)


def test_full_remote_disk_is_named_even_when_rsync_says_nothing(ssh, tiny_remote_disk, instance_dir, tmp_path):
    """Deterministic stand-in for rsync's lost message: the real rsync, its stderr dropped."""
    with_input(instance_dir, "in.txt", os.urandom(2 * 1024 * 1024))
    env = remote_env(ssh, tiny_remote_disk, PATH=_rsync_without_stderr(tmp_path) + os.pathsep + os.environ["PATH"])
    res = dp("run", "-q", "-pid", instance_dir, "--generator", f"{GEN}:inputs", env=env, timeout=120)
    assert res.returncode == 1, res
    for key in ("rb", "rpy"):
        t = tasks(instance_dir)[key]
        assert t.state_name == "failed.0"
        assert label(ssh) in t.message and "No space left on device" in t.message, t.message
