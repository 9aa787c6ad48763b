"""The pure functions of remote execution: ssh_specs, rsync command lines, remote scripts."""
import shlex
import subprocess

import pytest

from drypipe.errors import DryPipeError
from drypipe.executors import ssh_text as sx


@pytest.mark.parametrize("specs,expected", [
    ("me@host:~/.ssh/id_rsa", ("me", "host", 22)),
    ("me@10.0.0.1:2222:/keys/k", ("me", "10.0.0.1", 2222)),
])
def test_parse_ssh_specs(specs, expected):
    s = sx.parse_ssh_specs(specs)
    assert (s.user, s.host, s.port) == expected
    assert not s.key_file.startswith("~")


@pytest.mark.parametrize("bad", ["host:key", "me@host", "me@host:x:y:z", "@host:k", ""])
def test_bad_ssh_specs_are_clear_errors(bad):
    with pytest.raises(DryPipeError, match="ssh_specs"):
        sx.parse_ssh_specs(bad)


def test_remote_instance_dir_is_under_the_base_dir():
    assert sx.remote_instance_dir("/remote/base/", "/data/runs/run-12") == "/remote/base/run-12"


def test_rsync_checks_host_keys_with_the_pinned_file():
    spec = sx.parse_ssh_specs("me@h:2222:/k/id")
    argv = sx.rsync_upload_argv(spec, "/kh", "/local/inst", "/remote/inst", "/tmp/list")
    assert argv[:5] == ["rsync", "-a", "-r", "--relative", "--files-from=/tmp/list"]
    ssh = shlex.split(argv[argv.index("-e") + 1])
    assert ssh[:5] == ["ssh", "-p", "2222", "-i", "/k/id"]
    assert "StrictHostKeyChecking=yes" in ssh and "UserKnownHostsFile=/kh" in ssh and "BatchMode=yes" in ssh
    assert argv[-2:] == ["/local/inst/", "me@h:/remote/inst/"]
    down = sx.rsync_download_argv(spec, "/kh", "/remote/inst", "/local/inst", "/tmp/list", accept_new=True)
    assert down[-2:] == ["me@h:/remote/inst/", "/local/inst/"]
    assert "StrictHostKeyChecking=accept-new" in down[down.index("-e") + 1]


def test_launch_and_poll_scripts_quote_everything(tmp_path):
    """Run the scripts with bash on a fake instance: keys with quotes cannot break out."""
    inst = tmp_path / "inst dir"
    key = "k'1"
    d = inst / ".drypipe" / key
    d.mkdir(parents=True)
    (d / "task").write_text('cd "$(dirname "$0")"; echo "x start step=0 pid=$BASHPID" > drypipe.log;'
                            ' : > state.step-started.0; echo "$BASHPID" > started; sleep 5\n')
    out = subprocess.run(["bash", "-c", sx.launch_script(str(inst), [(key, 0)])], capture_output=True, text=True,
                         check=True).stdout
    pids = sx.parse_launch(out)
    assert list(pids) == [key]
    import time
    deadline = time.monotonic() + 10
    while not (d / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (d / "started").exists()
    poll = subprocess.run(["bash", "-c", sx.poll_script(str(inst), [key, "absent"])], capture_output=True, text=True,
                          check=True).stdout
    states = sx.parse_poll(poll)
    assert states == {key: ("step-started.0", True), "absent": ("none", False)}
    subprocess.run(["kill", pids[key]])
    deadline = time.monotonic() + 10
    while sx.parse_poll(subprocess.run(["bash", "-c", sx.poll_script(str(inst), [key])], capture_output=True,
                                       text=True).stdout)[key][1] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sx.parse_poll(subprocess.run(["bash", "-c", sx.poll_script(str(inst), [key])], capture_output=True,
                                        text=True).stdout)[key] == ("step-started.0", False)


def test_squeue_lines_in_a_poll():
    out = "Q|12_0|RUNNING|None\nQ|12_1|COMPLETED|None\nk1 step-started.0 0\n"
    assert sx.squeue_lines(out) == "12_0|RUNNING|None\n12_1|COMPLETED|None"
    assert sx.parse_poll(out) == {"k1": ("step-started.0", False)}
    assert sx.squeue_lines("Q-FAILED\n") is None


# -- a launcher polled before it recorded itself (defect: it looked ended) ------------------------

def _bash(script, **kw):
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, **kw)


def _poll(inst, keys):
    return sx.parse_poll(_bash(sx.poll_script(str(inst), keys), check=True).stdout)


