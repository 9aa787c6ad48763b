"""Pure functions for what DryPipe says to Slurm and reads from it: sbatch command lines and
scripts, squeue and scontrol output. Unit-tested on recorded text (tests/test_slurm_text.py)."""
from __future__ import annotations

import math
import re
import shlex

# squeue/scontrol job states -> what they mean for a DryPipe task whose launcher did not report.
PENDING_OR_RUNNING = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
                                "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT",
                                "STOPPED", "RESV_DEL_HOLD"})
KILLED = frozenset({"CANCELLED", "PREEMPTED", "REVOKED"})
TIMED_OUT = frozenset({"TIMEOUT", "DEADLINE"})
FAILED = frozenset({"FAILED", "NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY", "SPECIAL_EXIT"})
COMPLETED = frozenset({"COMPLETED"})

SQUEUE_FORMAT = "%i|%T|%r"


def outcome(slurm_state: str) -> str:
    """'active', 'completed', 'killed', 'timed-out' or 'failed' for a job state."""
    s = slurm_state.split()[0].rstrip("+") if slurm_state else ""
    if s in PENDING_OR_RUNNING:
        return "active"
    if s in COMPLETED:
        return "completed"
    if s in KILLED:
        return "killed"
    if s in TIMED_OUT:
        return "timed-out"
    return "failed"


def sbatch_argv(script: str, *, job_name: str, output: str, account: str | None = None,
                options=(), array: str | None = None, comment: str | None = None,
                wait: bool = False) -> list[str]:
    """The sbatch command submitting script (no shell involved: every value is one argument)."""
    argv = ["sbatch", "--parsable", f"--job-name={job_name}", f"--output={output}"]
    if account:
        argv.append(f"--account={account}")
    if array is not None:
        argv.append(f"--array={array}")
    if comment:
        argv.append(f"--comment={comment}")
    if wait:
        argv.append("--wait")
    argv.extend(options)
    argv.append(script)
    return argv


def shell_command(argv: list[str]) -> str:
    """argv as one copy-pasteable shell line (for `drypipe sbatch-gen`)."""
    return " ".join(shlex.quote(a) for a in argv)


def parse_sbatch_parsable(stdout: str) -> str:
    """`sbatch --parsable` prints 'JOBID' or 'JOBID;CLUSTER'."""
    line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = line.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise ValueError(f"unexpected sbatch output: {stdout!r}")
    return job_id


def array_spec(n: int, limit: int | None = None, indices=None) -> str:
    """--array value for n elements (0..n-1), or for the given indices, with an optional %limit."""
    if indices is None:
        spec = f"0-{n - 1}" if n > 1 else "0"
    else:
        spec = _ranges(sorted(indices))
    return f"{spec}%{limit}" if limit else spec


def _ranges(idx: list[int]) -> str:
    parts, start, prev = [], None, None
    for i in idx:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = i
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else str(start))
    return ",".join(parts)


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def squeue_argv(job_name: str) -> list[str]:
    """One squeue call covering every job (array elements one per line) of an instance."""
    return ["squeue", "-h", "-r", "-t", "all", f"--name={job_name}", "-o", SQUEUE_FORMAT]


def squeue_comment_argv(job_name: str) -> list[str]:
    """squeue of an instance's jobs with their --comment (the array dir's name)."""
    return ["squeue", "-h", "-r", "-t", "all", f"--name={job_name}", "-o", "%i|%k"]


def parse_squeue_comments(stdout: str) -> dict[str, str]:
    """'12_3|7' lines -> {'7': '12'}: array dir name -> array job id (the first seen)."""
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        jid, sep, comment = line.strip().partition("|")
        if sep and jid:
            out.setdefault(comment, jid.split("_")[0])
    return out


