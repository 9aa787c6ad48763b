"""The DSL on its own: task specs, validation errors, waits, matchers, sub pipelines."""
import pytest

from drypipe import DryPipe, TaskConf
from drypipe.dsl import generate
from drypipe.dsl.pipeline import Pipeline
from drypipe.errors import GeneratorFailed, InvalidPipeline


class Oracle:
    """A stand-in for the orchestrator's graph: states and outputs given by the test."""

    def __init__(self, states=None, outputs=None, specs=None, instance_dir="/inst"):
        self.states = states or {}
        self.outputs = outputs or {}
        self.specs = specs or {}
        self.instance_dir = instance_dir

    def is_known(self, key):
        return key in self.states

    def state_of(self, key):
        return self.states.get(key)

    def output_values(self, key):
        return self.outputs.get(key, {})

    def spec_of(self, key):
        return self.specs.get(key)

    def keys_matching(self, glob):
        import fnmatch
        return fnmatch.filter(self.states, glob)


def gen(dag, oracle=None):
    return generate(Pipeline(dag), oracle or Oracle())


@DryPipe.python_call()
def f1():
    return {"x": 1}


def test_task_spec_from_the_guides_first_example():
    def dag(dsl):
        t1 = dsl.task(key="t1").outputs(x=int).calls(f1)()
        yield t1
        yield dsl.task(key="t2").inputs(t1.outputs.x).outputs(f=dsl.file("f.tsv")).calls("echo $x > $f")()

    g = gen(dag)
    assert list(g.tasks) == ["t1", "t2"]
    t1, t2 = g.tasks["t1"], g.tasks["t2"]
    assert t1.spec()["steps"] == [{"kind": "python", "module": __name__, "function": "f1"}]
    assert t1.output_decls == {"x": {"kind": "var", "type": "int"}}
    assert t2.inputs == [{"name": "x", "kind": "var", "type": "int", "task": "t1", "output": "x"}]
    assert t2.upstream == {"t1"}
    assert t2.output_decls["f"] == {"kind": "file", "path": "f.tsv"}


def test_literal_inputs_keep_their_type_and_text():
    def dag(dsl):
        yield dsl.task(key="t").inputs(i=3, f=0.5, s="a b", b=True, v=dsl.val(7)).calls("true")()

    inputs = {i["name"]: (i["type"], i["value"]) for i in gen(dag).tasks["t"].inputs}
    assert inputs == {"i": ("int", "3"), "f": ("float", "0.5"), "s": ("str", "a b"), "b": ("bool", "True"),
                      "v": ("int", "7")}


def test_the_spec_text_the_builder_writes_is_the_json_of_the_spec():
    """The database holds each task's spec as jsontext.dumps writes it; a task yielded again is
    recognized by that text alone, which the builder writes clause by clause. Any difference with
    the text of the spec's dicts would make every task of an existing instance look redefined
    (or hide a change)."""
    from drypipe.jsontext import dumps

    def dag(dsl):
        a = dsl.task(key="a").outputs(f=dsl.file('qu"ote\\é.txt'), n=int, g=dsl.fileset("*.x"),
                                      s=dsl.var(str), d=dsl.file("sub/d.txt")).calls("s.sh")()
        yield a
        b = dsl.task(key="b.1").inputs(a.outputs.f, i=-12, s='tab\t"q" ünï \U0001F600\n', fl=2.5, bo=False,
                                       v=dsl.val("x"), n=a.outputs.n, g=a.outputs.g, d=a.outputs.d,
                                       h=dsl.file("in/h.txt"))
        yield b.inputs(big=10 ** 30).outputs(o=dsl.file("o.txt")).calls("echo '\\' \"$i\"\n").calls(f1)()

    def value(name, type_, text):
        return {"name": name, "kind": "value", "type": type_, "value": text}

    expected = {
        "a": {"inputs": [],
              "outputs": {"f": {"kind": "file", "path": 'qu"ote\\é.txt'}, "n": {"kind": "var", "type": "int"},
                          "g": {"kind": "fileset", "glob": "*.x"}, "s": {"kind": "var", "type": "str"},
                          "d": {"kind": "file", "path": "sub/d.txt"}},
              "steps": [{"kind": "script", "path": "s.sh"}]},
        "b.1": {"inputs": [{"name": "f", "kind": "file", "path": 'output/a/qu"ote\\é.txt', "task": "a"},
                           value("i", "int", "-12"), value("s", "str", 'tab\t"q" ünï \U0001F600\n'),
                           value("fl", "float", "2.5"), value("bo", "bool", "False"), value("v", "str", "x"),
                           {"name": "n", "kind": "var", "type": "int", "task": "a", "output": "n"},
                           {"name": "g", "kind": "glob", "pattern": "output/a/*.x", "task": "a"},
                           {"name": "d", "kind": "file", "path": "output/a/sub/d.txt", "task": "a"},
                           {"name": "h", "kind": "file", "path": "in/h.txt"}, value("big", "int", str(10 ** 30))],
                "outputs": {"o": {"kind": "file", "path": "o.txt"}},
                "steps": [{"kind": "bash", "snippet": "echo '\\' \"$i\"\n"},
                          {"kind": "python", "module": __name__, "function": "f1"}]},
    }
    tasks = gen(dag).tasks
    for key, spec in expected.items():
        assert tasks[key].spec_json() == dumps(spec), key
        assert tasks[key].spec() == spec
    assert tasks["a"].scripts == ("s.sh",) and tasks["b.1"].scripts == ()
    assert tasks["b.1"].upstream == {"a"}


