"""Guide, "Pipeline composition": two DAG generators combined into a new one.

Tasks of super_duper_pipeline_dag_generator get keys prefixed with "s_" (s_a-super-task),
those of other_pipeline_dag_gen with "o_" (o_do-it-1, ...). All live in the same
$__pipeline_instance_dir. super_duper.wait_for_tasks("a-super-task") is a shorthand for
dsl.wait_for_tasks("s_a-super-task").

    drypipe run -pid ./run-composite --generator guide_composition:my_composite_dag_generator
"""
from dry_pipe import DryPipe

from other_pipeline import other_pipeline_dag_gen
from super_duper_pipeline import super_duper_pipeline_dag_generator


@DryPipe.python_call()
def a_func(y):
    return {"z": y * 2}


@DryPipe.python_call()
def grande_finale_func(z, a_pattern, finale):
    with open(finale, "w") as out:
        out.write(f"z={z}\n")
        for path in a_pattern():
            with open(path) as f:
                out.write(f.read())


def my_composite_dag_generator(dsl):
    super_duper = dsl.sub_pipeline(super_duper_pipeline_dag_generator, "s_")
    yield super_duper

    other_sub_pipeline = dsl.sub_pipeline(other_pipeline_dag_gen, "o_")
    yield other_sub_pipeline

    for super_task in super_duper.wait_for_tasks("a-super-task"):
        v = super_task.outputs.a_variable
        yield dsl.task(
            "task-dependent-on-a-super-task"
        ).inputs(
            y=dsl.val(v)
        ).outputs(
            z=dsl.var(int)
        ).calls(
            a_func
        )()

    for matcher in other_sub_pipeline.wait_for_matching_tasks("do-it-*"):
        for task_dependent_on_a_super_task in dsl.wait_for_tasks("task-dependent-on-a-super-task"):
            yield dsl.task(
                "grande-finale"
            ).inputs(
                z=task_dependent_on_a_super_task.outputs.z,
                a_pattern=matcher.all.a_file_defined_in_do_it_tasks.as_glob_expression()
            ).outputs(
                finale=dsl.file("grande-finale.txt")
            ).calls(
                grande_finale_func
            )()
