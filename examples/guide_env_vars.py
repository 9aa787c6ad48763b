"""Guide, "DryPipe variables": the environment variables DryPipe gives every task.

The bash step writes them to drypipe-vars.txt; the python step receives the same values
as arguments (by parameter name) and writes them to drypipe-vars-python.txt.

    drypipe run -pid ./run-env --generator guide_env_vars:my_pipeline
"""
import os

from dry_pipe import DryPipe

HERE = os.path.dirname(os.path.abspath(__file__))

DRYPIPE_VARIABLES = ["__pipeline_instance_dir", "__task_key", "__task_output_dir", "__out_log",
                     "__scratch_dir", "__pipeline_code_dir", "__containers_dir"]


@DryPipe.python_call()
def write_vars_from_python(python_vars_file, __pipeline_instance_dir, __task_key, __task_output_dir,
                           __out_log, __scratch_dir, __pipeline_code_dir, __containers_dir):
    values = dict(locals())
    with open(python_vars_file, "w") as f:
        for name in DRYPIPE_VARIABLES:
            f.write(f"{name}={values[name]}\n")
        f.write(f"cwd={os.getcwd()}\n")


def print_env(dsl):
    yield dsl.task(
        key="print-env"
    ).outputs(
        vars_file=dsl.file("drypipe-vars.txt"),
        python_vars_file=dsl.file("drypipe-vars-python.txt")
    ).calls("""
        #!/usr/bin/env bash
        {
            echo "__pipeline_instance_dir=$__pipeline_instance_dir"
            echo "__task_key=$__task_key"
            echo "__task_output_dir=$__task_output_dir"
            echo "__out_log=$__out_log"
            echo "__scratch_dir=$__scratch_dir"
            echo "__pipeline_code_dir=$__pipeline_code_dir"
            echo "__containers_dir=$__containers_dir"
            echo "cwd=$PWD"
            echo "scratch_dir_exists=$([[ -d $__scratch_dir ]] && echo yes || echo no)"
        } > $vars_file
        echo "this line goes to $__out_log"
    """).calls(
        write_vars_from_python
    )()


def my_pipeline():
    return DryPipe.create_pipeline(print_env, containers_dir=os.path.join(HERE, "containers"))