def test_a_clause_added_to_a_builder_after_its_task_is_not_part_of_that_task():
    def dag(dsl):
        b = dsl.task(key="t").inputs(i=1).calls("true")
        yield b()
        b.inputs(j=2)

    t = gen(dag).tasks["t"]
    assert [i["name"] for i in t.inputs] == ["i"] and '"j"' not in t.spec_json()


def test_consumes_and_produces_are_the_same_as_inputs_and_outputs():
    def dag(dsl):
        t1 = dsl.task(key="t1").produces(x=dsl.var(float)).calls("export x=1.5")()
        yield t1
        yield dsl.task(key="t2").consumes(y=t1.outputs.x).calls("echo $y")()

    g = gen(dag)
    assert g.tasks["t2"].inputs[0] == {"name": "y", "kind": "var", "type": "float", "task": "t1", "output": "x"}


@pytest.mark.parametrize("key", ["a/b", "..", "a..b", "has space", "", "-dash-first", "tab\tkey", "../x"])
def test_invalid_keys_are_refused_naming_the_key(key):
    def dag(dsl):
        yield dsl.task(key=key).calls("true")()

    with pytest.raises(InvalidPipeline, match="invalid task key"):
        gen(dag)


def test_duplicate_key_is_an_error_naming_it():
    def dag(dsl):
        yield dsl.task(key="same").calls("true")()
        yield dsl.task(key="same").calls("false")()

    with pytest.raises(InvalidPipeline, match="duplicate task key 'same'"):
        gen(dag)


@pytest.mark.parametrize("clauses, message", [
    (lambda b: b.inputs(a=1).inputs(a=2), "input 'a' is given twice"),
    (lambda b: b.inputs(a=1, b=2).outputs(b=int), "output 'b' is declared twice"),
    (lambda b: b.outputs(o=int).outputs(o=str), "output 'o' is declared twice"),
])
def test_a_name_given_twice_is_an_error_naming_it(clauses, message):
    def dag(dsl):
        yield clauses(dsl.task(key="t")).calls("true")()

    with pytest.raises(InvalidPipeline, match=f"task 't': {message}"):
        gen(dag)
    ok = gen(lambda dsl: iter([dsl.task(key="t").inputs(a=1).outputs(b=int).calls("true")()]))
    assert [i["name"] for i in ok.tasks["t"].inputs] == ["a"]


def test_undecorated_python_call_is_refused():
    def plain():
        return {}

    def dag(dsl):
        yield dsl.task(key="t").calls(plain)()

    with pytest.raises(InvalidPipeline, match="not decorated with @DryPipe.python_call"):
        gen(dag)


def test_undeclared_upstream_output_is_an_error():
    def dag(dsl):
        t1 = dsl.task(key="t1").outputs(x=int).calls("export x=1")()
        yield t1
        yield dsl.task(key="t2").inputs(y=t1.outputs.nope).calls("true")()

    with pytest.raises(InvalidPipeline, match="task 't1' declares no output 'nope'"):
        gen(dag)


def test_generator_exception_names_the_line_and_last_task():
    def dag(dsl):
        yield dsl.task(key="first").calls("true")()
        raise RuntimeError("boom")

    with pytest.raises(GeneratorFailed) as e:
        gen(dag)
    msg = str(e.value)
    assert "RuntimeError: boom" in msg and "test_dsl.py:" in msg and "after task 'first'" in msg


def test_yielding_a_builder_without_call_finishes_it():
    def dag(dsl):
        yield dsl.task(key="task-123").calls("echo hello world")

    assert list(gen(dag).tasks) == ["task-123"]


