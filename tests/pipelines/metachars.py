"""Values read from values.json in the instance dir flow through bash and python tasks."""
import json

from dry_pipe import DryPipe


@DryPipe.python_call()
def py_echo(v, out):
    with open(out, "w", encoding="utf-8", newline="") as f:
        f.write(v)
    return {"r": v}


def dag(dsl):
    with open(dsl.file_in_pipeline_instance_dir("values.json"), encoding="utf-8") as f:
        values = json.load(f)
    for i, v in enumerate(values):
        b = dsl.task(key=f"bash-{i}").inputs(v=v).outputs(out=dsl.file("out.txt"), r=str).calls(
            """printf '%s' "$v" > "$out"
export r="$v"
""")()
        yield b
        p = dsl.task(key=f"py-{i}").inputs(v=v).outputs(out=dsl.file("out.txt"), r=str).calls(py_echo)()
        yield p
        yield dsl.task(key=f"down-{i}").inputs(a=b.outputs.r, c=p.outputs.r).outputs(
            out=dsl.file("out.txt"), r=str).calls("""printf '%s' "$a" > "$out"
[[ "$a" == "$c" ]] || exit 3
r=$c
""")()
