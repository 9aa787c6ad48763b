"""Guide, "When NOT to use dsl.wait_for": the generator needs the *value* of an upstream
output (task-a's x) to parametrize a downstream task, so it waits with dsl.wait_for_tasks
and reads it with task_a.outputs.x.fetch().

highly-dependent-task also waits for every task-prefix-* and other-task-prefix-* task, to
show how waiting for several kinds of tasks is expressed.

Differences with the guide: highly-dependent-task runs as a local process (executer_type
"process", not "slurm") so the example runs anywhere; its TaskConf still carries the time
estimate in its sbatch options (the guide's slurm_options= is an alias of sbatch_options=).
The guide's task_b, some_func and estimate_time are defined here.

    drypipe run -pid ./run-wait --generator guide_wait_for_value:my_dag_generator
"""
from dry_pipe import DryPipe, TaskConf


@DryPipe.python_call()
def some_func():
    return {"x": 1234}


def estimate_time(x):
    """A slurm --time for a job whose size is x: one minute per 10 units, at least 5 minutes."""
    minutes = max(5, -(-x // 10))
    return f"{minutes // 60}:{minutes % 60:02d}:00"


@DryPipe.python_call()
def use_x(x, total_letters, n_other, report):
    with open(report, "w") as f:
        f.write(f"x={x} total_letters={total_letters} n_other={n_other}\n")


def my_dag_generator(dsl):
    task_a = dsl.task(
        key="task-a"
    ).outputs(
        x=dsl.var(int)
    ).calls(
        some_func
    )()
    yield task_a

    task_b = dsl.task(
        key="task-b"
    ).calls("""
        echo "task-b has nothing to say"
    """)()
    yield task_b

    for word in ["alpha", "beta", "gamma"]:
        yield dsl.task(
            key=f"task-prefix-{word}"
        ).inputs(
            word=word
        ).outputs(
            letters=int
        ).calls("""
            export letters=${#word}
        """)()

    for i in [1, 2]:
        yield dsl.task(
            key=f"other-task-prefix-{i}"
        ).outputs(
            done=dsl.file("done.txt")
        ).calls("""
            echo "done" > $done
        """)()

    for _ in dsl.wait_for_tasks(task_a, task_b):
        # because task_a has completed, we can fetch values from its produces clause:
        actual_x_loaded_from_completed_task = task_a.outputs.x.fetch()
        assert isinstance(actual_x_loaded_from_completed_task, int)

        for matcher1, matcher2 in dsl.wait_for_matching_tasks("task-prefix-*", "other-task-prefix-*"):
            yield dsl.task(
                key="highly-dependent-task",
                task_conf=TaskConf(
                    executer_type="process",
                    slurm_account="me",
                    slurm_options=[
                        f"--time={estimate_time(actual_x_loaded_from_completed_task)}"
                    ]
                )
            ).inputs(
                x=dsl.val(actual_x_loaded_from_completed_task),
                total_letters=sum(matcher1.all.letters.fetch()),
                n_other=len(matcher2.tasks)
            ).outputs(
                report=dsl.file("report.txt")
            ).calls(
                use_x
            )()
