"""Pipelines of tests/test_attempts.py: tasks whose resource use is known in advance."""
from dry_pipe import DryPipe, TaskConf

SLURM = TaskConf(executer_type="slurm", sbatch_options=["--mem=1G", "--time=0:10:00"])

# 200 MiB written into memory (so that it is resident, not just reserved), held for a moment
ALLOC = 'python3 -c "import time; b = bytearray(b\\"x\\") * (200 * 1024 * 1024); time.sleep(0.3)"\n'
# CPU-bound work in the step's own shell, which then writes down what `times` says it used
SPIN = 'for ((i = 0; i < 400000; i++)); do :; done; times > times.txt\n'


# 8 MiB written to a file, then read back, by child processes of the step
IO = 'head -c 8388608 /dev/zero > data.bin; cat data.bin > /dev/null; rm data.bin\n'


def measured(dsl):
    yield dsl.task(key="alloc").calls(ALLOC)()
    yield dsl.task(key="io").calls(IO)()
    yield dsl.task(key="sleep").calls("sleep 1\n")()
    yield dsl.task(key="spin").calls(SPIN)()
    yield dsl.task(key="fails").calls("echo before > f.txt\n").calls('echo "about to fail"; exit 7\n')()


def on_slurm(dsl):
    yield dsl.task(key="alloc", task_conf=SLURM).calls(ALLOC)()
    yield dsl.task(key="fails", task_conf=SLURM).calls("exit 5\n")()


def retried(dsl):
    yield dsl.task(key="flaky").calls('[[ -e "$__pipeline_instance_dir/fixed" ]] || exit 4\n')()


# fails while it has run fewer than $FAILS times (counted in the instance dir), then completes
FLAKY = ('n=$(cat "$__pipeline_instance_dir/runs-$__task_key" 2>/dev/null || echo 0)\n'
         'echo $((n + 1)) > "$__pipeline_instance_dir/runs-$__task_key"\n'
         '(( n + 1 > ${FAILS:-2} )) || { echo "run $((n + 1)): failing"; exit 3; }\n')


def with_retries(dsl):
    yield dsl.task(key="twice", task_conf=TaskConf(retries=2)).calls("echo step0 > s0.txt\n").calls(FLAKY)()
    yield dsl.task(key="once", task_conf=TaskConf(retries=1)).calls(FLAKY)()
    yield dsl.task(key="never").calls(FLAKY)()
    yield dsl.task(key="cancelled", task_conf=TaskConf(retries=3)).calls(
        'echo started > started.txt; sleep 60\n')()


# 200 MiB resident: more than 150M, less than twice that
BIG = TaskConf(executer_type="slurm", sbatch_options=["--mem=150M", "--time=0:10:00"], retries=1,
               retry_scale={"mem": 2})


def oom_then_retried(dsl):
    yield dsl.task(key="big", task_conf=BIG).calls(ALLOC)()