def _wait_for(path, timeout=10.0):
    import time
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), path


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# a launcher slow to start: 1.5 s before it logs its `start ... pid=` line (as the runtime does)
SLOW_TASK = ('cd "$(dirname "$0")"; sleep 1.5\n'
             'printf "%(%Y-%m-%dT%H:%M:%S)T %s start step=0 pid=%s\\n" -1 "$EPOCHREALTIME" "$BASHPID" >> drypipe.log\n'
             'for f in state.*; do mv -f "$f" state.step-started.0; done; : > started; exec sleep 30\n')


def _slow_task(inst, key):
    d = inst / ".drypipe" / key
    d.mkdir(parents=True)
    (d / "task").write_text(SLOW_TASK)
    return d


def test_a_launcher_that_has_not_logged_its_start_is_running_not_ended(tmp_path):
    import os
    import signal
    inst = tmp_path / "inst"
    d = _slow_task(inst, "k1")
    pids = sx.parse_launch(_bash(sx.launch_script(str(inst), [("k1", 0)]), check=True).stdout)
    try:
        assert _poll(inst, ["k1"]) == {"k1": ("launched", True)}  # polled at once: not started yet
        _wait_for(d / "started")
        assert _poll(inst, ["k1"]) == {"k1": ("step-started.0", True)}
        logged_pid = (d / "drypipe.log").read_text().split("pid=")[1].split()[0]
        assert logged_pid == pids["k1"]  # what the launch recorded is the launcher itself
    finally:
        os.killpg(int(pids["k1"]), signal.SIGKILL)
    import time
    deadline = time.monotonic() + 10
    while _poll(inst, ["k1"])["k1"][1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _poll(inst, ["k1"]) == {"k1": ("step-started.0", False)}  # started, then died: ended


def test_a_relaunch_does_not_show_the_previous_attempts_ending(tmp_path):
    """The previous attempt's state.failed.0 and `start` line (its pid dead) are in the task dir:
    until the new launcher starts, the task is launched and alive, not failed."""
    import os
    import signal
    inst = tmp_path / "inst"
    d = _slow_task(inst, "k1")
    (d / "state.failed.0").write_text("")
    (d / "drypipe.log").write_text(f"2020-01-01T00:00:00 1577836800.5 start step=0 pid={_dead_pid()}\n"
                                   "2020-01-01T00:00:01 1577836801.5 failed.0\n")
    pids = sx.parse_launch(_bash(sx.launch_script(str(inst), [("k1", 0)]), check=True).stdout)
    try:
        assert _poll(inst, ["k1"]) == {"k1": ("launched", True)}
        assert sorted(p.name for p in d.glob("state.*")) == ["state.launched"]
    finally:
        os.killpg(int(pids["k1"]), signal.SIGKILL)


def test_poll_grace_for_a_launch_whose_launcher_is_not_recorded_alive(tmp_path):
    """The launch record (pid, time) says a launch happened; its pid is gone (e.g. setsid had to
    fork): within the grace period and with no `start` line since, the task is still launching."""
    import os
    import time
    inst = tmp_path / "inst"
    now = int(time.time())
    cases = {  # key: (launch record, drypipe.log)
        "fresh": (f"{_dead_pid()} {now}\n", ""),
        "stale": (f"{_dead_pid()} {now - int(sx.LAUNCH_GRACE) - 5}\n", ""),
        "forked": (f"{_dead_pid()} {now}\n", f"x {now}.5 start step=0 pid={os.getpid()}\n"),
        "died": (f"{_dead_pid()} {now}\n", f"x {now}.5 start step=0 pid={_dead_pid()}\n"),
        "old-start": (f"{_dead_pid()} {now}\n", f"x {now - 100}.5 start step=0 pid={os.getpid()}\n"),
    }
    for key, (record, log) in cases.items():
        d = inst / ".drypipe" / key
        d.mkdir(parents=True)
        (d / "state.launched").write_text("")
        (d / sx.LAUNCH_RECORD).write_text(record)
        if log:
            (d / "drypipe.log").write_text(log)
    out = _bash(sx.poll_script(str(inst), list(cases)), check=True).stdout
    assert sorted(out.splitlines()) == sorted([
        "fresh launched 2", "stale launched 0", "forked launched 1", "died launched 0",
        "old-start launched 2"])  # an earlier attempt's start line (and its pid) do not count
    assert sx.parse_poll(out) == {"fresh": ("launched", True), "stale": ("launched", False),
                                  "forked": ("launched", True), "died": ("launched", False),
                                  "old-start": ("launched", True)}


def test_parse_poll_on_recorded_output():
    out = "Q|12_0|RUNNING|None\nk1 launched 2\nk2 step-started.1 1\nk3 completed 0\nk4 none 0\n"
    assert sx.parse_poll(out) == {"k1": ("launched", True), "k2": ("step-started.1", True),
                                  "k3": ("completed", False), "k4": ("none", False)}


def test_a_failed_squeue_in_a_poll_is_reported_not_taken_for_an_empty_queue(tmp_path):
    (tmp_path / "inst").mkdir()
    out = _bash(sx.poll_script(str(tmp_path / "inst"), ["k"], ["false"]), check=True).stdout
    assert sx.squeue_lines(out) is None  # (squeue | sed) used to hide squeue's failure


# -- the first command sent to a host also asks its CPU count --------------------------------------

def test_prepare_script_creates_the_instance_and_says_the_cpu_count(tmp_path):
    inst = tmp_path / "base" / "inst"
    res = _bash(sx.prepare_script(str(inst)))
    assert res.returncode == 4  # no base dir
    (tmp_path / "base").mkdir()
    res = _bash(sx.prepare_script(str(inst)), check=True)
    assert (inst / ".drypipe").is_dir() and (inst / "output").is_dir()
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    assert sx.parse_cpus(res.stdout) == int(nproc)


@pytest.mark.parametrize("stdout,cpus", [("cpus=16\n", 16), ("motd line\ncpus=2\n", 2), ("", None),
                                         ("cpus=\n", None), ("cpus=0\n", None)])
def test_parse_cpus(stdout, cpus):
    assert sx.parse_cpus(stdout) == cpus


# -- remote Slurm: job ids recorded on both sides, recovered after a crash -------------------------

def _stub(tmp_path, name, body):
    b = tmp_path / "bin"
    b.mkdir(exist_ok=True)
    (b / name).write_text("#!/bin/bash\n" + body)
    (b / name).chmod(0o755)
    import os
    return {**os.environ, "PATH": f"{b}:{os.environ['PATH']}"}


def test_sbatch_script_records_the_job_id_on_the_host(tmp_path):
    inst = tmp_path / "inst"
    (inst / ".drypipe" / "_arrays" / "3").mkdir(parents=True)
    env = _stub(tmp_path, "sbatch", 'echo "77;cluster-a"\n')
    argv = ["sbatch", "--parsable", "--comment=3", ".drypipe/_arrays/3/array.sh"]
    res = _bash(sx.sbatch_script(str(inst), argv, ".drypipe/_arrays/3/job-id"), env=env, check=True)
    assert res.stdout == "77;cluster-a\n"
    res = _bash(sx.sbatch_script(str(inst), argv, ".drypipe/_arrays/3/job-id"), env=env, check=True)
    assert (inst / ".drypipe" / "_arrays" / "3" / "job-id").read_text() == "77\n77\n"
    env = _stub(tmp_path, "sbatch", 'echo "sbatch: error: invalid account" >&2; exit 1\n')
    (inst / ".drypipe" / "_arrays" / "3" / "job-id").unlink()
    res = _bash(sx.sbatch_script(str(inst), argv, ".drypipe/_arrays/3/job-id"), env=env)
    assert res.returncode == 1 and "invalid account" in res.stderr
    assert not (inst / ".drypipe" / "_arrays" / "3" / "job-id").exists()


def test_last_array_listing_of_each_task():
    listings = {"1": ["a", "b"], "10": ["a"], "2": ["b", "c"], "9": []}
    assert sx.last_array_listing(listings, ["a", "b", "c", "z"]) == {"a": ("10", 0), "b": ("2", 0), "c": ("2", 1)}
    # an array dir written before the task's launch is an earlier attempt's
    made = {"1": 100.0, "10": 50.0, "2": 300.0, "9": 400.0}
    assert sx.last_array_listing(listings, ["a", "b", "c"], made, {"a": 90.0, "b": 200.0}) == \
        {"a": ("1", 0), "b": ("2", 0), "c": ("2", 1)}
    assert sx.last_array_listing(listings, ["b"], made, {"b": 350.0}) == {}


# `squeue -h -r -t all --name=... -o '%i|%k'` of the test cluster (array 13, --comment=7),
# prefixed as recover_jobs_script prints it, after the job-id files read on the host
RECORDED_RECOVER = "J|7|41\nC|13_1|7\nC|13_2|7\nC|13_0|7\nC|12_0|(null)\nC|14_0|8\nC|15_[3-5]|9\n"


def test_parse_recover_jobs_on_recorded_output():
    assert sx.parse_recover_jobs(RECORDED_RECOVER) == {"7": "41", "8": "14", "9": "15", "(null)": "12"}
    assert sx.parse_recover_jobs("J|7|41\nC-FAILED\n") == {"7": "41"}
    assert sx.array_job_ids({"a": ("7", 0), "b": ("8", 2), "c": ("6", 1)}, {"7": "41", "8": "14"}) == \
        {"a": "41_0", "b": "14_2"}


def test_recover_jobs_script_reads_the_hosts_job_id_files_then_squeue(tmp_path):
    inst = tmp_path / "inst"
    for d, text in (("7", "40\n41\n"), ("8", "")):
        (inst / ".drypipe" / "_arrays" / d).mkdir(parents=True)
        (inst / ".drypipe" / "_arrays" / d / "job-id").write_text(text)
    env = _stub(tmp_path, "squeue", 'echo "$*" > "$(dirname "$0")/args"; printf "13_0|8\\n13_1|8\\n"\n')
    argv = sx.squeue_comments_argv("drypipe-abc")
    out = _bash(sx.recover_jobs_script(str(inst), ["7", "8", "9"], argv), env=env, check=True).stdout
    assert out == "J|7|41\nC|13_0|8\nC|13_1|8\n"
    assert (tmp_path / "bin" / "args").read_text().split() == ["-h", "-r", "-t", "all", "--name=drypipe-abc",
                                                               "-o", "%i|%k"]
    assert sx.parse_recover_jobs(out) == {"7": "41", "8": "13"}
    env = _stub(tmp_path, "squeue", "exit 1\n")
    out = _bash(sx.recover_jobs_script(str(inst), ["8"], argv), env=env, check=True).stdout
    assert out == "C-FAILED\n"


def test_launch_with_a_cap_queues_the_rest_on_the_host_and_runs_each_once(tmp_path):
    """6 tasks, at most 2 at once, launched in two commands: the host's queue runner starts the
    waiting ones as launchers end; none runs twice, never more than 2 at once."""
    import time
    inst = tmp_path / "inst"
    keys = [f"k{i}" for i in range(6)]
    for k in keys:
        d = inst / ".drypipe" / k
        d.mkdir(parents=True)
        (d / "task").write_text(f'cd "$(dirname "$0")"; echo "{k} start $EPOCHREALTIME" >> ../../times; '
                                f'sleep 0.3; echo "{k} end $EPOCHREALTIME" >> ../../times; : > done\n')
    first = sx.parse_launch(_bash(sx.launch_script(str(inst), [(k, 0) for k in keys[:4]], 2), check=True).stdout)
    second = sx.parse_launch(_bash(sx.launch_script(str(inst), [(k, 0) for k in keys[4:]], 2), check=True).stdout)
    assert set(first) | set(second) == set(keys)
    deadline = time.monotonic() + 20
    while not all((inst / ".drypipe" / k / "done").exists() for k in keys) and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = (inst / "times").read_text().splitlines()
    assert sorted(line.split()[0] for line in lines if " start " in line) == keys  # each once
    events = sorted((float(at), 0 if what == "end" else 1) for _, what, at in (line.split() for line in lines))
    running = most = 0
    for _, start in events:
        running += 1 if start else -1
        most = max(most, running)
    assert most == 2
    while (inst / ".drypipe" / "_remote_queue" / "runner").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (inst / ".drypipe" / "_remote_queue" / "runner").exists()  # the runner left when done


def test_every_backend_implements_the_executor_contract(tmp_path):
    from drypipe.executors.base import Executor
    from drypipe.executors.local import LocalExecutor
    from drypipe.executors.remote import RemoteExecutor
    from drypipe.executors.slurm import SlurmExecutor
    for ex in (LocalExecutor(str(tmp_path / "runtime.sh")), SlurmExecutor(str(tmp_path)), RemoteExecutor(str(tmp_path))):
        assert isinstance(ex, Executor) and ex.running == 0 and ex.poll(0) == []
        ex.close()


def test_kill_script_runs_task_kill_in_each_remote_task_dir(tmp_path):
    inst = tmp_path / "inst"
    for k in ("a", "b'c"):
        d = inst / ".drypipe" / k
        d.mkdir(parents=True)
        (d / "task").write_text('[[ $1 == kill ]] && : > "$(dirname "$0")/killed"\n')
    _bash(sx.kill_script(str(inst), ["a", "b'c", "absent"]), check=True)
    assert (inst / ".drypipe" / "a" / "killed").exists() and (inst / ".drypipe" / "b'c" / "killed").exists()
