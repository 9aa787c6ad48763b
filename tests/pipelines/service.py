"""Pipelines and config generators of tests/test_service.py (`drypipe service`).

Every run of a task step appends a line to runs/<key> in its instance dir ("<key> s<step>"): a
task (or step) that ran twice has two lines. Tasks told to wait (SVC_GATE) poll for the file
`release` in their instance dir; tasks record their pid in pids/<key> and, with SVC_SPANS, the
start and end of their work in the shared spans/ dir of the service home."""
import os

from dry_pipe import DryPipe, TaskConf
from dry_pipe.pipeline import PipelineType


def _run(step: int) -> str:
    return (f'mkdir -p "$__pipeline_instance_dir/runs" "$__pipeline_instance_dir/pids"\n'
            f'echo "$__task_key s{step}" >> "$__pipeline_instance_dir/runs/$__task_key"\n'
            'echo $BASHPID > "$__pipeline_instance_dir/pids/$__task_key"\n')


GATE = ('if [[ -n "${SVC_GATE:-}" ]]; then\n'
        '  for ((i = 0; i < 1200; i++)); do\n'
        '    [[ -e "$__pipeline_instance_dir/release" ]] && break\n'
        '    [[ -d "$__pipeline_instance_dir/.drypipe" ]] || exit 9  # the instance was deleted\n'
        '    sleep 0.05\n'
        '  done\n'
        'fi\n')
SLEEP = 'sleep "${SVC_SLEEP:-0}"\n'
SPAN = ('if [[ -n "${SVC_SPANS:-}" ]]; then\n'
        '  mkdir -p "$SVC_SPANS"; __f="$SVC_SPANS/$(basename "$__pipeline_instance_dir").$__task_key"\n'
        '  echo "start $EPOCHREALTIME" >> "$__f"; sleep "${SVC_SLEEP:-0.3}"; echo "end $EPOCHREALTIME" >> "$__f"\n'
        'fi\n')


def chain(dsl):
    """a -> b -> c, values passed along."""
    a = dsl.task(key="a").outputs(x=int).calls(_run(0) + GATE + SLEEP + "export x=1\n")()
    yield a
    b = dsl.task(key="b").inputs(x=a.outputs.x).outputs(y=int).calls(_run(0) + SLEEP + "export y=$((x + 1))\n")()
    yield b
    yield dsl.task(key="c").inputs(y=b.outputs.y).outputs(out=dsl.file("c.txt")).calls(
        _run(0) + SLEEP + 'echo "$y" > "$out"\n')()


def fanout(dsl):
    """three independent tasks gathered by a fourth."""
    parts = []
    for i in range(3):
        t = dsl.task(key=f"part.{i}").inputs(i=i).outputs(v=int).calls(_run(0) + "export v=$((i * 10))\n")()
        parts.append(t)
        yield t
    yield dsl.task(key="gather").inputs(v0=parts[0].outputs.v, v1=parts[1].outputs.v, v2=parts[2].outputs.v) \
        .outputs(total=int).calls(_run(0) + "export total=$((v0 + v1 + v2))\n")()


@DryPipe.python_call()
def square(n, __task_key, __pipeline_instance_dir):
    os.makedirs(os.path.join(__pipeline_instance_dir, "runs"), exist_ok=True)
    with open(os.path.join(__pipeline_instance_dir, "runs", __task_key), "a") as f:
        f.write(f"{__task_key} s0\n")
    return {"sq": n * n}


def pycall(dsl):
    """a python step, then a bash task reading its output."""
    sq = dsl.task(key="square").inputs(n=7).outputs(sq=int).calls(square)()
    yield sq
    yield dsl.task(key="check").inputs(sq=sq.outputs.sq).calls(_run(0) + "[[ $sq == 49 ]]\n")()


def broken(dsl):
    yield dsl.task(key="never").calls(_run(0))()
    raise ValueError("this generator is broken on purpose")


def failing(dsl):
    """prep, then work whose step 1 fails until the file `fixed` exists in the instance dir."""
    prep = dsl.task(key="prep").outputs(x=int).calls(_run(0) + "export x=5\n")()
    yield prep
    yield dsl.task(key="work").inputs(x=prep.outputs.x).calls(_run(0)).calls(
        _run(1) + '[[ -e "$__pipeline_instance_dir/fixed" ]] || exit 3\n')()


def sleepers(dsl):
    """three independent tasks that record when they run (SVC_SPANS)."""
    for i in range(3):
        yield dsl.task(key=f"z.{i}").calls(_run(0) + SPAN)()


SLURM = TaskConf(executer_type="slurm")


def on_slurm(dsl):
    a = dsl.task(key="a", task_conf=SLURM).outputs(x=int).calls(_run(0) + "export x=2\n")()
    yield a
    yield dsl.task(key="b", task_conf=SLURM).inputs(x=a.outputs.x).outputs(out=dsl.file("b.txt")).calls(
        _run(0) + 'echo $((x * 21)) > "$out"\n')()


# -- config generators ------------------------------------------------------------------------

def three_types():
    yield PipelineType("chain", chain, "chains")
    yield PipelineType("fanout", DryPipe.create_pipeline(fanout), "fanouts")
    yield PipelineType("pycall", pycall, "pycalls", max_running=1)


def with_broken():
    yield PipelineType("chain", chain, "chains")
    yield PipelineType("broken", broken, "broken")
    yield PipelineType("failing", failing, "failing")


def chains_only():
    yield PipelineType("chain", chain, "chains", max_running=2)


def capped():
    yield PipelineType("sleepers", sleepers, "sleepers")
    yield PipelineType("solo", sleepers, "solo", max_running=1)


def slurm_types():
    yield PipelineType("slurm", on_slurm, "slurm")


def config_raises():
    raise ValueError("cannot read the site config")
    yield  # a generator


def config_yields_junk():
    yield PipelineType("chain", chain, "chains")
    yield "not a pipeline type"


def config_bad_max_running():
    yield PipelineType("chain", chain, "chains", max_running=0)
