"""`drypipe report`: the HTML report of real runs, opened in headless Chromium.

- A run with completed, retried, failed and waiting tasks: the page draws every chart with no
  console message (a script that throws is caught: see the first test), shows every task key and
  the failure with the tail of its out.log, and opens offline (no external src/href in the
  file, and Chromium's network log shows no request from the page).
- Written during a run: it shows the running attempt.
- Slurm attempts: used vs requested and the suggested --mem and --time.
- 20,000 attempts: written in a few seconds, with the per-attempt parts capped and saying so.
- Bad input: a one-line error.
- The screenshot of the README (docs/report.png): of examples/demo.py; written to a tmp dir, and
  to docs/report.png when DRYPIPE_WRITE_DOCS=1.

Chromium (Debian's `chromium`, which scripts/run-tests.sh installs as root) is required when
DRYPIPE_REQUIRE_SERVICES=1; else its tests are skipped when it is absent.
"""
import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import EXAMPLES, REPO, drypipe, skip_or_fail_without_service, wait_until
from drypipe import Instance
from drypipe.errors import DryPipeError
from drypipe.observe import report_html
from drypipe.observe.report_html import slurm_fit, slurm_mem, slurm_time

GEN = "tests.pipelines.report_html"
FIGURES = ("fig-groups", "fig-concurrency", "fig-timeline", "fig-time", "fig-mem", "fig-cpu", "fig-dag")
# flags of a quiet, private headless Chromium (root needs --no-sandbox)
CHROMIUM_FLAGS = ["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update", "--hide-scrollbars"]


def dp(*args, **kw):
    return drypipe(*args, cwd=REPO, **kw)


def chromium_exe() -> str:
    """Chromium's path; skips the test without it (fails it when DRYPIPE_REQUIRE_SERVICES=1)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        skip_or_fail_without_service("chromium is absent: apt-get install chromium (scripts/run-tests.sh "
                                     "does it as root)")
    return exe


def browse(chromium, page, tmp_path):
    """Open page (a file) in headless Chromium: (the DOM after its scripts ran, the console
    messages, the http(s) URLs the page requested)."""
    netlog = tmp_path / "netlog.json"
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, "--enable-logging=stderr", "--v=0",
                           f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--log-net-log={netlog}",
                           "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console, page_requests(netlog)


def page_requests(netlog) -> list[str]:
    """The http(s) URLs of the requests a page made (Chromium's own have no initiator origin)."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [p["url"] for e in log["events"] if e["type"] == start for p in [e.get("params", {})]
            if p.get("url", "").startswith("http") and p.get("initiator") != "not an origin"]


def run_mixed(inst):
    """`mixed` run twice: flaky fails then passes (2 attempts), boom fails twice."""
    dp("run", "-q", "-pid", inst, "--generator", f"{GEN}:mixed", check=False)
    (inst / "fixed").touch()
    dp("run", "-q", "-pid", inst, "--generator", f"{GEN}:mixed", "--restart-failed", check=False)


def plots_drawn(dom: str) -> int:
    m = re.search(r'data-plots-drawn="(\d+)"', dom)
    return int(m.group(1)) if m else 0


def section(dom: str, anchor: str) -> str:
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', dom, re.S)
    assert m, anchor
    return m.group(1)


# -- the checks of the browser are real -----------------------------------------------------------
def test_the_browser_check_sees_a_script_error_and_a_request(tmp_path):
    chromium = chromium_exe()
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="https://example.com/x.png"><div id="x">before</div><script>'
                    'document.getElementById("x").textContent = "after"; null.f();</script></body></html>')
    dom, console, requests = browse(chromium, page, tmp_path)
    assert ">after<" in dom
    assert any("Uncaught TypeError" in line for line in console), console
    assert requests == ["https://example.com/x.png"]


