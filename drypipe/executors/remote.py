"""Remote hosts over SSH: tasks run detached in <remote_base_dir>/<instance>/ on the host.

Per polling round and host: one rsync uploads the files of every task launched (its
launcher, the runtime, its inputs; for python steps the pipeline code and DryPipe), one
command starts them, one command reports the state of every task watched there, one rsync
downloads the tasks that ended. One paramiko connection per host is reused for the run;
host keys are checked against known_hosts."""
from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field

from ..errors import DryPipeError
from ..state import states as S
from . import ssh_text as sx
from .base import Ended, Executor

log = logging.getLogger("drypipe.remote")


def known_hosts_file() -> str:
    return os.environ.get("DRYPIPE_SSH_KNOWN_HOSTS") or os.path.expanduser("~/.ssh/known_hosts")


class HostUnreachable(Exception):
    pass


class Connection:
    """One SSH connection to a host, opened on first use and reopened after a failure."""

    def __init__(self, spec: sx.SshSpec, known_hosts: str, accept_new: bool, counters: dict):
        self.spec, self.known_hosts, self.accept_new = spec, known_hosts, accept_new
        self.client = None
        self.counters = counters

    def _connect(self):
        import paramiko
        client = paramiko.SSHClient()
        if os.path.exists(self.known_hosts):
            client.load_host_keys(self.known_hosts)
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy() if self.accept_new else paramiko.RejectPolicy())
        label = self.spec.label
        try:
            client.connect(self.spec.host, self.spec.port, username=self.spec.user, key_filename=self.spec.key_file,
                           timeout=10, banner_timeout=10, auth_timeout=10, allow_agent=False, look_for_keys=False)
        except paramiko.BadHostKeyException as e:
            raise DryPipeError(f"{label}: the host key CHANGED (it does not match {self.known_hosts}); "
                               "refusing to connect") from e
        except paramiko.AuthenticationException as e:
            raise DryPipeError(f"{label}: authentication failed with key {self.spec.key_file}") from e
        except paramiko.SSHException as e:
            if "not found in known_hosts" in str(e):
                raise DryPipeError(f"{label}: unknown host key (not in {self.known_hosts}); add it, or allow "
                                   "new keys with DRYPIPE_SSH_ACCEPT_NEW=1") from e
            raise HostUnreachable(f"{label}: {e}") from e
        except (OSError, EOFError) as e:  # (socket.error is OSError)
            raise HostUnreachable(f"{label}: {e}") from e
        except FileNotFoundError as e:
            raise DryPipeError(f"{label}: key file {self.spec.key_file} not found") from e
        if self.accept_new:
            client.save_host_keys(self.known_hosts)
        self.counters["connections"] += 1
        self.client = client

    def run(self, script: str, timeout: float = 120) -> tuple[int, str, str]:
        """Run a bash script on the host; (exit status, stdout, stderr)."""
        if self.client is None:
            self._connect()
        try:
            stdin, stdout, stderr = self.client.exec_command("bash -s", timeout=timeout)
            stdin.write(script)
            stdin.channel.shutdown_write()
            out = stdout.read().decode("utf-8", "replace")
            err = stderr.read().decode("utf-8", "replace")
            return stdout.channel.recv_exit_status(), out, err
        except Exception as e:  # a dropped connection: paramiko raises several kinds
            self.close()
            raise HostUnreachable(f"{self.spec.label}: {type(e).__name__}: {e}") from e

    def close(self):
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
            self.client = None


@dataclass
class Host:
    spec: sx.SshSpec
    remote_dir: str
    conn: Connection
    watched: dict = field(default_factory=dict)  # key -> last remote state name
    jobs: dict = field(default_factory=dict)  # key -> Slurm job id, for remote Slurm tasks
    prepared: bool = False
    runtime_sent: bool = False
    cpus: int | None = None  # its CPU count (said by the first command sent to it)
    python_ready: bool = False
    code_ready: bool = False
    unreachable_since: float | None = None


def env_max_parallel() -> int | None:
    """DRYPIPE_REMOTE_MAX_PARALLEL: at most this many remote process tasks at once per host."""
    v = os.environ.get("DRYPIPE_REMOTE_MAX_PARALLEL", "").strip()
    if not v:
        return None
    if not v.isdigit() or int(v) < 1:
        raise DryPipeError(f"DRYPIPE_REMOTE_MAX_PARALLEL must be a positive integer, not {v!r}")
    return int(v)


