"""TaskConf(container=...): steps run through `apptainer exec` (or `singularity exec`).

Apptainer cannot be installed on these machines: tests/doubles/apptainer is a TEST DOUBLE that
logs its exact command line and runs the command on the host."""
import os
import shlex
import shutil
from pathlib import Path

import pytest

from conftest import REPO, drypipe
from drypipe import Instance

DOUBLES = Path(__file__).parent / "doubles"
DRYPIPE_ROOT = str(REPO)


def env_with_double(tmp_path, name="apptainer"):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shutil.copy(DOUBLES / "apptainer", bin_dir / name)
    containers = tmp_path / "containers"
    containers.mkdir(exist_ok=True)
    (containers / "tool.sif").write_bytes(b"not really an image")
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "APPTAINER_DOUBLE_LOG": str(tmp_path / "calls.log"),
            "CONTAINERS_DIR": str(containers)}


def logged_calls(tmp_path):
    return [shlex.split(line) for line in (tmp_path / "calls.log").read_text().splitlines()]


def test_steps_run_in_the_image_with_exact_command_lines(tmp_path, instance_dir):
    env = env_with_double(tmp_path)
    drypipe("run", "-q", "-pid", instance_dir, "--generator", "tests.pipelines.containers:pipeline", cwd=REPO,
            env=env, check=True)
    image = str(tmp_path / "containers" / "tool.sif")
    task = str(instance_dir / ".drypipe" / "boxed" / "task")
    code_dir = str(REPO / "tests" / "pipelines")
    assert [c[1:] for c in logged_calls(tmp_path)] == [
        ["exec", "--bind", str(instance_dir), "--bind", code_dir, "--bind", DRYPIPE_ROOT, image, "bash", task,
         "step", str(n)] for n in (0, 1)]
    assert (instance_dir / "output" / "boxed" / "seen.txt").read_text() == f"bash step in {image}\n"
    assert Instance(str(instance_dir)).outputs("boxed")["y"] == 42
    assert Instance(str(instance_dir)).outputs("boxed")["where"] == image


def test_singularity_is_used_where_apptainer_is_absent(tmp_path, instance_dir):
    if shutil.which("apptainer"):
        pytest.skip("a real apptainer is installed")
    env = env_with_double(tmp_path, name="singularity")
    drypipe("run", "-q", "-pid", instance_dir, "--generator", "tests.pipelines.containers:pipeline", cwd=REPO,
            env=env, check=True)
    assert {Path(c[0]).name for c in logged_calls(tmp_path)} == {"singularity"}


def test_a_missing_image_fails_the_step_with_the_runtimes_message(tmp_path, instance_dir):
    env = env_with_double(tmp_path)
    res = drypipe("run", "-q", "-pid", instance_dir, "--generator", "tests.pipelines.containers:pipeline_missing",
                  cwd=REPO, env=env)
    assert res.returncode == 1 and "nope: failed.0" in res.stderr
    assert "could not open image" in (instance_dir / ".drypipe" / "nope" / "out.log").read_text()


@pytest.mark.slurm
def test_container_steps_in_a_slurm_job(tmp_path, instance_dir):
    from conftest import service_env
    env = {**env_with_double(tmp_path), **service_env("slurm.env", "slurm-up.sh"), "EXECUTER": "slurm"}
    drypipe("run", "-q", "-pid", instance_dir, "--generator", "tests.pipelines.containers:pipeline", cwd=REPO,
            env=env, check=True)
    calls = logged_calls(tmp_path)
    image = str(tmp_path / "containers" / "tool.sif")
    assert len(calls) == 2 and all(c[1] == "exec" and image in c for c in calls)
    assert "--bind" in calls[0] and str(instance_dir) in calls[0]
    info = Instance(str(instance_dir)).task("boxed")
    assert info.executer_type == "slurm" and "_" in info.job_id
    assert Instance(str(instance_dir)).outputs("boxed")["y"] == 42