def parse_squeue(stdout: str) -> dict[str, tuple[str, str]]:
    """'8_2|PENDING|None' lines -> {'8_2': ('PENDING', 'None')}."""
    out = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0]:
            out[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    return out


def parse_scontrol_config(stdout: str) -> dict[str, str]:
    """`scontrol show config` 'Name = value' lines -> dict."""
    out = {}
    for line in stdout.splitlines():
        if " = " in line:
            k, v = line.split(" = ", 1)
            out[k.strip()] = v.strip()
    return out


def max_array_size(config: dict[str, str], default: int = 1001) -> int:
    try:
        return int(config.get("MaxArraySize", default))
    except ValueError:
        return default


def render_task_sbatch_script(task_rel: str) -> str:
    """.drypipe/<key>/sbatch-launcher.sh: what sbatch runs for one task.

    The instance dir is the job's working dir (sbatch runs from it), so the script works
    wherever the instance is, including a remote copy."""
    return ("#!/usr/bin/env bash\n"
            "# DryPipe: runs this task as a Slurm job (see `drypipe sbatch-gen`)\n"
            f"exec bash {shlex.quote(task_rel + '/task')} run \"${{DRYPIPE_START_STEP:-0}}\"\n")


def render_array_script(keys_rel: str) -> str:
    """The script of an array job: element i runs the task on line i+1 of the keys file
    ('key<TAB>start step' lines), relative to the instance dir (the job's working dir)."""
    return ("#!/usr/bin/env bash\n"
            "# DryPipe: one Slurm array job; element i runs the task on line i+1 of task-keys.tsv\n"
            "i=$(( ${SLURM_ARRAY_TASK_ID:-0} + 1 ))\n"
            "n=0\n"
            "while IFS=$'\\t' read -r key step; do\n"
            "  n=$(( n + 1 ))\n"
            "  if (( n == i )); then exec bash \".drypipe/$key/task\" run \"${step:-0}\"; fi\n"
            f"done < {shlex.quote(keys_rel)}\n"
            "echo \"drypipe: no task for array index ${SLURM_ARRAY_TASK_ID:-}\" >&2\n"
            "exit 2\n")


# -- sacct: what finished jobs used (one call for every job that ended in a poll) ----------------
SACCT_FIELDS = ("JobID", "State", "ExitCode", "MaxRSS", "TotalCPU", "UserCPU", "SystemCPU", "ReqMem",
                "Timelimit", "NCPUS")


def sacct_argv(job_ids: list[str]) -> list[str]:
    return ["sacct", "--noheader", "--parsable2", "--jobs", ",".join(job_ids),
            "--format", ",".join(SACCT_FIELDS)]


_SIZE = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def parse_size(text: str) -> int | None:
    """sacct sizes: '204800K', '1.50G', '4000M', '4Gn'/'4Gc' (ReqMem per node/cpu) -> bytes."""
    t = text.strip().rstrip("nc")
    if not t:
        return None
    unit = t[-1].upper() if t[-1].isalpha() else ""
    try:
        return int(float(t[:-1] if unit else t) * _SIZE[unit])
    except (ValueError, KeyError):
        return None


def parse_duration(text: str) -> float | None:
    """sacct times: 'MM:SS.mmm', 'HH:MM:SS', 'D-HH:MM:SS' -> seconds."""
    t = text.strip()
    if not t or t in ("INVALID", "UNLIMITED", "Partition_Limit"):
        return None
    days = 0
    if "-" in t:
        d, t = t.split("-", 1)
        days = int(d)
    parts = t.split(":")
    try:
        secs = float(parts[-1])
        mins = int(parts[-2]) if len(parts) >= 2 else 0
        hours = int(parts[-3]) if len(parts) >= 3 else 0
    except ValueError:
        return None
    return ((days * 24 + hours) * 60 + mins) * 60 + secs


def parse_sacct(stdout: str) -> dict[str, dict]:
    """`sacct --parsable2` rows -> {job id: figures}, the rows of a job's steps (`<id>.batch`,
    `<id>.0`, `<id>.extern`) merged into its own: MaxRSS is the largest of its steps'; State,
    ExitCode, TotalCPU and the request come from the job's row (a step's State such as
    OUT_OF_MEMORY is kept when the job's says only FAILED)."""
    out: dict[str, dict] = {}
    for line in stdout.splitlines():
        cols = line.split("|")
        if len(cols) < len(SACCT_FIELDS):
            continue
        row = dict(zip(SACCT_FIELDS, cols))
        job, _, step = row["JobID"].partition(".")
        figures = out.setdefault(job, {})
        rss = parse_size(row["MaxRSS"])
        if rss is not None:
            figures["peak_rss"] = max(rss, figures.get("peak_rss", 0))
            figures["peak_rss_source"] = "sacct"
        state = row["State"].split()[0] if row["State"] else ""
        if not step:
            if state:
                figures["slurm_state"] = state if figures.get("slurm_state") != "OUT_OF_MEMORY" else "OUT_OF_MEMORY"
            code = row["ExitCode"].split(":")[0]
            if code.isdigit():
                figures["exit"] = int(code)
            for name, field in (("cpu_user", "UserCPU"), ("cpu_sys", "SystemCPU")):
                v = parse_duration(row[field])
                if v is not None:
                    figures[name] = v
            mem = parse_size(row["ReqMem"])
            if mem is not None:
                figures["req_mem"] = mem
            limit = parse_duration(row["Timelimit"])
            if limit is not None:
                figures["req_time"] = limit
            if row["NCPUS"].isdigit():
                figures["req_cpus"] = int(row["NCPUS"])
        elif state == "OUT_OF_MEMORY":
            figures["slurm_state"] = "OUT_OF_MEMORY"
    return out


# -- retry_scale: --mem and --time of the k-th automatic retry -----------------------------------

_MEM_OPTION = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)B?$", re.I)
_MB = {"K": 1 / 1024, "M": 1, "": 1, "G": 1024, "T": 1024 * 1024}


