"""Pure functions for remote execution: ssh_specs parsing, rsync command lines, and the
shell scripts run on a remote host (every value quoted: nothing reaches a remote shell
unquoted). Unit-tested in tests/test_ssh_text.py."""
from __future__ import annotations

import os
import posixpath
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


LAUNCH_RECORD = "remote-launch"  # in a task dir on its host: 'PID EPOCH' of its last launch
LAUNCH_GRACE = 30  # seconds a launch whose launcher is neither recorded alive nor started counts as launching


def prepare_script(remote_dir: str) -> str:
    """The first command sent to a host: check its base dir (exit 4 when missing), create the
    instance's dirs, and print 'cpus=N' (its CPU count, the default cap of its tasks)."""
    base = posixpath.dirname(remote_dir.rstrip("/")) or "/"
    rd = shlex.quote(remote_dir)
    return (f"[[ -d {shlex.quote(base)} ]] || exit 4\n"
            f"mkdir -p {rd}/.drypipe {rd}/output || exit 5\n"
            'echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"\n')


def parse_cpus(stdout: str) -> int | None:
    """The CPU count printed by prepare_script (None when the host did not say)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("cpus="):
            n = line[len("cpus="):].strip()
            return int(n) if n.isdigit() and int(n) > 0 else None
    return None


QUEUE_DIR = ".drypipe/_remote_queue"  # on a host: the tasks waiting for a free slot, and its runner

# The runner of a host's queue: while tasks wait, launch the next one whenever fewer than `max`
# launchers (listed in `live`) still run. It exits when the queue is empty; the next launch
# that queues a task starts another. Every change of the queue happens under its flock.
_QUEUE_RUNNER = r"""q=.drypipe/_remote_queue
exec 9> "$q/lock"
while :; do
  flock 9
  read -r max < "$q/max" 2>/dev/null || max=1
  n=0 keep=
  if [[ -f $q/live ]]; then
    while read -r p k; do [[ -d /proc/$p ]] && { n=$((n + 1)); keep+="$p $k"$'\n'; }; done < "$q/live"
  fi
  printf '%s' "$keep" > "$q/live"
  if [[ ! -s $q/pending ]]; then rm -f "$q/runner"; flock -u 9; exit 0; fi
  while (( n < max )) && [[ -s $q/pending ]]; do
    read -r k s < "$q/pending"; sed -i 1d "$q/pending"
    setsid bash ".drypipe/$k/task" run "$s" </dev/null >/dev/null 2>&1 &
    printf -v t '%(%s)T' -1
    printf '%s %s\n' "$!" "$t" > ".drypipe/$k/remote-launch"
    printf '%s %s\n' "$!" "$k" >> "$q/live"
    n=$((n + 1))
  done
  flock -u 9
  sleep 0.05
done
"""

# launch_script's pieces: reset a task dir's state file; launch one task and record it
_LAUNCH_FUNCTIONS = r"""printf -v __now '%(%s)T' -1
__reset() {
  local d=.drypipe/$1 f
  for f in "$d"/state.*; do [[ -e $f && $f != "$d/state.launched" ]] && rm -f -- "$f"; done
  : > "$d/state.launched"
}
__launch() {
  local d=.drypipe/$1
  __reset "$1"
  setsid bash "$d/task" run "$2" </dev/null >/dev/null 2>&1 &
  printf '%s %s\n' "$!" "$__now" > "$d/remote-launch"
  printf '%s %s\n' "$1" "$!"
}
"""

# With a cap: launch while fewer than `max` launchers of the host's queue run, queue the rest
# (starting the queue's runner if none runs), all under the queue's flock.
_QUEUED_LAUNCH = r"""q=.drypipe/_remote_queue
mkdir -p "$q"
exec 9> "$q/lock"
flock 9
printf '%s\n' "$__max" > "$q/max"
__n=0 __keep=
if [[ -f $q/live ]]; then
  while read -r p k; do [[ -d /proc/$p ]] && { __n=$((__n + 1)); __keep+="$p $k"$'\n'; }; done < "$q/live"