# -- a finished run -------------------------------------------------------------------------------
def test_report_of_a_run_with_failures(tmp_path):
    chromium = chromium_exe()
    inst = tmp_path / "inst"
    run_mixed(inst)
    res = dp("report", "-pid", inst, check=True)
    page = inst / "report.html"
    assert res.stdout.strip() == str(page)
    text = page.read_text()

    # offline: the one script is plotly.js as the plotly package ships it; nothing links outside
    assert report_html.plotly_js() in text
    outside = text.replace(report_html.plotly_js(), "")
    assert re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", outside, re.I) == []
    assert "<script src" not in outside and "<link" not in outside

    dom, console, requests = browse(chromium, page, tmp_path)
    assert console == [] and requests == []
    assert plots_drawn(dom) == len(FIGURES)
    for fig in FIGURES:  # each div holds a chart plotly drew
        assert re.search(rf'<div class="plot[^"]*" id="{fig}".*?class="main-svg"', dom, re.S), fig

    tasks = section(dom, "tasks")
    keys = [t.key for t in Instance(str(inst)).tasks()]
    assert sorted(keys) == sorted(["prep", "work.1", "work.2", "work.3", "summary", "flaky", "boom", "after-boom"])
    for key in keys:
        assert f"<td>{key}</td>" in tasks, key
    assert re.search(r"<td>after-boom</td><td><span[^>]*>waiting</span></td><td[^>]*>0</td>", tasks)
    assert re.search(r"<td>flaky</td><td><span[^>]*>completed</span></td><td[^>]*>2</td>", tasks)

    failures = section(dom, "failures")
    assert "<h2>Failures (1)</h2>" in failures and "boom" in failures and "failed.0" in failures
    assert "step 0 exited with status 3" in failures and "exit 3" in failures
    tail = re.search(r"<pre>(.*?)</pre>", failures, re.S).group(1)  # the tail of out.log, escaped
    assert "boom line 60" in tail and "the widget broke: &lt;b&gt;not bold&lt;/b&gt; &amp; co" in tail
    assert "boom line 1\n" not in tail  # only the last lines
    assert re.search(r"<td>flaky</td><td[^>]*>1</td><td><span[^>]*>failed</span></td><td[^>]*>4</td>", failures)

    dag = section(dom, "dag")
    mermaid = html.unescape(re.search(r'<pre id="dag-mermaid">(.*?)</pre>', dag, re.S).group(1))
    assert mermaid == dp("dag", "-pid", inst, check=True).stdout.rstrip("\n")  # what `drypipe dag` prints
    assert '-->|"part.txt"|summary' in mermaid
    assert ">boom<" in dag and ">summary<" in dag  # node labels drawn by plotly (SVG text)
    resources = section(dom, "resources")
    for group in ("prep", "work", "summary", "flaky", "boom"):
        assert f"<td>{group}</td>" in resources
    assert "Slurm" not in resources  # no Slurm task: no used vs requested


