"""Shared fixtures: run the real `drypipe` CLI in a subprocess against real instance dirs."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


class CLIResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def __repr__(self):
        return f"<rc={self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}>"


def drypipe(*args, cwd=None, env=None, timeout=300, check=None) -> CLIResult:
    """Run `python -m drypipe ARGS` (the installed package) and capture its output.

    check=True asserts exit 0; check=False asserts a non-zero exit."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "drypipe", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    res = CLIResult(proc)
    if check is True:
        assert res.returncode == 0, res
    elif check is False:
        assert res.returncode != 0, res
    return res


def wait_until(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Poll predicate until it returns a truthy value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def instance_dir(tmp_path) -> Path:
    return tmp_path / "instance"


def state_files(instance: Path) -> dict[str, list[str]]:
    """Task key -> the state.* file names in its task dir."""
    out = {}
    d = instance / ".drypipe"
    for t in sorted(d.iterdir()):
        if t.is_dir() and (t / "task").exists():  # task dirs (not _runtime, _arrays, array parents)
            out[t.name] = sorted(p.name for p in t.iterdir() if p.name.startswith("state."))
    return out


# -- the services of the integration tier (scripts/services-up.sh) --------------------------------
SERVICES_DIR = Path(os.environ.get("DRYPIPE_TEST_SERVICES") or REPO / ".test-services")


def read_env_file(path: Path) -> dict[str, str]:
    """The `export KEY=VALUE` lines (values shell-quoted) of a services env file."""
    env = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "export":
            words = words[1:]
        for word in words:
            key, sep, value = word.partition("=")
            if sep:
                env[key] = value
    return env


def services_required() -> bool:
    """DRYPIPE_REQUIRE_SERVICES=1 (scripts/run-tests.sh sets it when it started the services, as
    root, i.e. in CI): a test that finds a service missing fails instead of being skipped."""
    return os.environ.get("DRYPIPE_REQUIRE_SERVICES") == "1"


def skip_or_fail_without_service(message: str):
    """pytest.skip(message), or pytest.fail(message) when the services are required."""
    if services_required():
        pytest.fail(f"{message} (DRYPIPE_REQUIRE_SERVICES=1: the services must be up)", pytrace=False)
    pytest.skip(message)


def service_env(name: str, up_script: str) -> dict[str, str]:
    """The client env of a running service (slurm.env, ssh.env); skips the test when absent
    (fails it when DRYPIPE_REQUIRE_SERVICES=1)."""
    path = SERVICES_DIR / name
    if not path.is_file():
        skip_or_fail_without_service(f"{path} is absent: start the service with scripts/{up_script} (as root)")
    return read_env_file(path)
