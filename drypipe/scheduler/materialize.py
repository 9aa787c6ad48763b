"""Writing a task's directory just before it is launched: the `task` launcher (which carries
its environment and configuration, and writes `task-env.sh` and `task-conf.json` when it
starts, unless the orchestrator that forked it wrote them) and its state file; for a local
task, its output and scratch dirs and those two files too. Done at launch, not at generation,
because a task's environment holds the values of its upstream variables, known only once they
completed."""
from __future__ import annotations

import os
import sys

from ..errors import InstanceError
from ..runtime import render
from ..state import statefile
from ..state import states as S

SPARE_REL = os.path.join(".drypipe", "_spare")  # empty dirs: scratch dirs to be (recycle_scratch)
DRYPIPE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
"""The directory DryPipe's package is imported from (put on task python paths, uploaded to hosts)."""


def _write(path: str, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def task_dir(instance_dir: str, key: str) -> str:
    return os.path.join(instance_dir, ".drypipe", key)


def output_dir(instance_dir: str, key: str) -> str:
    return os.path.join(instance_dir, "output", key)


class Materializer:
    def __init__(self, instance_dir: str, code_dir: str, containers_dir: str | None, graph):
        self.instance_dir = instance_dir
        self.code_dir = code_dir
        self.containers_dir = containers_dir
        self.graph = graph
        self._python_paths: dict[str, list[str]] = {}
        self.fresh = False  # did the last materialize() create the task dir?
        self.premade: dict[str, bool] = {}  # key -> fresh: task dirs written ahead (premake)
        self._spare: list[str] | None = None  # the empty dirs in .drypipe/_spare
        self._spare_seq = 0  # the name of the next one

    @property
    def runtime_path(self) -> str:
        return os.path.join(self.instance_dir, render.RUNTIME_REL)

    def install_runtime(self) -> str:
        """Write .drypipe/_runtime/task-runner.sh (when its content changed); return its path."""
        path = self.runtime_path
        text = render.render_runtime()
        try:
            with open(path) as f:
                if f.read() == text:
                    return path
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        _write(path + ".tmp", text, 0o644)
        os.replace(path + ".tmp", path)
        return path

    def python_path(self, spec: dict) -> list[str]:
        mods = tuple(s["module"] for s in spec["steps"] if s["kind"] == "python")
        if not mods:
            return []
        cache_key = "\0".join(mods)
        pp = self._python_paths.get(cache_key)
        if pp is None:
            pp = []
            for m in mods:
                root = import_root(m)
                if root and root not in pp:
                    pp.append(root)
            for extra in (self.code_dir, DRYPIPE_ROOT):
                if extra not in pp:
                    pp.append(extra)
            self._python_paths[cache_key] = pp
        return pp

    def upstream_values(self, spec: dict) -> dict[str, str]:
        nodes = self.graph.nodes
        return {i["name"]: nodes[i["task"]].outputs[i["output"]]
                for i in spec["inputs"] if i["kind"] == "var"}

    def env_text(self, node) -> str:
        spec = node.spec
        return render.render_env(node.key, spec, node.conf, self.instance_dir, self.code_dir,
                                 self.containers_dir, self.upstream_values(spec), self.python_path(spec),
                                 remote=node.conf.is_remote)

    def premake(self, node) -> None:
        """Write ahead the task dir of a waiting local task that will be ready when a running
        task completes (its `task`, task-env.sh, task-conf.json, state.waiting): its launch then
        writes only its state file and output dirs, off a dependent task's critical path. Not
        for a task that reads output variables (its environment holds their values)."""
        key = node.key
        if key in self.premade or any(i["kind"] == "var" for i in node.spec["inputs"]):
            return
        tdir = task_dir(self.instance_dir, key)
        try:
            os.mkdir(tdir)
            fresh = True
        except FileExistsError:
            fresh = False
        self._write_files(node, tdir, True)
        statefile.write(tdir, S.WAITING, None if fresh else statefile.read(tdir))
        self.premade[key] = fresh

    def unmake(self, keys) -> None:
        """Remove what premake() wrote for these tasks (never launched): at rest, a task never
        made ready has no task dir (`prepare` writes those of ready tasks)."""
        for key in keys:
            fresh = self.premade.pop(key, None)
            if fresh is None:
                continue
            tdir = task_dir(self.instance_dir, key)
            for name in ("task", "task-env.sh", "task-conf.json", statefile.PREFIX + S.WAITING):
                try:
                    os.unlink(os.path.join(tdir, name))
                except FileNotFoundError:
                    pass
            if fresh:
                try:
                    os.rmdir(tdir)
                except OSError:
                    pass

    def forget(self, key: str) -> None:
        """key's definition changed: what premake() wrote is stale (its launch writes it all)."""
        self.premade.pop(key, None)

    def _write_files(self, node, tdir: str, local: bool) -> str:
        key, spec, conf = node.key, node.spec, node.conf
        script = os.path.join(tdir, "task")
        python = conf.python_bin or ("python3" if conf.container or conf.is_remote else sys.executable)
        env_text, conf_json = self.env_text(node), render.render_task_conf(key, spec, conf)
        _write(script, render.render_task_script(key, spec, python, env_text, conf_json,
                                                 container=conf.container,
                                                 drypipe_root=None if conf.is_remote else DRYPIPE_ROOT), 0o755)
        if local:
            # the launcher then writes neither file: a file written from Python costs a fraction
            # of what a forked bash pays for it (a dependent task starts ~0.3 ms sooner)
            _write(os.path.join(tdir, "task-env.sh"), env_text, 0o644)
            _write(os.path.join(tdir, "task-conf.json"), conf_json, 0o644)
        return script

    def materialize(self, node, state: str, slurm: bool = False) -> str:
        """Write the task dir of node with state file `state`; return the `task` script path."""
        key = node.key
        tdir = task_dir(self.instance_dir, key)
        local = state == S.LAUNCHED and not slurm and not node.conf.is_remote
        fresh = self.premade.pop(key, None)
        if fresh is not None and local:  # written ahead (premake): what the launch adds
            self.fresh = fresh
            self.make_output_dirs(key)
            statefile.write(tdir, state, S.WAITING)
            return os.path.join(tdir, "task")
        try:
            os.mkdir(tdir)
            current = None
            self.fresh = True
        except FileExistsError:
            current = statefile.read(tdir)
            self.fresh = False
        script = self._write_files(node, tdir, local)
        if local:
            self.make_output_dirs(key)  # the launcher then forks no mkdir
        if slurm:
            from ..executors.slurm_text import render_task_sbatch_script
            _write(os.path.join(tdir, "sbatch-launcher.sh"), render_task_sbatch_script(f".drypipe/{key}"), 0o755)
        if self.fresh:  # (nothing to look for in a dir just made)
            statefile.create(tdir, state)
        else:
            statefile.write(tdir, state, current)
        return script

    # -- scratch dirs ----------------------------------------------------------------------------
    # The empty scratch dir of a local task that completed is taken out of its output dir, but
    # not removed: it is moved to .drypipe/_spare/, and becomes the scratch dir of a task launched
    # later. On ext4 without a journal (these machines), the inode allocator avoids reusing an
    # inode freed in the last minutes and skips such inodes one by one: an rmdir per task made
    # the file creations of the next minutes slower (those of the run itself, and of the next
    # one); a rename allocates and frees nothing.

    def make_output_dirs(self, key: str) -> None:
        """output/<key> and its scratch dir, as the launcher of a local task would make them."""
        out = output_dir(self.instance_dir, key)
        scratch = os.path.join(out, "scratch")
        try:
            os.mkdir(out)
        except FileExistsError:
            if os.path.isdir(scratch):
                return  # (kept: a rename onto an empty dir would replace it, a deletion)
        spare = self._spares()
        while spare:
            try:
                os.rename(spare.pop(), scratch)
                return
            except OSError:
                continue  # (that one is gone: the next)
        try:
            os.mkdir(scratch)
        except FileExistsError:
            pass

    def recycle_scratch(self, key: str) -> None:
        """The scratch dir of a local task that completed, when empty: made a spare (removed when
        the task changed its mode: a spare must be what a new scratch dir is)."""
        out = output_dir(self.instance_dir, key)
        scratch = os.path.join(out, "scratch")
        try:
            with os.scandir(scratch) as entries:
                if next(entries, None) is not None:
                    return  # what the task left there stays
            if os.stat(scratch).st_mode != os.stat(out).st_mode:  # (both made with the same umask)
                os.rmdir(scratch)
                return
            spare = self._spares()
            path = os.path.join(self.instance_dir, SPARE_REL, str(self._spare_seq))
            os.rename(scratch, path)
        except OSError:
            return
        self._spare_seq += 1
        spare.append(path)

    def _spares(self) -> list[str]:
        if self._spare is None:
            base = os.path.join(self.instance_dir, SPARE_REL)
            os.makedirs(base, exist_ok=True)
            names = [e.name for e in os.scandir(base) if e.name.isdigit()]
            self._spare = [os.path.join(base, n) for n in names]
            self._spare_seq = max(map(int, names), default=-1) + 1
        return self._spare


def upload_paths(instance_dir: str, spec: dict) -> list[str]:
    """The input files of a task to send to a remote host, relative to the instance dir."""
    import glob as _glob
    out = []
    for i in spec["inputs"]:
        if i["kind"] == "file" and not os.path.isabs(i["path"]):
            if os.path.exists(os.path.join(instance_dir, i["path"])):
                out.append(i["path"])
        elif i["kind"] == "glob" and not os.path.isabs(i["pattern"]):
            for p in _glob.glob(os.path.join(_glob.escape(instance_dir), i["pattern"])):
                out.append(os.path.relpath(p, instance_dir))
    return out


def import_root(module_name: str) -> str | None:
    """The sys.path entry from which module_name was imported."""
    mod = sys.modules.get(module_name)
    f = getattr(mod, "__file__", None)
    if not f:
        return None
    root = os.path.dirname(os.path.abspath(f))
    if os.path.basename(f) == "__init__.py":
        root = os.path.dirname(root)
    for _ in range(module_name.count(".")):
        root = os.path.dirname(root)
    return root


_umask_set = []


def restrict_umask() -> None:
    """Nothing DryPipe (or its tasks) creates is world-writable. Done once per process: two
    threads (drypipe service) must not interleave the read-and-set of umask."""
    if not _umask_set:
        os.umask(os.umask(0) | 0o002)
        _umask_set.append(True)


def ensure_instance_dir(path: str) -> None:
    try:
        os.makedirs(os.path.join(path, ".drypipe"), exist_ok=True)
        os.makedirs(os.path.join(path, "output"), exist_ok=True)
    except OSError as e:
        raise InstanceError(f"{path}: cannot create the instance directory: {e.strerror}") from e
    if not os.access(os.path.join(path, ".drypipe"), os.W_OK) or not os.access(path, os.W_OK):
        raise InstanceError(f"{path}: instance directory is not writable")
