"""CI fails, instead of skipping, the tests of Slurm and sshd when the services it started are
not found: scripts/run-tests.sh exports DRYPIPE_REQUIRE_SERVICES=1 once it started them (as
root), and then conftest.service_env and the bench smoke tests fail where they would skip."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

TESTS = REPO / "tests"

TINY_TEST = textwrap.dedent("""
    from conftest import service_env

    def test_needs_slurm():
        service_env("slurm.env", "slurm-up.sh")
""")


def pytest_run(args, cwd, tmp_path, require: bool | None, extra_env=None) -> subprocess.CompletedProcess:
    empty = tmp_path / "no-services"
    empty.mkdir(exist_ok=True)
    env = dict(os.environ, DRYPIPE_TEST_SERVICES=str(empty), PYTHONPATH=str(TESTS), **(extra_env or {}))
    env.pop("DRYPIPE_REQUIRE_SERVICES", None)
    env.pop("SLURM_CONF", None)
    if require is not None:
        env["DRYPIPE_REQUIRE_SERVICES"] = "1" if require else "0"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def tiny(tmp_path):
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "test_tiny.py").write_text(TINY_TEST)
    return d


def test_service_env_fails_when_the_services_are_required(tiny, tmp_path):
    res = pytest_run(["test_tiny.py"], tiny, tmp_path, require=True)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "1 failed" in out and "skipped" not in out, out
    assert "slurm.env is absent: start the service with scripts/slurm-up.sh (as root)" in out, out


@pytest.mark.parametrize("require", [None, False])
def test_service_env_skips_otherwise(tiny, tmp_path, require):
    res = pytest_run(["test_tiny.py"], tiny, tmp_path, require=require)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "1 skipped" in out and "failed" not in out, out
    assert "slurm.env is absent" in out, out


@pytest.mark.parametrize("test,message", [
    ("test_quick_slurm_run_counts_the_slurm_commands", "no Slurm cluster"),
    ("test_quick_remote_run_reports_wall_time_and_ssh_traffic", "no sshd for the tests"),
])
def test_bench_smoke_fails_without_its_service_when_the_services_are_required(tmp_path, test, message):
    node = f"tests/test_bench_smoke.py::{test}"
    res = pytest_run([node], REPO, tmp_path, require=True)
    out = res.stdout + res.stderr
    assert res.returncode == 1 and "1 failed" in out and message in out, out
    res = pytest_run([node], REPO, tmp_path, require=None)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "1 skipped" in out and message in out, out


def test_run_tests_sh_requires_the_services_once_it_started_them():
    script = (REPO / "scripts" / "run-tests.sh").read_text()
    root_branch = re.search(r'if \[\[ \$\(id -u\) == 0 \]\]; then\n(.*?)\nelse\n(.*?)\nfi\n', script, re.S)
    assert root_branch, "scripts/run-tests.sh: the `as root` branch is not where it was"
    started, not_root = root_branch.groups()
    assert "services-up.sh" in started and "exit 1" in started
    assert started.index("export DRYPIPE_REQUIRE_SERVICES=1") > started.index("services-up.sh")
    assert "DRYPIPE_REQUIRE_SERVICES" not in not_root
    assert script.index("export DRYPIPE_REQUIRE_SERVICES=1") < script.index("-m pytest")


def test_no_test_skips_a_missing_service_on_its_own():
    """Every skip for a missing service goes through conftest (service_env or
    skip_or_fail_without_service), so DRYPIPE_REQUIRE_SERVICES=1 turns all of them into failures."""
    pattern = re.compile(r"pytest\.skip\([^)]*(services-up|slurm-up|sshd-up|no Slurm|no sshd)")
    offenders = sorted(f"{p.name}:{i}" for p in TESTS.glob("test_*.py")
                       for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line))
    assert offenders == []
