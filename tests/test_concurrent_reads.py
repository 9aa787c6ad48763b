"""Reading an instance while it runs (status, list-states, plain SQL, the API) never fails with
"database is locked" and never stops the run."""
import sqlite3
import subprocess
import sys

from conftest import REPO, wait_until
from drypipe import Instance


def test_a_thousand_reads_during_a_thousand_task_run(tmp_path):
    inst = tmp_path / "inst"
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst),
                             "--generator", "tests.pipelines.engine:thousand"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    db = inst / ".drypipe" / "drypipe.db"
    try:
        wait_until(lambda: db.exists() and Instance(str(inst)).tasks(), what="tasks in the DB")
        api = Instance(str(inst))
        seen_running, reads, completed = False, 0, []
        while reads < 1000:
            if reads % 2:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
                try:
                    counts = dict(con.execute("SELECT state, count(*) FROM tasks GROUP BY state"))
                finally:
                    con.close()
            else:
                counts = api.counts()
            reads += 1
            completed.append(counts.get("completed", 0))
            seen_running |= proc.poll() is None and 0 < counts.get("completed", 0) < 1000
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert seen_running, "the reads did not overlap the run"
    assert completed == sorted(completed)  # a consistent, monotonic view
    assert Instance(str(inst)).counts() == {"completed": 1000}
