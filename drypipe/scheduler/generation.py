"""Running the DAG generator: registering the tasks it yields for the first time, taking the
new definition of a task not run yet, checking completed ones for changes (scheduler/changes.py),
and indexing the waits it is blocked on.

A new task is recorded as the generator yields it (its row goes to the store, whose writer
process inserts a big DAG while the generator still runs); the graph takes the new tasks only
once the whole generation stands, and a failed one leaves no trace (Store.drop_generation)."""
from __future__ import annotations

import contextlib
import gc
import logging
import os

from ..conf import TaskConf
from ..dsl.pipeline import generate
from ..errors import InvalidPipeline
from ..state import states as S
from ..state.store import now
from . import changes
from .graph import Node

log = logging.getLogger("drypipe.orchestrator")


def generate_once(orch) -> list[Node]:
    """Run the DAG generator once; register the tasks it yields for the first time."""
    with gc_paused():
        return _generate(orch)


def _generate(orch) -> list[Node]:
    orch.regenerate = False
    graph, store = orch.graph, orch.store
    new: list[Node] = []
    new_tasks = []
    fresh_ready: list[Node] = []
    t = now()
    code_dir = orch.materializer.code_dir
    conf_cache: dict[int, tuple[int, str]] = {}  # id(TaskConf) -> (conf id, executer type)
    scripts_checked: set[str] = set()
    nodes = graph.nodes
    next_id = orch.next_id
    nonlocal_confs: list = []  # the TaskConfs of new tasks that run on Slurm or a remote host
    add_task = store.add_task

    def add_new(task) -> None:
        """A task the graph does not know, as the generator yields it: its row goes to the store
        at once (a big DAG is written while the generator runs); the graph takes it at the end."""
        nonlocal next_id
        key = task.key
        for path in task.scripts:
            if path not in scripts_checked:
                if not os.path.isfile(os.path.join(code_dir, path)):
                    raise InvalidPipeline(f"task {key!r}: calls({path!r}): no such script in "
                                          f"$__pipeline_code_dir ({code_dir})")
                scripts_checked.add(path)
        conf = task.conf
        cached = conf_cache.get(id(conf))
        if cached is None:
            check_supported(key, conf)
            cached = conf_cache[id(conf)] = (store.conf_id(conf.to_json_key()), conf.executer_type)
            if conf.executer_type == "slurm" or conf.is_remote:
                nonlocal_confs.append(conf)
        # (the node of a task created waiting keeps the JSON text of its spec alone, parsed if ever
        # needed: in a big DAG, most wait long and the text is a fraction of the dicts' memory)
        text = task.spec_json()
        n = Node(next_id, key, S.WAITING, None, cached[1], conf, cached[0], text)
        next_id += 1
        n.created_at = t
        # ready when every upstream is known and completed (one yielded in this generation is new,
        # so not completed; one not yielded at all is an error, found below)
        for up in task.upstream:
            u = nodes.get(up)
            if u is None or u.state != S.COMPLETED:
                break
        else:
            n.state = S.READY  # created ready: not a transition
            n.spec = task.spec()  # (it runs soon: its dicts, cheaper from the builder's record than parsed)
            n.spec_json = text  # (which the setter cleared)
            fresh_ready.append(n)
        new.append(n)
        new_tasks.append(task)
        add_task(n, text)

    store.begin_generation()
    try:
        gen = generate(orch.pipeline, graph, add_new)
        yielded = gen.tasks
        for n, task in zip(new, new_tasks):
            for up in task.upstream:  # the keys of its inputs' tasks (the DSL has them)
                if up not in nodes and up not in yielded:
                    raise InvalidPipeline(f"task {n.key!r} consumes an output of task {up!r}, "
                                          "which the generator did not yield")
    except BaseException:
        store.drop_generation()
        raise
    store.end_generation()
    orch.next_id = next_id
    if nonlocal_confs:
        orch.any_nonlocal = True
    # (the new ones are not in the graph yet: all yielded were new, or the others are known)
    done = [] if len(new) == len(yielded) else yielded_again(orch, yielded)
    for n in new:
        nodes[n.key] = n
    link = graph.link
    for n, task in zip(new, new_tasks):
        if task.upstream:
            link(n, task.upstream)
    orch.ready.extend(fresh_ready)
    changes.check(orch, done)
    orch.blocked_waits = gen.blocked_waits
    index_glob_waits(orch)
    log.info("generator yielded %d tasks, %d new; %d waits blocked", len(gen.tasks), len(new),
             len(orch.blocked_waits))
    return new


