"""Guide, "Pipeline level configs": override $__pipeline_code_dir, $__containers_dir and
the pipeline's default TaskConf.

task-123 gets the pipeline's default TaskConf (with its extra_env GREETING);
task-z gets its own TaskConf (no GREETING).

Differences with the guide: the default TaskConf runs tasks as local processes (the guide's
executer_type="slurm" needs a Slurm cluster), the code and containers dirs are given
relative to this file rather than to the current directory, and task-123 calls a script
of the overridden code dir to show where scripts are looked up.

    drypipe run -pid ./run-config --generator guide_pipeline_config:my_pipeline
"""
import os

from dry_pipe import DryPipe, TaskConf

HERE = os.path.dirname(os.path.abspath(__file__))


def my_dag(dsl):
    yield dsl.task(
        key="task-123"
    ).outputs(
        greeting_file=dsl.file("greeting.txt")
    ).calls(
        "hello.sh"
    ).calls("""
        #!/usr/bin/env bash
        echo "hello world"
        echo "code dir: $__pipeline_code_dir" >> $greeting_file
        echo "containers dir: $__containers_dir" >> $greeting_file
    """)()

    yield dsl.task(
        key="task-z",
        task_conf=TaskConf(executer_type="process")
    ).outputs(
        greeting_file=dsl.file("greeting.txt")
    ).calls("""
        #!/usr/bin/env bash
        echo "hello world"
        echo "GREETING=${GREETING:-<unset>}" > $greeting_file
    """)()


def my_pipeline():
    return DryPipe.create_pipeline(
        my_dag,
        pipeline_code_dir=os.path.join(HERE, "pipeline_config_code"),
        containers_dir=os.path.join(HERE, "containers"),
        task_conf=TaskConf(
            executer_type="process",
            slurm_account="my-slurm-account",
            extra_env={"GREETING": "hello from the pipeline's TaskConf"},
        )
    )