def test_task_conf_default_comes_from_the_pipeline():
    conf = TaskConf(extra_env={"A": "1"})

    def dag(dsl):
        yield dsl.task(key="a").calls("true")()
        yield dsl.task(key="b", task_conf=TaskConf(executer_type="process")).calls("true")()

    g = generate(Pipeline(dag, task_conf=conf), Oracle())
    assert g.tasks["a"].conf is conf
    assert g.tasks["b"].conf.extra_env == {}


def test_slurm_options_is_an_alias_of_sbatch_options():
    assert TaskConf(executer_type="slurm", slurm_options=["--time=1"]).sbatch_options == ("--time=1",)


def test_wait_for_tasks_yields_nothing_until_completed_then_the_task():
    def dag(dsl):
        a = dsl.task(key="a").outputs(x=int).calls("export x=5")()
        yield a
        for t in dsl.wait_for_tasks(a):
            yield dsl.task(key="b").inputs(y=t.outputs.x.fetch()).calls("true")()

    g = gen(dag, Oracle(states={"a": "ready"}))
    assert list(g.tasks) == ["a"] and g.blocked_waits == [("keys", ("a",))]
    g = gen(dag, Oracle(states={"a": "completed"}, outputs={"a": {"x": "5"}}))
    assert list(g.tasks) == ["a", "b"] and g.blocked_waits == []
    assert g.tasks["b"].inputs[0]["value"] == "5" and g.tasks["b"].inputs[0]["type"] == "int"


def test_wait_for_several_tasks_yields_a_tuple():
    got = []

    def dag(dsl):
        a = dsl.task(key="a").calls("true")()
        b = dsl.task(key="b").calls("true")()
        yield a
        yield b
        for pair in dsl.wait_for_tasks(a, "b"):
            got.append(pair)

    gen(dag, Oracle(states={"a": "completed", "b": "completed"}))
    assert len(got) == 1 and [t.key for t in got[0]] == ["a", "b"]


def test_wait_for_matching_tasks_needs_a_match_and_all_completed():
    def dag(dsl):
        for m in dsl.wait_for_matching_tasks("w-*"):
            yield dsl.task(key="fan-in").inputs(p=m.all.r.as_glob_expression()).calls("ls $p")()

    spec = {"inputs": [], "outputs": {"r": {"kind": "file", "path": "r.json"}}, "steps": []}
    assert gen(dag, Oracle()).tasks == {}
    assert gen(dag, Oracle(states={"w-1": "completed", "w-2": "ready"})).tasks == {}
    g = gen(dag, Oracle(states={"w-1": "completed", "w-2": "completed"}, specs={"w-1": spec, "w-2": spec}))
    assert g.tasks["fan-in"].inputs == [{"name": "p", "kind": "glob", "pattern": "output/w-*/r.json"}]


def test_fetch_before_completion_is_a_clear_error():
    def dag(dsl):
        a = dsl.task(key="a").outputs(x=int).calls("export x=1")()
        yield a
        a.outputs.x.fetch()

    with pytest.raises(InvalidPipeline, match="fetch\\(\\) called before the task completed"):
        gen(dag, Oracle(states={"a": "running"}))


def test_sub_pipeline_prefixes_keys_and_waits():
    def sub(dsl):
        yield dsl.task(key="a-super-task").outputs(v=int).calls("export v=1")()

    def dag(dsl):
        s = dsl.sub_pipeline(sub, "s_")
        yield s
        for t in s.wait_for_tasks("a-super-task"):
            yield dsl.task(key="after").inputs(y=t.outputs.v).calls("true")()

    assert list(gen(dag).tasks) == ["s_a-super-task"]
    g = gen(dag, Oracle(states={"s_a-super-task": "completed"}, outputs={"s_a-super-task": {"v": "1"}}))
    assert list(g.tasks) == ["s_a-super-task", "after"]
    assert g.tasks["after"].inputs[0]["task"] == "s_a-super-task"


def test_file_in_pipeline_instance_dir_is_absolute():
    seen = []

    def dag(dsl):
        seen.append(dsl.file_in_pipeline_instance_dir("dataset.tsv"))
        return iter(())

    gen(dag, Oracle(instance_dir="/data/run1"))
    assert seen == ["/data/run1/dataset.tsv"]


def test_every_reserved_name_a_key_could_spell_has_a_dot():
    """TaskBuilder checks a key without a dot no closer than KEY_RE (100k-task DAGs): that holds
    only while every reserved name and prefix that KEY_RE lets through has a dot."""
    from drypipe.dsl.task import KEY_RE, RESERVED_KEY_PREFIXES, RESERVED_KEYS
    assert all("." in k for k in RESERVED_KEYS)
    assert all("." in p for p in RESERVED_KEY_PREFIXES if KEY_RE.match(p + "x"))
