"""A DAG generator for tests/test_progress.py: tasks that sleep, and tasks that run until the
test releases them, so that a run lasts exactly as long as the test wants."""

RELEASE = '"$__pipeline_instance_dir/release"'


def sleepers(dsl):
    """quick.0..3 sleep 0.1 s; slow.0..2 run until the file `release` exists in the instance
    dir (or 120 s, should a test forget it); merge waits for slow.0."""
    for i in range(4):
        yield dsl.task(key=f"quick.{i}").calls("sleep 0.1")()
    slow = []
    for i in range(3):
        t = dsl.task(key=f"slow.{i}").outputs(n=int).calls(f"""
            for _ in $(seq 6000); do [[ -e {RELEASE} ]] && break; sleep 0.02; done
            export n={i}
        """)()
        slow.append(t)
        yield t
    yield dsl.task(key="merge").inputs(n=slow[0].outputs.n).calls("true")()
