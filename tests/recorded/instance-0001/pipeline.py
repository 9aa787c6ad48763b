from dry_pipe import DryPipe

def dag(dsl):
    a = dsl.task(key="a").outputs(x=int).calls("export x=41")()
    yield a
    yield dsl.task(key="b").inputs(x=a.outputs.x).outputs(y=int).calls("export y=$((x+1))")()
    yield dsl.task(key="c").calls("echo boom; exit 3")()