def yielded_again(orch, yielded: dict) -> list:
    """The tasks the graph knows among those yielded: take the new definition of those not run
    (update_definition); return the completed ones, with their task: are they out of date?"""
    nodes = orch.graph.nodes
    done = []
    same_conf: dict[tuple[int, int], bool] = {}  # (id(TaskConf), conf_id) -> equal? (frozen)
    last_same = (None, None)  # the last (TaskConf, conf id) found equal
    for key, task in yielded.items():
        known = nodes.get(key)
        if known is None:
            continue
        state = known.state
        if state == S.COMPLETED:
            done.append((known, task))
        elif state not in S.ACTIVE:
            # yielded again as recorded (100k tasks prepared again): one string comparison
            if task.spec_json() == known.spec_json and last_same[0] is task.conf \
                    and last_same[1] == known.conf_id:
                continue
            if update_definition(orch, known, task, same_conf):
                last_same = (task.conf, known.conf_id)
    return done


def update_definition(orch, n: Node, task, same_conf: dict | None = None) -> bool:
    """A task not run (or failed) whose definition changed in the generator: take the new one
    (a fixed snippet is what --restart-failed/--reset-failed should run), its TaskConf and
    executer type included. same_conf: a cache of TaskConf comparisons, for one generation.
    True when the task is unchanged."""
    text = task.spec_json()
    # the same text as recorded needs no parse of either spec (100k tasks prepared again)
    if text == n.spec_json or task.spec() == n.spec:
        if same_conf is None:
            same = task.conf == n.conf
        else:
            ck = (id(task.conf), n.conf_id)
            same = same_conf.get(ck)
            if same is None:
                same = same_conf[ck] = task.conf == n.conf
        if same:
            return True
    spec = task.spec()
    if {i.get("task") for i in spec["inputs"]} != {i.get("task") for i in n.spec["inputs"]}:
        log.warning("task %s: its inputs' upstream tasks changed in the generator; keeping the "
                    "recorded definition", n.key)
        return False
    n.spec = spec
    n.spec_json = text
    orch.materializer.forget(n.key)  # (a task dir written ahead holds the old definition)
    if task.conf != n.conf:
        check_supported(n.key, task.conf)
        n.conf, n.conf_id = task.conf, orch.store.conf_id(task.conf.to_json_key())
        n.executer_type = task.conf.executer_type
        if n.executer_type == "slurm" or n.conf.is_remote:
            orch.any_nonlocal = True
    orch.store.update_definition(n, text)
    orch.redefined.add(n.key)
    if n.key not in orch.changes.rerun:  # --rerun-changed said so already
        log.warning("task %s: definition changed in the generator; the new one will run", n.key)
    return False


def index_glob_waits(orch) -> None:
    """For each blocked wait: the uncompleted tasks it needs, counted down on completions."""
    orch.glob_waits = []
    for kind, items in orch.blocked_waits:
        if kind == "keys":
            need = {k for k in items if orch.graph.state_of(k) != S.COMPLETED}
            orch.glob_waits.append([need, all(orch.graph.is_known(k) for k in items)])
        else:
            need, satisfiable = set(), True
            for g in items:
                keys = orch.graph.keys_matching(g)
                if not keys:
                    satisfiable = False
                need.update(k for k in keys if orch.graph.state_of(k) != S.COMPLETED)
            orch.glob_waits.append([need, satisfiable])


@contextlib.contextmanager
def gc_paused():
    """Building the graph allocates a few objects per task and frees almost none: the cyclic GC
    would rescan them all, again and again (2.5 s of a 100k-task prepare). Pause it, then
    freeze what was built so later collections skip the long-lived graph."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


def check_supported(key: str, conf: TaskConf) -> None:
    if conf.is_remote and not conf.remote_base_dir:
        raise InvalidPipeline(f"task {key!r}: TaskConf ssh_specs needs remote_base_dir")