def python_uploads(drypipe_root: str, packages: dict[str, str]) -> list[tuple[str, str]]:
    """What python steps need on a host: DryPipe's packages and the pipeline's top packages."""
    return [(os.path.join(drypipe_root, "drypipe"), "_python/drypipe"),
            (os.path.join(drypipe_root, "dry_pipe"), "_python/dry_pipe")] + \
        [(path, f"_python/{name}") for name, path in sorted(packages.items())]


class RemoteExecutor(Executor):
    name = "remote"

    def __init__(self, instance_dir: str, sleep_schedule=(0.0, 1.0, 3.0, 5.0, 10.0), accept_new: bool | None = None):
        self.instance_dir = instance_dir
        self.sleep_schedule = tuple(sleep_schedule) or (1.0,)
        self.known_hosts = known_hosts_file()
        self.accept_new = accept_new if accept_new is not None else os.environ.get("DRYPIPE_SSH_ACCEPT_NEW") == "1"
        self.hosts: dict[tuple, Host] = {}
        self.counters = {"connections": 0, "rsync": 0, "ssh_commands": 0}
        self._poll_index = 0
        self._next_poll = 0.0

    @property
    def running(self) -> int:
        return sum(len(h.watched) for h in self.hosts.values())

    def host_for(self, conf) -> Host:
        spec = sx.parse_ssh_specs(conf.ssh_specs)
        if not conf.remote_base_dir:
            raise DryPipeError(f"ssh_specs {conf.ssh_specs!r} needs remote_base_dir")
        remote_dir = sx.remote_instance_dir(conf.remote_base_dir, self.instance_dir)
        k = (spec, remote_dir)
        h = self.hosts.get(k)
        if h is None:
            h = self.hosts[k] = Host(spec, remote_dir, Connection(spec, self.known_hosts, self.accept_new, self.counters))
        return h

    def _run(self, host: Host, script: str) -> tuple[int, str, str]:
        self.counters["ssh_commands"] += 1
        return host.conn.run(script)

    # -- transfer -----------------------------------------------------------------------------
    def rsync(self, host: Host, paths: list[str], upload: bool) -> None:
        if not paths:
            return
        import tempfile  # (here: a local run does not pay its import)
        with tempfile.NamedTemporaryFile("w", suffix=".files", delete=False) as f:
            f.write("\n".join(paths) + "\n")
            files_from = f.name
        try:
            args = (host.spec, self.known_hosts, self.instance_dir, host.remote_dir, files_from, self.accept_new) \
                if upload else (host.spec, self.known_hosts, host.remote_dir, self.instance_dir, files_from,
                                self.accept_new)
            argv = sx.rsync_upload_argv(*args) if upload else sx.rsync_download_argv(*args)
            self.counters["rsync"] += 1
            res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        finally:
            os.unlink(files_from)
        if res.returncode != 0:
            err = res.stderr.strip().splitlines()
            msg = next((ln for ln in err if "No space left" in ln), err[-1] if err else "")
            if upload and "No space" not in msg:  # rsync can lose the reason: ask the host
                msg = self._disk_full(host) or msg
            msg = msg or f"rsync exited with status {res.returncode}"
            if res.returncode in (12, 255) and "No space" not in msg:
                raise HostUnreachable(f"{host.spec.label}: rsync: {msg}")
            raise DryPipeError(f"{host.spec.label}: rsync {'upload' if upload else 'download'} failed: {msg}")

    def _disk_full(self, host: Host) -> str | None:
        """'No space left on device ...' when the remote instance's filesystem is (nearly) full."""
        try:
            rc, out, _ = self._run(host, f"df -Pk {shlex.quote(host.remote_dir)} | tail -n 1\n")
            avail = int(out.split()[3])
        except (HostUnreachable, IndexError, ValueError):
            return None
        if avail < 1024:
            return f"No space left on device: {host.remote_dir} has {avail} KiB free"
        return None

    def ensure_prepared(self, host: Host) -> None:
        """The first command sent to a host: check its base dir, create the instance's dirs,
        learn its CPU count."""
        if host.prepared:
            return
        rc, out, err = self._run(host, sx.prepare_script(host.remote_dir))
        if rc == 4:
            raise DryPipeError(f"{host.spec.label}: remote_base_dir {os.path.dirname(host.remote_dir)} does not exist")
        if rc != 0:
            raise DryPipeError(f"{host.spec.label}: cannot create {host.remote_dir}: {err.strip()}")
        host.cpus = sx.parse_cpus(out)
        host.prepared = True

    def max_parallel(self, host: Host) -> int:
        """How many remote process tasks may run at once on the host: DRYPIPE_REMOTE_MAX_PARALLEL,
        else its CPU count (asked once, by the first command sent to it)."""
        limit = env_max_parallel()
        if limit is not None:
            return limit
        self.ensure_prepared(host)
        return max(1, host.cpus or 1)

    def running_processes(self, host: Host) -> set[str]:
        """Keys of the process tasks (not Slurm jobs) watched on the host."""
        return {k for k in host.watched if k not in host.jobs}

    def prepare_host(self, host: Host, need_python: bool, code_dir: str, drypipe_root: str, python: str,
                     packages: dict[str, str] | None = None, need_code: bool = False) -> list[str]:
        """Check the remote dirs (and python); the extra paths to upload the first time."""
        extra = []
        self.ensure_prepared(host)
        if not host.runtime_sent:
            host.runtime_sent = True
            extra.append(".drypipe/_runtime/task-runner.sh")
        if need_python and not host.python_ready:
            rc, out, err = self._run(host, f"{shlex.quote(python)} -c 'import sys; sys.exit(sys.version_info < (3, 8))'\n")
            if rc != 0:
                raise DryPipeError(f"{host.spec.label}: remote python {python!r} is missing or older than 3.8 "
                                   f"(set TaskConf(python_bin=...)): {err.strip()[-200:]}")
            self._upload_dirs(host, [(code_dir, "_code")] + python_uploads(drypipe_root, packages or {}))
            host.python_ready = host.code_ready = True
        elif need_code and not host.code_ready:  # scripts called by bash steps
            self._upload_dirs(host, [(code_dir, "_code")])
            host.code_ready = True
        return extra

    def _upload_dirs(self, host: Host, uploads: list[tuple[str, str]]) -> None:
        """Local dirs -> .drypipe/<dst> in the remote instance (the pipeline's code dir as _code,
        DryPipe and the top packages of dotted python-call modules under _python)."""
        for src, dst in uploads:
            argv = ["rsync", "-a", "--exclude=__pycache__", "--exclude=*.so", "-e",
                    sx.ssh_command_for_rsync(host.spec, self.known_hosts, self.accept_new),
                    src.rstrip("/") + "/", f"{host.spec.user}@{host.spec.host}:{host.remote_dir}/.drypipe/{dst}/"]
            self._run(host, f"mkdir -p {shlex.quote(host.remote_dir + '/.drypipe/' + dst)}\n")
            self.counters["rsync"] += 1
            res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
            if res.returncode != 0:
                why = res.stderr.strip()[-300:]
                if "No space" not in why:
                    why = self._disk_full(host) or why
                raise DryPipeError(f"{host.spec.label}: uploading {src} failed: "
                                   f"{why or f'rsync exited with status {res.returncode}'}")

    # -- launching and polling --------------------------------------------------------------
    def launch(self, host: Host, items: list[tuple[str, int, list[str]]], extra: list[str]) -> dict[str, str]:
        """items: (key, start step, paths to upload); returns key -> remote pid."""
        paths = list(extra)
        for key, _, files in items:
            paths.append(f".drypipe/{key}/task")
            paths.extend(files)
        self.rsync(host, sorted(set(paths)), upload=True)
        rc, out, err = self._run(host, sx.launch_script(host.remote_dir, [(k, s) for k, s, _ in items],
                                                         self.max_parallel(host)))
        if rc != 0:
            raise DryPipeError(f"{host.spec.label}: launching tasks failed: {err.strip()[-300:]}")
        pids = sx.parse_launch(out)
        for key, _, _ in items:
            host.watched[key] = S.LAUNCHED
        self._next_poll = time.monotonic()
        self._poll_index = 0
        return pids

    def watch(self, key: str, job_id: str | None, host: Host) -> bool:
        """Watch a task on host: a process (job_id None or 'host:pid') or a Slurm job ('123_4')."""
        host.watched[key] = S.LAUNCHED
        if job_id and "_" in job_id and ":" not in job_id:
            host.jobs[key] = job_id
        return True

    def cancel(self, keys) -> None:
        """`task kill` of each task on its host (a process group's SIGTERM, or scancel)."""
        for host in self.hosts.values():
            mine = [k for k in keys if k in host.watched]
            if mine:
                self._run(host, sx.kill_script(host.remote_dir, mine))

    def sbatch(self, host: Host, conf, array_dir: str, items: list[tuple[str, int, list[str]]],
               extra: list[str]) -> list[str]:
        """Remote Slurm: upload the tasks and their array dir, sbatch it on the login node;
        returns the job id of each item."""
        rel = os.path.relpath(array_dir, self.instance_dir)
        paths = list(extra) + [f"{rel}/task-keys.tsv", f"{rel}/array.sh"]
        for key, _, files in items:
            paths += [f".drypipe/{key}/task", f".drypipe/{key}/sbatch-launcher.sh", *files]
        self.rsync(host, sorted(set(paths)), upload=True)
        return self.sbatch_elements(host, conf, array_dir, [(i, k) for i, (k, _, _) in enumerate(items)])

    def sbatch_elements(self, host: Host, conf, array_dir: str, elements: list[tuple[int, str]]) -> list[str]:
        """sbatch the elements (index, task key) of an uploaded array dir on the login node and
        watch them; returns their job ids."""
        from . import slurm_text as st
        from .slurm import array_sbatch_argv
        argv = array_sbatch_argv(self.instance_dir, array_dir, conf, [i for i, _ in elements])
        rel = os.path.relpath(array_dir, self.instance_dir)
        # the host appends the job id to its copy of the array dir's job-id file, and so does this
        # side (as local Slurm does): recover_array_jobs finds the job after a crash
        rc, out, err = self._run(host, sx.sbatch_script(host.remote_dir, argv, f"{rel}/job-id"))
        if rc != 0:
            raise DryPipeError(f"{host.spec.label}: sbatch failed: {err.strip()[-300:]}")
        try:
            job = st.parse_sbatch_parsable(out)
        except ValueError as e:
            raise DryPipeError(f"{host.spec.label}: sbatch: {e}") from e
        with open(os.path.join(array_dir, "job-id"), "a") as f:
            f.write(job + "\n")
        ids = [f"{job}_{i}" for i, _ in elements]
        for (_, key), jid in zip(elements, ids):
            self.watch(key, jid, host)
        self._next_poll = time.monotonic()
        self._poll_index = 0
        return ids

    def recover_array_jobs(self, host: Host, keys, launched_at: dict[str, float] | None = None) -> dict[str, str]:
        """Job ids ('<job>_<index>') of remote Slurm tasks whose array was submitted on the host
        by an orchestrator that died before it recorded them (mirrors
        SlurmExecutor's recovery). For each key, the last array dir .drypipe/_arrays/<n> whose
        task-keys.tsv lists it (with launched_at, key -> its launch time: written at or after
        it); the job from that dir's job-id file here, else (one command) from the host's copy
        of that file, else from the host's squeue by the array's --comment (the dir's name) and
        the instance's job name. A key whose job is found nowhere is absent (never submitted,
        or long gone from squeue). Raises HostUnreachable when the host must be asked and
        cannot be."""
        from .slurm import job_name, read_array_keys
        base = os.path.join(self.instance_dir, ".drypipe", "_arrays")
        try:
            names = [d for d in os.listdir(base) if d.isdigit()]
        except FileNotFoundError:
            return {}
        listings: dict[str, list[str]] = {}
        made: dict[str, float] = {}
        for d in names:
            try:
                listings[d] = [k for k, _ in read_array_keys(os.path.join(base, d))]
                made[d] = os.path.getmtime(os.path.join(base, d, "task-keys.tsv"))
            except (FileNotFoundError, ValueError):
                continue
        last = sx.last_array_listing(listings, keys, made, launched_at)
        jobs: dict[str, str] = {}
        for d in {d for d, _ in last.values()}:
            try:
                with open(os.path.join(base, d, "job-id")) as f:
                    job = (f.read().split() or [None])[-1]
            except FileNotFoundError:
                job = None
            if job and job.isdigit():
                jobs[d] = job
        missing = sorted({d for d, _ in last.values()} - set(jobs), key=int)
        if missing:
            script = sx.recover_jobs_script(host.remote_dir, missing,
                                            sx.squeue_comments_argv(job_name(self.instance_dir)))
            rc, out, err = self._run(host, script)
            if rc == 3:  # no instance dir on the host: nothing was ever submitted there
                out = ""
            elif rc != 0:
                raise DryPipeError(f"{host.spec.label}: cannot look for the jobs of arrays "
                                   f"{', '.join(missing)}: {err.strip()[-300:]}")
            elif "C-FAILED" in out:
                log.warning("%s: squeue failed while recovering the jobs of arrays %s", host.spec.label,
                            ", ".join(missing))
            found = sx.parse_recover_jobs(out)
            jobs.update({d: found[d] for d in missing if d in found})
        return sx.array_job_ids(last, jobs)

    def next_poll_in(self) -> float:
        return max(0.0, self._next_poll - time.monotonic())

    def poll_now(self) -> None:
        """Make the next poll() ask the hosts at once (commands run by hand)."""
        self._next_poll = 0.0

    def poll(self, timeout: float = 0.0) -> list[Ended]:
        """The Executor contract's poll: the tasks that ended (progress is in poll_hosts)."""
        return self.poll_hosts()[0]

    def poll_hosts(self) -> tuple[list[Ended], dict[str, str], list[str]]:
        """(ended tasks, key -> new running state, keys on unreachable hosts)."""
        if not self.running or time.monotonic() < self._next_poll:
            return [], {}, []
        ended, progress, unreachable = [], {}, []
        for host in self.hosts.values():
            if not host.watched:
                continue
            try:
                squeue = None
                if host.jobs:
                    from . import slurm_text as st
                    from .slurm import job_name
                    squeue = st.squeue_argv(job_name(self.instance_dir))
                rc, out, err = self._run(host, sx.poll_script(host.remote_dir, list(host.watched), squeue))
                states = sx.parse_poll(out)
                queue = None
                if squeue:
                    lines = sx.squeue_lines(out)
                    queue = st.parse_squeue(lines) if lines is not None else None
                done = []
                for key in list(host.watched):
                    state, alive = states.get(key, ("none", False))
                    base = state.split(".")[0]
                    if key in host.jobs:
                        ending = self._slurm_ending(key, host.jobs[key], state, queue)
                        if ending is not None:
                            done.append((key, ending))
                            continue
                    elif base in S.TERMINAL or not alive:
                        done.append((key, Ended(key, None)))
                        continue
                    if state not in ("none", host.watched[key]) and base not in S.TERMINAL:
                        host.watched[key] = state
                        progress[key] = state
                if done:
                    self.rsync(host, [p for k, _ in done for p in (f".drypipe/{k}/", f"output/{k}/")],
                                upload=False)
                    for key, e in done:
                        del host.watched[key]
                        host.jobs.pop(key, None)
                        ended.append(e)
                if host.unreachable_since is not None:
                    log.warning("%s is reachable again", host.spec.label)
                host.unreachable_since = None
            except HostUnreachable as e:
                if host.unreachable_since is None:
                    host.unreachable_since = time.monotonic()
                    log.warning("%s unreachable: %s (its tasks keep running; retrying)", host.spec.label, e)
                unreachable.extend(host.watched)
        changed = bool(ended or progress)
        self._poll_index = 0 if changed else min(self._poll_index + 1, len(self.sleep_schedule) - 1)
        self._next_poll = time.monotonic() + max(self.sleep_schedule[self._poll_index], 0.2)
        return ended, progress, unreachable

    @staticmethod
    def _slurm_ending(key: str, job_id: str, state: str, queue):
        """A remote Slurm task is over when its state file says completed or squeue says its job
        is (or it vanished); None while it is pending or running, or squeue failed."""
        from . import slurm_text as st
        from .slurm import SlurmEnded
        if queue is None:
            return None
        job = queue.get(job_id)
        if state == S.COMPLETED or (job is not None and st.outcome(job[0]) != "active"):
            return SlurmEnded(key, None, slurm_state=job[0] if job else "COMPLETED", reason=job[1] if job else None)
        if job is None:
            return SlurmEnded(key, None, slurm_state="VANISHED")
        return None

    def unreachable_for(self) -> float:
        """Seconds the longest-unreachable host with watched tasks has been unreachable."""
        t = [time.monotonic() - h.unreachable_since for h in self.hosts.values()
             if h.watched and h.unreachable_since is not None]
        return max(t, default=0.0)

    def close(self):
        if self.hosts:
            c = self.counters
            log.info("remote hosts: %d connections opened, %d rsync calls, %d ssh commands",
                     c["connections"], c["rsync"], c["ssh_commands"])
        for h in self.hosts.values():
            h.conn.close()
