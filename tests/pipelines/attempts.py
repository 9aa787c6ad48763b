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
