"""Pure functions for remote execution: ssh_specs parsing, rsync command lines, and the
shell scripts run on a remote host (every value quoted: nothing reaches a remote shell
unquoted). Unit-tested in tests/test_ssh_text.py."""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from ..errors import DryPipeError


@dataclass(frozen=True)
class SshSpec:
    user: str
    host: str
    port: int
    key_file: str

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}" + (f":{self.port}" if self.port != 22 else "")


def parse_ssh_specs(specs: str) -> SshSpec:
    """'user@host:~/.ssh/id_rsa' or 'user@host:port:~/.ssh/id_rsa' (the key file local)."""
    if not specs or "@" not in specs:
        raise DryPipeError(f"ssh_specs {specs!r}: expected user@host:key_file or user@host:port:key_file")
    user, rest = specs.split("@", 1)
    parts = rest.split(":")
    if len(parts) == 2:
        host, port, key = parts[0], 22, parts[1]
    elif len(parts) == 3 and parts[1].isdigit():
        host, port, key = parts[0], int(parts[1]), parts[2]
    else:
        raise DryPipeError(f"ssh_specs {specs!r}: expected user@host:key_file or user@host:port:key_file")
    if not user or not host or not key:
        raise DryPipeError(f"ssh_specs {specs!r}: user, host and key file are required")
    return SshSpec(user, host, port, os.path.expanduser(key))


def remote_instance_dir(remote_base_dir: str, instance_dir: str) -> str:
    """Where an instance lives on a remote host: <remote_base_dir>/<instance dir name>."""
    return remote_base_dir.rstrip("/") + "/" + os.path.basename(os.path.abspath(instance_dir))


def ssh_command_for_rsync(spec: SshSpec, known_hosts: str, accept_new: bool = False) -> str:
    """The -e value given to rsync: OpenSSH checking the same known_hosts as paramiko."""
    strict = "accept-new" if accept_new else "yes"
    return shlex.join(["ssh", "-p", str(spec.port), "-i", spec.key_file, "-o", f"UserKnownHostsFile={known_hosts}",
                       "-o", f"StrictHostKeyChecking={strict}", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])


def rsync_upload_argv(spec: SshSpec, known_hosts: str, local_dir: str, remote_dir: str, files_from: str,
                      accept_new: bool = False) -> list[str]:
    """One rsync sending the paths listed in files_from (relative to local_dir) to remote_dir."""
    return ["rsync", "-a", "-r", "--relative", f"--files-from={files_from}",
            "-e", ssh_command_for_rsync(spec, known_hosts, accept_new),
            local_dir.rstrip("/") + "/", f"{spec.user}@{_bracket(spec.host)}:{remote_dir.rstrip('/')}/"]


def rsync_download_argv(spec: SshSpec, known_hosts: str, remote_dir: str, local_dir: str, files_from: str,
                        accept_new: bool = False) -> list[str]:
    """One rsync fetching the paths listed in files_from (relative to remote_dir) into local_dir."""
    return ["rsync", "-a", "-r", "--relative", f"--files-from={files_from}",
            "-e", ssh_command_for_rsync(spec, known_hosts, accept_new),
            f"{spec.user}@{_bracket(spec.host)}:{remote_dir.rstrip('/')}/", local_dir.rstrip("/") + "/"]


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def launch_script(remote_dir: str, items: list[tuple[str, int]]) -> str:
    """Start tasks detached on the remote host; prints 'key pid' per task."""
    lines = [f"cd {shlex.quote(remote_dir)} || exit 3"]
    for key, step in items:
        task = shlex.quote(f".drypipe/{key}/task")
        lines.append(f"setsid bash {task} run {int(step)} </dev/null >/dev/null 2>&1 & echo {shlex.quote(key)} $!")
    return "\n".join(lines) + "\n"


def poll_script(remote_dir: str, keys: list[str], squeue_argv: list[str] | None = None) -> str:
    """For each task: 'key state alive' (alive: 1 if its launcher process runs, else 0);
    with squeue_argv, first squeue's lines prefixed by 'Q|' (remote Slurm: one round trip)."""
    quoted = " ".join(shlex.quote(k) for k in keys)
    squeue = f"{shlex.join(squeue_argv)} | sed 's/^/Q|/' || echo 'Q-FAILED'\n" if squeue_argv else ""
    return f"""cd {shlex.quote(remote_dir)} || exit 3
{squeue}for k in {quoted}; do
  s=none
  for f in .drypipe/"$k"/state.*; do [[ -e $f ]] && s=${{f##*/state.}}; done
  alive=0
  if [[ -f .drypipe/$k/drypipe.log ]]; then
    pid=$(grep -o ' pid=[0-9]*' .drypipe/"$k"/drypipe.log | tail -n 1 | cut -d= -f2)
    [[ -n $pid && -d /proc/$pid ]] && alive=1
  fi
  echo "$k $s $alive"
done
"""


def parse_poll(stdout: str) -> dict[str, tuple[str, bool]]:
    out = {}
    for line in stdout.splitlines():
        if line.startswith("Q"):
            continue
        parts = line.split()
        if len(parts) == 3:
            out[parts[0]] = (parts[1], parts[2] == "1")
    return out


def parse_launch(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = parts[1]
    return out


def squeue_lines(stdout: str) -> str | None:
    """The squeue part of a poll's output (None when squeue failed)."""
    if "Q-FAILED" in stdout:
        return None
    return "\n".join(line[2:] for line in stdout.splitlines() if line.startswith("Q|"))


def sbatch_script(remote_dir: str, argv: list[str]) -> str:
    """Run sbatch in the remote instance dir (the jobs' working dir)."""
    return f"cd {shlex.quote(remote_dir)} || exit 3\n{shlex.join(argv)}\n"
