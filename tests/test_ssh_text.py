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