fi
printf '%s' "$__keep" > "$q/live"
__runner=
[[ -f $q/runner ]] && read -r __runner < "$q/runner"
[[ -n $__runner && -d /proc/$__runner ]] || __runner=
__item() {
  if (( __n < __max )) && [[ ! -s $q/pending ]]; then
    __launch "$1" "$2"; printf '%s %s\n' "$!" "$1" >> "$q/live"; __n=$((__n + 1))
  else
    __reset "$1"; printf '%s %s\n' "$1" "$2" >> "$q/pending"
    if [[ -z $__runner ]]; then
      printf '%s' "$__runner_script" > "$q/runner.sh"
      setsid bash "$q/runner.sh" </dev/null >/dev/null 2>&1 &
      __runner=$!; printf '%s\n' "$__runner" > "$q/runner"
    fi
    printf '%s %s\n' "$__runner" "$__now" > ".drypipe/$1/remote-launch"
    printf '%s %s\n' "$1" "$__runner"
  fi
}
"""


def launch_script(remote_dir: str, items: list[tuple[str, int]], max_parallel: int | None = None) -> str:
    """Start tasks detached on the remote host; prints 'key pid' per task.

    Before it returns, each launch is recorded in the task dir (LAUNCH_RECORD: the launcher's
    pid, from $!, and the launch time): a poll right after it sees the launcher alive, even
    when the launcher is slow to log its `start ... pid=` line. The task dir's state file is
    made `launched` first: an earlier attempt's ending there is not this attempt's.

    With max_parallel, at most that many launchers run at once on the host (those of earlier
    launches included): the others wait in the host's queue (QUEUE_DIR), started by its runner
    as launchers end, with no round trip per task; a queued task's launch record names the
    runner until its own launcher starts."""
    assert LAUNCH_RECORD == "remote-launch" and QUEUE_DIR == ".drypipe/_remote_queue"  # as the scripts say
    lines = [f"cd {shlex.quote(remote_dir)} || exit 3", _LAUNCH_FUNCTIONS]
    if max_parallel is None:
        lines += [f"__launch {shlex.quote(k)} {int(s)}" for k, s in items]
    else:
        lines += [f"__max={int(max_parallel)}", f"__runner_script={shlex.quote(_QUEUE_RUNNER)}", _QUEUED_LAUNCH]
        lines += [f"__item {shlex.quote(k)} {int(s)}" for k, s in items]
        lines.append("flock -u 9")
    return "\n".join(lines) + "\n"


def kill_script(remote_dir: str, keys: list[str]) -> str:
    """`task kill` of each task in its remote task dir (SIGTERM to its group, or scancel)."""
    lines = [f"cd {shlex.quote(remote_dir)} || exit 3"]
    lines += [f"bash .drypipe/{shlex.quote(k)}/task kill || :" for k in keys]
    return "\n".join(lines) + "\n"


def poll_script(remote_dir: str, keys: list[str], squeue_argv: list[str] | None = None,
                grace: float = LAUNCH_GRACE) -> str:
    """For each task: 'key state alive'; alive is 1 when its launcher runs (the pid its launch
    recorded, else the pid of a `start` line logged since that launch), 2 when it is still
    launching (launched less than `grace` seconds ago, its launcher neither alive nor started
    since: it may not have recorded itself yet), else 0. With squeue_argv, first squeue's lines
    prefixed by 'Q|', or 'Q-FAILED' (remote Slurm: one round trip)."""
    quoted = " ".join(shlex.quote(k) for k in keys)
    squeue = f"{{ {shlex.join(squeue_argv)} | sed 's/^/Q|/'; }} || echo 'Q-FAILED'\n" if squeue_argv else ""
    return f"""cd {shlex.quote(remote_dir)} || exit 3
