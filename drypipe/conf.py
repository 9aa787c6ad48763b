"""TaskConf: where and how a task runs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

EXECUTER_TYPES = ("process", "slurm")


@dataclass(frozen=True)
class TaskConf:
    executer_type: str = "process"
    slurm_account: str | None = None
    sbatch_options: tuple[str, ...] = ()
    container: str | None = None
    ssh_specs: str | None = None
    remote_base_dir: str | None = None
    remote_containers_dir: str | None = None
    python_bin: str | None = None
    extra_env: dict = field(default_factory=dict)
    retries: int = 0
    retry_scale: dict = field(default_factory=dict)

    def __init__(self, executer_type: str = "process", slurm_account=None, sbatch_options=None,
                 container=None, ssh_specs=None, remote_base_dir=None, remote_containers_dir=None,
                 python_bin=None, extra_env=None,
                 slurm_options=None, retries=0, retry_scale=None):
        """retries: a task that ends failed.K or timed-out.K runs again at step K, up to this many
        more times (killed.K, cancelled by a person, never does). retry_scale: for a Slurm task,
        {"mem": 2, "time": 1.5} multiplies its --mem and --time at each retry."""
        from .errors import DryPipeError
        if executer_type not in EXECUTER_TYPES:
            raise DryPipeError(f"TaskConf: executer_type={executer_type!r} is not one of {', '.join(EXECUTER_TYPES)}")
        if sbatch_options is not None and slurm_options is not None:
            raise DryPipeError("TaskConf: give sbatch_options or slurm_options (its alias), not both")
        options = sbatch_options if sbatch_options is not None else (slurm_options or ())
        if isinstance(options, str):
            raise DryPipeError("TaskConf: sbatch_options must be a list of strings, not a string")
        env = dict(extra_env or {})
        for k, v in env.items():
            if not isinstance(k, str) or not k.isidentifier():
                raise DryPipeError(f"TaskConf: extra_env name {k!r} is not a valid variable name")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise DryPipeError(f"TaskConf: retries={retries!r} must be an integer >= 0")
        scale = dict(retry_scale or {})
        for k, v in scale.items():
            if k not in ("mem", "time"):
                raise DryPipeError(f"TaskConf: retry_scale key {k!r} is not 'mem' or 'time'")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise DryPipeError(f"TaskConf: retry_scale[{k!r}]={v!r} must be a number > 0")
        set_ = object.__setattr__
        set_(self, "executer_type", executer_type)
        set_(self, "slurm_account", slurm_account)
        set_(self, "sbatch_options", tuple(str(o) for o in options))
        set_(self, "container", container)
        set_(self, "ssh_specs", ssh_specs)
        set_(self, "remote_base_dir", remote_base_dir)
        set_(self, "remote_containers_dir", remote_containers_dir)
        set_(self, "python_bin", python_bin)
        set_(self, "extra_env", {str(k): str(v) for k, v in env.items()})
        set_(self, "retries", retries)
        set_(self, "retry_scale", {k: float(v) for k, v in sorted(scale.items())})

    def __hash__(self):
        return hash(self.to_json_key())

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sbatch_options"] = list(self.sbatch_options)
        return d

    def to_json_key(self) -> str:
        """Canonical JSON of this conf (cached: confs are immutable and shared by many tasks)."""
        cached = self.__dict__.get("_json")
        if cached is None:
            import json
            cached = json.dumps(self.to_dict(), sort_keys=True)
            object.__setattr__(self, "_json", cached)
        return cached

    @classmethod
    def from_dict(cls, d: dict) -> "TaskConf":
        """From stored JSON; fields this version does not know (from another version) are ignored."""
        import inspect
        known = set(inspect.signature(cls.__init__).parameters) - {"self"}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def is_remote(self) -> bool:
        return self.ssh_specs is not None


DEFAULT_TASK_CONF = TaskConf()
