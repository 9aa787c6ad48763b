"""For tests/test_premake.py: `first` runs until the file `release` appears in the instance dir;
`second` reads its file, `reads-var` its output variable."""


def pipeline(dsl):
    release = dsl.file_in_pipeline_instance_dir("release")
    first = dsl.task(key="first").outputs(out=dsl.file("out.txt"), n=int).calls(
        f'while [[ ! -e {release} ]]; do sleep 0.05; done\necho 1 > $out\nn=7\n')()
    yield first
    yield dsl.task(key="second").inputs(f=first.outputs.out).outputs(out=dsl.file("out.txt")).calls(
        'cat "$f" > "$out"')()
    yield dsl.task(key="reads-var").inputs(n=first.outputs.n).calls('echo "$n"')()
