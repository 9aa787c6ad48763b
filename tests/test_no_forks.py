"""A local task watched by its orchestrator forks nothing of its own: only the user's step runs
programs. Counted with PATH shims: every program of /usr/bin and /bin is shadowed by a bash
wrapper that logs its name and its caller's process group, then execs the real one. A launcher
leads its own process group (its pid, in drypipe.log), so the shim calls of a task's group are
what its launcher and its steps ran.

The other side: a task whose orchestrator is gone (killed with SIGKILL) writes its own state
file, as tasks run by Slurm, on a remote host or by hand always do."""
import os
import signal
import subprocess
import sys
import textwrap

from conftest import REPO, state_files, wait_until

N = 20
DIGITS = str.maketrans("0123456789", "abcdefghij")
SHIM = """#!/bin/bash
read -r __s < /proc/$$/stat; __f=(${__s##*) })
printf '%s %s\\n' "${0##*/}" "${__f[2]}" >> "$SHIM_LOG"
exec -a "$0" REAL "$@"
"""
NOT_SHIMMED = {"bash", "sh", "dash", "env"}  # bash itself (the spawner's `bash`), /bin/sh


def make_shims(d, log):
    d.mkdir()
    for bindir in ("/usr/bin", "/bin"):
        for name in os.listdir(bindir):
            real = os.path.join(bindir, name)
            if name in NOT_SHIMMED or (d / name).exists() or not os.access(real, os.X_OK) or os.path.isdir(real):
                continue
            (d / name).write_text(SHIM.replace("REAL", real))
            (d / name).chmod(0o755)
    return dict(os.environ, PATH=f"{d}:{os.environ['PATH']}", SHIM_LOG=str(log))


def write_pipeline(tmp_path, body):
    code = tmp_path / "code"
    code.mkdir()
    (code / "noforks.py").write_text(textwrap.dedent(body))
    return code


PIPELINE = f'''
def dag(dsl):
    for i in range({N}):
        yield dsl.task(key=f"t.{{i}}").inputs(i=i).outputs(o=dsl.file("o.txt"), n=int).calls(
            'export n=$((i * 2))\\n'
            'echo "$i" | tr 0-9 a-j > "$o"\\n')()
    yield dsl.task(key="bad").calls('tr a b < /dev/null\\nexit 3\\n')()
'''


def launcher_pid(inst, key):
    text = (inst / ".drypipe" / key / "drypipe.log").read_text()
    return text.rsplit(" pid=", 1)[1].split()[0]


def test_a_watched_launcher_runs_no_program_of_its_own(tmp_path):
    log = tmp_path / "shims.log"
    env = make_shims(tmp_path / "shims", log)
    code = write_pipeline(tmp_path, PIPELINE)
    env["PYTHONPATH"] = f"{code}:{REPO}"
    inst = tmp_path / "inst"
    proc = subprocess.run([sys.executable, "-m", "drypipe", "run", "-pid", str(inst), "--generator", "noforks:dag"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "task bad" in proc.stderr, proc.stderr  # `bad` failed, the others completed
    calls: dict[str, list[str]] = {}
    for line in log.read_text().splitlines():
        name, pgid = line.rsplit(" ", 1)
        calls.setdefault(pgid, []).append(name)
    for i in range(N):
        key = f"t.{i}"
        assert (inst / "output" / key / "o.txt").read_text() == str(i).translate(DIGITS) + "\n"
        # the user's step ran `tr`; its launcher ran nothing (no mv, mkdir, rmdir, date, cat...)
        assert calls.get(launcher_pid(inst, key)) == ["tr"], (key, calls.get(launcher_pid(inst, key)))
    assert calls.get(launcher_pid(inst, "bad")) == ["tr"]
    # and yet every state file says how its task ended, written by the orchestrator
    files = state_files(inst)
    assert files["bad"] == ["state.failed.0"]
    assert all(files[f"t.{i}"] == ["state.completed"] for i in range(N)), files
    assert "step 0 exited with status 3" in (inst / ".drypipe" / "bad" / "out.log").read_text()


SLOW = '''
def dag(dsl):
    yield dsl.task(key="slow").calls(
        'echo started > "$__pipeline_instance_dir/started"\\n'
        'while [[ ! -e "$__pipeline_instance_dir/release" ]]; do sleep 0.05; done\\n'
        ).calls('echo second step\\n')()
'''


def test_the_state_file_follows_a_running_task_and_a_task_left_alone_writes_its_own(tmp_path):
    code = write_pipeline(tmp_path, SLOW)
    env = dict(os.environ, PYTHONPATH=f"{code}:{REPO}")
    inst = tmp_path / "inst"
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst), "--generator",
                             "noforks:dag"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # the launcher only logs `step-started.0`: its orchestrator mirrors it to the state file
        wait_until(lambda: (inst / ".drypipe" / "slow" / "state.step-started.0").exists(), timeout=30,
                   what="the orchestrator to mirror step-started.0")
        assert (inst / "started").exists() and state_files(inst) == {"slow": ["state.step-started.0"]}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # no orchestrator watches it now: it writes its own state file as it goes on, to the end
    (inst / "release").touch()
    wait_until(lambda: state_files(inst).get("slow") == ["state.completed"], timeout=30,
               what="the orphaned task to write state.completed itself")
    # the next run ingests it: completed once, nothing run twice
    res = subprocess.run([sys.executable, "-m", "drypipe", "run", "-pid", str(inst), "--generator", "noforks:dag"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert (inst / "started").read_text() == "started\n"
    assert state_files(inst) == {"slow": ["state.completed"]}
