"""Pipelines run on the real Slurm cluster by tests/test_slurm.py.

Every task records, in probe/<key> of the instance dir, what it saw inside its job:
'$__scratch_dir|$SLURM_TMPDIR|<array job>_<index>|<scratch usable>' (its outputs stay free of
such run-specific text, so that a Slurm run and a local run can be compared file by file)."""
import os

from dry_pipe import DryPipe, TaskConf

SLURM = TaskConf(executer_type="slurm")

PROBE = r'''mkdir -p "$__pipeline_instance_dir/probe"
__ok=no; if [[ -d $__scratch_dir ]] && touch "$__scratch_dir/probe.$$" && rm "$__scratch_dir/probe.$$"; then __ok=yes; fi
echo "$__scratch_dir|${SLURM_TMPDIR:-}|${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-}}${SLURM_ARRAY_TASK_ID:+_$SLURM_ARRAY_TASK_ID}|$__ok" > "$__pipeline_instance_dir/probe/$__task_key"
'''

# Every run of a task appends one line here: a task that ran twice has two.
RUNS = 'mkdir -p "$__pipeline_instance_dir/runs"; echo "$__task_key" >> "$__pipeline_instance_dir/runs/$__task_key"\n'


# ---------------------------------------------------------------- 1. fan-out / fan-in


@DryPipe.python_call()
def write_chunks(n, __task_output_dir, __scratch_dir):
    """Python step of prep: one chunk file per work item (the fileset of the fan-out)."""
    tmp = os.path.join(__scratch_dir, "tmp.txt")  # the scratch dir is usable
    with open(tmp, "w") as f:
        f.write("x")
    os.unlink(tmp)
    for i in range(1, n + 1):
        with open(os.path.join(__task_output_dir, f"chunk.{i}.txt"), "w") as f:
            f.write("".join(f"{i * 10 + j}\n" for j in range(i)))
    print(f"wrote {n} chunks")


@DryPipe.python_call()
def label_work(i, v, f, lines, r):
    """Python step of work.N: reads the bash step's variables, appends to its file."""
    with open(r, "a") as out:
        out.write(f"python saw i={i} v={v} lines={lines} chunk={os.path.basename(f)}\n")
    return {"label": f"w{i}:{v}:{lines}"}


@DryPipe.python_call()
def summarize(results, total, labels, summary):
    """Python step of the fan-in: the glob expression is a callable returning the files."""
    files = results()
    with open(summary, "a") as out:
        out.write(f"{len(files)} result files; total={total}; labels={labels}\n")
        for p in files:
            out.write(f"{os.path.basename(os.path.dirname(p))}: {open(p).read().splitlines()[0]}\n")
    return {"n_files": len(files)}


def fanout(dsl):
    n = int(os.environ.get("SLURM_TEST_FAN", "4"))
    prep = dsl.task(key="prep").inputs(n=n).outputs(chunks=dsl.fileset("chunk.*.txt"), count=int).calls(
        write_chunks).calls(PROBE + 'export count=$(ls chunk.*.txt | wc -l)\n')()
    yield prep
    for _ in dsl.wait_for_tasks(prep):
        for h in prep.outputs.chunks.fetch():
            i = int(h.basename().split(".")[1])
            yield dsl.task(key=f"work.{i}").inputs(f=h, i=i, count=prep.outputs.count).outputs(
                r=dsl.file("r.txt"), v=int, lines=int, label=str).calls(
                PROBE + 'export lines=$(wc -l < "$f")\n'
                'export v=$(( $(paste -sd+ "$f" | bc) + count ))\n'
                'echo "bash: v=$v lines=$lines" > "$r"\n').calls(label_work)()
    for m in dsl.wait_for_matching_tasks("work.*"):
        total = sum(m.all.v.fetch())
        labels = ",".join(sorted(m.all.label.fetch()))
        yield dsl.task(key="sum").inputs(results=m.all.r.as_glob_expression(), total=total, labels=labels).outputs(
            summary=dsl.file("summary.txt"), t=int, n_files=int).calls(
            PROBE + 'export t=$(cat $results | grep -c "^bash:")\n'
            'echo "bash counted $t files" > "$summary"\n').calls(summarize)()


def fanout_local():
    return DryPipe.create_pipeline(fanout)


def fanout_slurm():
    return DryPipe.create_pipeline(fanout, task_conf=SLURM)


# ---------------------------------------------------------------- 2. failure


def failing(dsl):
    yield dsl.task(key="fails-at-1", task_conf=SLURM).outputs(x=int).calls(
        PROBE + "export x=1\necho step 0 ran").calls("echo step 1 starts\nexit 3\necho never")()
    yield dsl.task(key="fine", task_conf=SLURM).calls("echo fine")()


# ---------------------------------------------------------------- 3. cancel, 4. time limit


def long_tasks(dsl):
    for key in ("cancel-by-scancel", "cancel-by-task-kill"):
        yield dsl.task(key=key, task_conf=SLURM).calls("echo step 0").calls(
            'echo running > "$__task_output_dir/running"\nsleep 600\n')()


def one_long_task(dsl):
    yield dsl.task(key="long", task_conf=SLURM).calls("echo step 0").calls(
        'echo running > "$__task_output_dir/running"\nsleep 600\n')()


def refused(dsl):
    """Tasks whose sbatch options Slurm refuses: no job is ever created."""
    for key, option in (("bad-partition", "--partition=no-such-partition"), ("bad-option", "--no-such-option")):
        yield dsl.task(key=key, task_conf=TaskConf(executer_type="slurm", sbatch_options=[option])).calls("true")()


def time_limit(dsl):
    conf = TaskConf(executer_type="slurm", sbatch_options=["--time=1"])
    yield dsl.task(key="too-long", task_conf=conf).calls(
        'echo running > "$__task_output_dir/running"\nsleep 600\n')()


# ---------------------------------------------------------------- 5. many tasks, 6. re-attach


def many(dsl):
    n = int(os.environ.get("SLURM_TEST_N", "200"))
    sleep = os.environ.get("SLURM_TEST_SLEEP", "0")
    for i in range(n):
        yield dsl.task(key=f"t-{i}", task_conf=SLURM).inputs(i=i, s=sleep).outputs(out=dsl.file("out.txt")).calls(
            RUNS + 'sleep "$s"; echo $i > "$out"\n')()


# ---------------------------------------------------------------- 7. sbatch-gen, sbatch


def by_hand(dsl):
    for key in ("hand-a", "hand-b"):
        yield dsl.task(key=key, task_conf=SLURM).outputs(x=int, f=dsl.file("f.txt")).calls(
            RUNS + PROBE + 'export x=42\necho "$__task_key" > "$f"\n')()


# ---------------------------------------------------------------- array parents by hand


def array_children(dsl):
    """6 Slurm tasks; a-2 and a-4 fail until <instance>/fixed exists."""
    for i in range(6):
        yield dsl.task(key=f"a-{i}", task_conf=SLURM).inputs(i=i).outputs(o=dsl.file("o.txt")).calls(
            RUNS + 'echo $i > "$o"\n'
            'if (( i == 2 || i == 4 )) && [[ ! -e $__pipeline_instance_dir/fixed ]]; then exit 5; fi\n')()