# -- during a run ---------------------------------------------------------------------------------
def test_report_during_a_run_shows_the_running_attempt(tmp_path):
    chromium = chromium_exe()
    inst = tmp_path / "inst"
    proc = subprocess.Popen([sys.executable, "-m", "drypipe", "run", "-q", "-pid", str(inst),
                             "--generator", f"{GEN}:blocking"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        def blocker_started():
            try:
                states = {t.key: t.state for t in Instance(str(inst)).tasks()}
            except DryPipeError:  # no database yet
                return False
            return states == {"quick": "completed", "blocker": "step-started"}
        wait_until(blocker_started, timeout=30, what="blocker to start and quick to end")
        page = tmp_path / "during.html"
        dp("report", "-pid", inst, "-o", page, check=True)
    finally:
        (inst / "release").touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err

    dom, console, requests = browse(chromium, page, tmp_path)
    assert console == [] and requests == []
    assert plots_drawn(dom) == len(FIGURES)
    assert f"Written during a run (orchestrator pid {proc.pid})" in dom
    summary = section(dom, "summary")
    assert re.search(r"<h3>Running now</h3><table[^>]*><thead>.*?<td>blocker</td><td[^>]*>1</td>", summary, re.S)
    timeline = section(dom, "timeline")
    assert re.search(r'class="legendtext"[^>]*>running<', timeline)  # the running bar's trace
    assert re.search(r"<td>blocker</td><td><span[^>]*>step-started.0</span>", section(dom, "tasks"))


# -- Slurm: used vs requested ---------------------------------------------------------------------
def attempt(status="completed", rss=None, secs=None, req_mem=2 ** 30, req_time=3600.0, slurm_state=None):
    return {"status": status, "peak_rss": rss, "realtime": None if secs is None else secs * 1000,
            "req_mem": req_mem, "req_time": req_time, "slurm_state": slurm_state}


def test_suggested_slurm_requests():
    assert (slurm_mem(1), slurm_mem(2280 * 2 ** 20), slurm_mem(12.2 * 2 ** 30)) == ("100M", "2300M", "13G")
    assert (slurm_time(1), slurm_time(900), slurm_time(3 * 3600 + 1), slurm_time(2 * 86400 + 60)) == \
        ("00:01:00", "00:15:00", "03:01:00", "2-00:01:00")
    done = [attempt(rss=i * 100 * 2 ** 20, secs=30 * i) for i in range(1, 21)]  # 100 MiB..2000 MiB, 30..600 s
    fit = slurm_fit(done)
    assert fit["suggest_mem"] == "2300M"  # p95 1900 MiB x 1.2
    assert fit["suggest_time"] == "00:15:00"  # p95 570 s x 1.5 = 855 s
    assert fit["mem"]["max"] == pytest.approx(2000 / 1024) and fit["time"]["p95"] == pytest.approx(570 / 3600)
    # out of memory at 4G, out of time at 1 h: at least twice those
    fit = slurm_fit(done + [attempt("failed", rss=4 * 2 ** 30, secs=10, req_mem=4 * 2 ** 30,
                                    slurm_state="OUT_OF_MEMORY"),
                            attempt("timed-out", rss=2 ** 20, secs=3600, slurm_state="TIMEOUT")])
    assert (fit["suggest_mem"], fit["suggest_time"], fit["oom"], fit["timeouts"]) == ("8200M", "02:00:00", 1, 1)
    assert slurm_fit([]) is None


def test_report_of_slurm_attempts(tmp_path):
    """The attempts of a real run made to look like Slurm ones (no cluster needed)."""
    chromium = chromium_exe()
    inst = tmp_path / "inst"
    run_mixed(inst)
    with sqlite3.connect(inst / ".drypipe" / "drypipe.db") as db:
        db.execute("UPDATE attempt SET executer = 'slurm', req_mem = 1073741824, req_time = 600, "
                   "peak_rss = 429496729, start = submit + 1, complete = submit + 61, slurm_state = 'COMPLETED'")
    page = tmp_path / "slurm.html"
    dp("report", "-pid", inst, "-o", page, check=True)
    dom, console, _ = browse(chromium, page, tmp_path)
    assert console == [] and plots_drawn(dom) == len(FIGURES) + 1
    assert re.search(r'id="fig-slurm".*?class="main-svg"', dom, re.S)
    resources = section(dom, "resources")
    # 400 MiB of 1 GiB for 60 s of 10 min: 40% and 10%; suggested 480 MiB -> 500M and 90 s -> 2 min
    row = re.search(r"<tr><td>work</td>(.*?)</tr>", resources.split("Slurm tasks")[1]).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells == ["1.0 GB", "40%", "40%", "0", "<b>500M</b>", "10m00.0s", "10%", "10%", "0", "<b>00:02:00</b>"]


# -- a large instance -----------------------------------------------------------------------------
def test_20000_attempts_in_a_few_seconds(tmp_path):
    inst = tmp_path / "inst"
    run_mixed(inst)
    n = 20_000
    with sqlite3.connect(inst / ".drypipe" / "drypipe.db") as db:
        conf, spec, t0 = db.execute("SELECT conf_id, spec, created_at FROM task WHERE key = 'work.1'").fetchone()
        first = db.execute("SELECT max(id) FROM task").fetchone()[0] + 1
        db.executemany("INSERT INTO task (id, key, state, executer_type, conf_id, spec, created_at, launched_at, "
                       "started_at, ended_at) VALUES (?, ?, 'completed', 'process', ?, ?, ?, ?, ?, ?)",
                       [(first + i, f"big.{i}", conf, spec, t0, t0 + i, t0 + i + 1, t0 + i + 5) for i in range(n)])
        db.executemany("INSERT INTO attempt (task_id, attempt, executer, hash, workdir, status, submit, start, "
                       "complete, cpu_user, cpu_sys, peak_rss) VALUES (?, 1, 'process', 'abcd1234', '/w', "
                       "'completed', ?, ?, ?, 1.5, 0.5, ?)",
                       [(first + i, t0 + i, t0 + i + 1, t0 + i + 5, 2 ** 20 * (1 + i % 100)) for i in range(n)])
    started = time.monotonic()
    text = report_html.render(str(inst))
    elapsed = time.monotonic() - started
    assert elapsed < 8, f"{elapsed:.1f}s"
    assert f"The {report_html.TIMELINE_CAP:,} latest of {n + 9:,} attempts" in text
    assert f"The first {report_html.DETAIL_CAP:,} of {n + 8:,} tasks." in text
    assert text.count("<td>big.") == report_html.DETAIL_CAP - 8
    assert "a node per key pattern" in text and "big.* (20000 tasks)" in text  # a grouped DAG
    # the aggregates count every attempt: 20,000 x 2 s of CPU
    assert "11h06m" in re.search(r'<div class="v">([^<]*)</div><div class="k">CPU time', text).group(1)
    assert re.search(r"<tr><td>big</td><td[^>]*>20000</td>", text)
    print(f"report of {n + 9} attempts: {elapsed:.2f}s, {len(text) / 1e6:.1f} MB")


# -- bad input ------------------------------------------------------------------------------------
def test_bad_input_is_one_line(tmp_path):
    res = dp("report", "-pid", tmp_path / "nowhere", check=False)
    assert res.returncode != 0 and "no such instance directory" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    (tmp_path / "plain").mkdir()
    res = dp("report", "-pid", tmp_path / "plain", check=False)
    assert res.returncode != 0 and "not a pipeline instance" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    res = dp("report", "-pid", tmp_path / "plain", "-o", tmp_path / "missing" / "r.html", check=False)
    assert res.returncode != 0 and f"directory {tmp_path / 'missing'} does not exist" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


# -- the screenshot of the README -----------------------------------------------------------------
def test_screenshot_of_the_demo(tmp_path):
    chromium = chromium_exe()
    inst = tmp_path / "demo"
    drypipe("run", "-q", "-pid", inst, "--generator", "demo:pipeline", cwd=EXAMPLES, check=True)
    dp("report", "-pid", inst, check=True)
    shot = tmp_path / "report.png"
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
                           f"--screenshot={shot}", "--window-size=1280,1600", (inst / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("DRYPIPE_WRITE_DOCS") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "report.png")