set -o pipefail
{squeue}printf -v now '%(%s)T' -1
for k in {quoted}; do
  d=.drypipe/$k
  s=none
  for f in "$d"/state.*; do [[ -e $f ]] && s=${{f##*/state.}}; done
  alive=0 lp= lt= sl=
  [[ -f $d/{LAUNCH_RECORD} ]] && read -r lp lt _ < "$d/{LAUNCH_RECORD}"
  if [[ $lp =~ ^[0-9]+$ && -d /proc/$lp ]]; then
    alive=1
  else
    if [[ -f $d/drypipe.log ]]; then
      while IFS= read -r line; do [[ $line == *" start step="*" pid="* ]] && sl=$line; done < "$d/drypipe.log"
    fi
    started=0
    if [[ -n $sl ]]; then
      ep=${{sl#* }}; ep=${{ep%% *}}; ep=${{ep%.*}}
      if [[ ! $lt =~ ^[0-9]+$ || ! $ep =~ ^[0-9]+$ ]] || (( ep >= lt )); then
        started=1
        p=${{sl##* pid=}}; p=${{p%% *}}
        [[ $p =~ ^[0-9]+$ && -d /proc/$p ]] && alive=1
      fi
    fi
    if (( ! started )) && [[ $lt =~ ^[0-9]+$ ]] && (( now - lt < {int(grace)} )); then alive=2; fi
  fi
  echo "$k $s $alive"
done
"""


def parse_poll(stdout: str) -> dict[str, tuple[str, bool]]:
    """key -> (state file name or 'none', launcher running or still launching)."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("Q"):
            continue
        parts = line.split()
        if len(parts) == 3:
            out[parts[0]] = (parts[1], parts[2] in ("1", "2"))
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


def sbatch_script(remote_dir: str, argv: list[str], job_id_file: str | None = None) -> str:
    """Run sbatch (--parsable) in the remote instance dir (the jobs' working dir); with
    job_id_file (relative to it), also append the job id there, on the host: found again
    even when the orchestrator dies before it records the answer."""
    head = f"cd {shlex.quote(remote_dir)} || exit 3\n"
    if not job_id_file:
        return f"{head}{shlex.join(argv)}\n"
    return (f"{head}out=$({shlex.join(argv)})\nrc=$?\n"
            '[[ -n $out ]] && printf \'%s\\n\' "$out"\n'
            "(( rc == 0 )) || exit $rc\n"
            "job=${out##*$'\\n'}; job=${job%%;*}\n"
            f"[[ $job =~ ^[0-9]+$ ]] && printf '%s\\n' \"$job\" >> {shlex.quote(job_id_file)}\n"
            "exit 0\n")


# -- recovering remote Slurm job ids (an orchestrator died between sbatch and its commit) ------------

def squeue_comments_argv(job_name: str) -> list[str]:
    """squeue of an instance's jobs (array elements one per line) with their --comment, which is
    the name of the array dir they were submitted from."""
    return ["squeue", "-h", "-r", "-t", "all", f"--name={job_name}", "-o", "%i|%k"]


def last_array_listing(listings: dict[str, list[str]], keys, made: dict[str, float] | None = None,
                       launched_at: dict[str, float] | None = None) -> dict[str, tuple[str, int]]:
    """key -> (array dir name, index) of the last array dir (by number) listing the key.

    listings: array dir name -> its task keys (line i = index i). With made (dir -> time its
    task-keys.tsv was written) and launched_at (key -> its launch time), a dir written before
    the key's launch is an earlier attempt's and does not count."""
    wanted = set(keys)
    out: dict[str, tuple[str, int]] = {}
    for d in sorted(listings, key=int):
        for i, k in enumerate(listings[d]):
            if k not in wanted:
                continue
            if made is not None and launched_at and k in launched_at and made.get(d, 0.0) < launched_at[k] - 1.0:
                continue
            out[k] = (d, i)
    return out


def recover_jobs_script(remote_dir: str, dirs: list[str], squeue_argv: list[str]) -> str:
    """For each array dir (name under .drypipe/_arrays) whose job-id file on the host has a
    job id: 'J|dir|job'; then squeue's 'job|comment' lines prefixed by 'C|' (or 'C-FAILED')."""
    quoted = " ".join(shlex.quote(d) for d in dirs)
    return f"""cd {shlex.quote(remote_dir)} || exit 3
set -o pipefail
for d in {quoted}; do
  j=
  f=.drypipe/_arrays/$d/job-id
  if [[ -f $f ]]; then while IFS= read -r line; do [[ -n $line ]] && j=$line; done < "$f"; fi
  [[ -n $j ]] && echo "J|$d|$j"
done
{{ {shlex.join(squeue_argv)} | sed 's/^/C|/'; }} || echo 'C-FAILED'
"""


def parse_recover_jobs(stdout: str) -> dict[str, str]:
    """Array dir name -> its array job id, from recover_jobs_script's output: the host's job-id
    file, else the first squeue line whose comment is the dir's name."""
    files: dict[str, str] = {}
    comments: dict[str, str] = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if parts[0] == "J" and len(parts) == 3 and parts[2].isdigit():
            files[parts[1]] = parts[2]
        elif parts[0] == "C" and len(parts) >= 3 and parts[1]:
            job = parts[1].split("_")[0]
            if job.isdigit():
                comments.setdefault(parts[2], job)
    return {**comments, **files}


def array_job_ids(last: dict[str, tuple[str, int]], jobs: dict[str, str]) -> dict[str, str]:
    """key -> '<array job>_<index>' for the keys whose array dir's job is known."""
    return {k: f"{jobs[d]}_{i}" for k, (d, i) in last.items() if jobs.get(d)}
