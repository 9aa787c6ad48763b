"""What `drypipe run` prints: a progress line while it runs and a summary at the end."""
from __future__ import annotations

import os
import sys
import time

import click

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
    """Progress on stderr: a line redrawn in place on a terminal, one line every 10 s otherwise."""

    def __init__(self, quiet: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.t0 = time.monotonic()
        self._last = 0.0
        self._last_text = ""

    def _emit(self, orch, force=False):
        if self.quiet:
            return
        nowt = time.monotonic()
        interval = 0.2 if self.tty else 10.0
        if not force and nowt - self._last < interval:
            return
        self._last = nowt
        counts = orch.graph.counts()
        total = sum(counts.values())
        text = f"[{nowt - self.t0:7.1f}s] {total} tasks: {format_counts(counts)}"
        if text == self._last_text and not force:
            return
        self._last_text = text
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def started(self, orch):
        if not self.quiet:
            self.stream.write(f"drypipe: running {orch.instance_dir} "
                              f"(up to {orch.local.max_parallel} local tasks at once)\n")

    def generated(self, orch, n):
        pass

    def progress(self, orch):
        self._emit(orch)

    def task_ended(self, orch, node):
        if node.state in S.FAILURES and not self.quiet:
            if self.tty:
                self.stream.write("\r\033[K")
            self.stream.write(f"task {node.key}: {node.state_name}"
                              + (f" ({node.message})" if node.message else "") + "\n")

    def finished(self, orch, result):
        self._emit(orch, force=True)
        if self.tty and not self.quiet:
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
    if result.ok and result.all_completed:
        click.echo(f"drypipe: all {result.total} tasks completed", err=True)