def scale_mem(value: str, factor: float) -> str | None:
    """sbatch's --mem value times factor, in whole megabytes ('1G' x 2 -> '2048M'); None when
    it is not a size sbatch takes (left as it is)."""
    m = _MEM_OPTION.match(value.strip())
    if not m:
        return None
    mb = float(m.group(1)) * _MB[m.group(2).upper()] * factor
    return f"{math.ceil(mb)}M"


def format_time(seconds: float) -> str:
    """Seconds as sbatch's D-HH:MM:SS (whole seconds, rounded up)."""
    s = math.ceil(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}-{h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def scaled_options(options, scale: dict, k: int) -> list[str]:
    """The sbatch options of a task's k-th automatic retry: --mem and --time (-t) times
    scale["mem"] ** k and scale["time"] ** k. Both spellings (`--mem=4G`, `--mem 4G`)."""
    out, opts = [], list(options)
    factors = {"--mem": scale.get("mem"), "--time": scale.get("time"), "-t": scale.get("time")}
    i = 0
    while i < len(opts):
        word = opts[i]
        name, eq, value = word.partition("=")
        separate = not eq and name in factors and i + 1 < len(opts)
        if separate:
            value = opts[i + 1]
        factor = factors.get(name)
        new = None
        if factor and k > 0 and (eq or separate):
            f = factor ** k
            if name == "--mem":
                new = scale_mem(value, f)
            else:
                secs = slurm_time_seconds(value)
                new = None if secs is None else format_time(secs * f)
        if new is None:
            out.append(word)
        elif separate:
            out.extend([name, new])
        else:
            out.append(f"{name}={new}")
        i += 2 if separate else 1
        if separate and new is None:
            out.append(value)
    return out


def slurm_time_seconds(text: str) -> float | None:
    """Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S -> seconds (None if unreadable)."""
    try:
        days = 0
        if "-" in text:
            d, text = text.split("-", 1)
            days = int(d)
            parts = [int(x) for x in text.split(":")]
            parts += [0] * (3 - len(parts))
            h, m, s = parts
        else:
            parts = [int(x) for x in text.split(":")]
            if len(parts) == 1:
                h, m, s = 0, parts[0], 0
            elif len(parts) == 2:
                h, (m, s) = 0, parts
            else:
                h, m, s = parts
        return float(((days * 24 + h) * 60 + m) * 60 + s)
    except ValueError:
        return None
