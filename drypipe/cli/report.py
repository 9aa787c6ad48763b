"""What `drypipe run` prints: a progress line while it runs and a summary at the end."""
from __future__ import annotations

import os
import sys
import time

import click

from ..observe.progress import ProgressTracker, newest, run_line
from ..state import states as S

ORDER = (S.COMPLETED, S.LAUNCHED, S.STEP_STARTED, S.READY, S.WAITING, S.FAILED, S.KILLED, S.TIMED_OUT)


def format_counts(counts: dict[str, int]) -> str:
    running = counts.get(S.LAUNCHED, 0) + counts.get(S.STEP_STARTED, 0)
    parts = [f"{counts.get(S.COMPLETED, 0)} completed", f"{running} running"]
    for k in (S.READY, S.WAITING, S.FAILED, S.KILLED, S.TIMED_OUT):
        if counts.get(k):
            parts.append(f"{counts[k]} {k}")
    return ", ".join(parts)


class ConsoleReporter:
    """Progress on stderr: done/total, running, failed and an ETA (drypipe/observe/progress.py),
    redrawn in place on a terminal (at most 10 times a second), one line every 10 s otherwise.

    It is called every scheduling round: a round costs a clock read. The counts are kept up to
    date from the run's events (task_ended, new tasks in the graph), never by scanning the graph,
    except once when the run starts; the last line has the counts the run ended with."""

    TTY_INTERVAL = 0.1
    PLAIN_INTERVAL = 10.0

    def __init__(self, quiet: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.interval = self.TTY_INTERVAL if self.tty else self.PLAIN_INTERVAL
        self.t0 = time.monotonic()
        self._last = float("-inf")
        self._last_text = ""
        self.tracker = ProgressTracker()
        self._known = 0  # tasks of the graph the tracker has counted

    def _sync(self, orch) -> None:
        """Count the tasks the generator added to the graph since the last call (they are
        added at its end; none is removed)."""
        nodes = orch.graph.nodes
        n = len(nodes)
        if n == self._known:
            return
        if n > self._known:
            for node in newest(nodes, n - self._known):
                self.tracker.add(node)
        else:
            self.tracker = ProgressTracker.from_tasks(nodes.values())
        self._known = n

    def _emit(self, orch, summary=None, force=False):
        nowt = time.monotonic()
        self._last = nowt
        if summary is None:
            self._sync(orch)
            summary = self.tracker.summary(orch.local.running_now + orch.slurm.running + orch.remote.running)
        text = run_line(summary, nowt - self.t0)
        if text == self._last_text and not force:
            return
        self._last_text = text
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def started(self, orch):
        if self.quiet:
            return
        self.stream.write(f"drypipe: running {orch.instance_dir} "
                          f"(up to {orch.local.max_parallel} local tasks at once)\n")
        self.tracker = ProgressTracker.from_tasks(orch.graph.nodes.values())
        self._known = len(orch.graph.nodes)

    def generated(self, orch, n):
        if not self.quiet:
            self._sync(orch)

    def progress(self, orch):
        if not self.quiet and time.monotonic() - self._last >= self.interval:
            self._emit(orch)

    def task_ended(self, orch, node):
        if self.quiet:
            return
        self._sync(orch)
        self.tracker.ended(node)
        if node.state in S.FAILURES:
            if self.tty:
                self.stream.write("\r\033[K")
                self._last, self._last_text = float("-inf"), ""  # the progress line is redrawn
            self.stream.write(f"task {node.key}: {node.state_name}"
                              + (f" ({node.message})" if node.message else "") + "\n")

    def finished(self, orch, result):
        if self.quiet:
            return
        self._emit(orch, self.tracker.summary_of_counts(result.counts), force=True)
        if self.tty:
            self.stream.write("\n")


def print_summary(result, instance_dir) -> None:
    out = sys.stderr
    out.write(f"drypipe: {result.total} tasks: {format_counts(result.counts)}\n")
    if result.failed:
        out.write(f"{len(result.failed)} task(s) did not complete:\n")
        for n in sorted(result.failed, key=lambda n: n.key)[:50]:
            log = os.path.join(os.path.abspath(instance_dir), ".drypipe", n.key, "out.log")
            out.write(f"  {n.key}: {n.state_name}" + (f" - {n.message}" if n.message else "")
                      + f"\n    log: {log}\n")
        if len(result.failed) > 50:
            out.write(f"  ... and {len(result.failed) - 50} more (drypipe list-states)\n")
        out.write("retry with: drypipe run --restart-failed (resume) or --reset-failed (from step 0)\n")
    if result.held:
        out.write(f"{len(result.held)} task(s) held back by --until (not run): "
                  + ", ".join(sorted(result.held)[:10]) + ("..." if len(result.held) > 10 else "") + "\n")
    blocked = [n for n in result.waiting]
    if blocked and result.failed:
        out.write(f"{len(blocked)} task(s) wait on tasks that did not complete\n")
    elif blocked and not result.held:
        out.write(f"{len(blocked)} task(s) can never run: " + ", ".join(n.key for n in blocked[:10]) + "\n")
    if result.unreachable:
        out.write(f"{len(result.unreachable)} task(s) on unreachable hosts (not failed; a later "
                  f"`drypipe run` resumes them): {', '.join(result.unreachable[:10])}\n")
    for w in result.unsatisfied_waits:
        out.write(f"generator blocked: {w}\n")
    if result.out_of_date:
        out.write(f"{len(result.out_of_date)} task(s) out of date, not rerun (`drypipe why -k KEY` says why; "
                  "`drypipe run --rerun-changed` reruns them and their downstream):\n")
        for key, reason in result.out_of_date[:50]:
            out.write(f"  {key}: {reason}\n")
        if len(result.out_of_date) > 50:
            out.write(f"  ... and {len(result.out_of_date) - 50} more\n")
    if result.ok and result.all_completed:
        click.echo(f"drypipe: all {result.total} tasks completed", err=True)
