"""Tasks whose last bash step the launcher runs itself (task_runner.sh, __drypipe_inline), and
tasks whose step must keep a subshell of its own; used by tests/test_inline_step.py."""


def pids(dsl):
    """Each step writes the pid of the process it runs in, beside the launcher's (drypipe.log)."""
    yield dsl.task(key="inline").outputs(out=dsl.file("pid.txt")).calls("echo $BASHPID > $out")()
    yield dsl.task(key="own-trap").outputs(out=dsl.file("pid.txt")).calls(
        "trap 'echo bye from the trap' EXIT\necho $BASHPID > $out\n")()
    yield dsl.task(key="two-steps").outputs(out=dsl.file("pid.txt")).calls(
        "echo $BASHPID > $out").calls("echo $BASHPID >> $out")()


def endings(dsl):
    """How a step run by the launcher can end, each as a subshell would have had it end."""
    def t(key, snippet, **outputs):
        return dsl.task(key=key).outputs(**(outputs or {"out": dsl.file("out.txt")})).calls(snippet)()

    yield t("exit-3", "echo partial > $out\nexit 3\n")
    yield t("errexit", "echo before > $out\nfalse\necho after >> $out\n")
    yield t("pipefail", "echo x | false | cat > $out\n")
    yield t("stderr", "echo oops >&2\nexit 4\n")
    yield t("exit-0", "echo hi > $out\nexit 0\necho unreached >> $out\n")
    yield t("clobbers", "echo 7 > $out\nout=/nonexistent\ncd /\nset -u\nIFS=:\nset -x\n")
    yield t("var-exit-0", "n=5\nexit 0\n", n=int)
    yield t("var-returns", "n=6\n", n=int)
    yield t("missing-output", "out=/tmp/elsewhere\n")


def sleeper(dsl):
    yield dsl.task(key="sleeper").calls("sleep 60")()
