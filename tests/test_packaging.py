"""An installed drypipe (a wheel, not this source tree) finds its migrations and runs pipelines;
`dry_pipe` and `python -m drypipe` work as the guide writes them."""
import os
import subprocess
import sys

from conftest import REPO


def test_wheel_installs_migrations_and_runs(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    str(REPO), "-w", str(tmp_path / "wheel")], check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("drypipe-*.whl"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    (tmp_path / "pipe.py").write_text(
        "from dry_pipe import DryPipe\n"
        "def dag(dsl):\n"
        "    yield dsl.task(key='t').outputs(x=int).calls('export x=42')()\n")
    env = dict(os.environ, PYTHONPATH=str(target), XDG_CACHE_HOME=str(tmp_path / "cache"))
    where = subprocess.run([sys.executable, "-c", "import drypipe.state.db as d; print(d.migrations_dir())"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(target)), where
    res = subprocess.run([sys.executable, "-m", "drypipe", "run", "-q", "-pid", "inst", "--generator", "pipe:dag"],
                         env=env, cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = subprocess.run([sys.executable, "-c", "from drypipe import Instance; print(Instance('inst').outputs('t'))"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "{'x': 42}"
