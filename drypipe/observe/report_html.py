"""`drypipe report`: one self-contained HTML file about an instance, during or after its run.

write_report reads the tasks and the view `attempts` read-only (drypipe.api.Instance; a reader
never blocks the orchestrator) and writes: a summary, a timeline of the attempts, resources per
key group (for Slurm tasks used vs requested, and a --mem and --time from the p95), failures with
the tail of their out.log, the DAG (a plot and its mermaid text) and the tasks. The charts are
plotly.js figures (plain dicts) drawn by the plotly.min.js of the `plotly` package, inlined: the
file opens offline. Aggregates are exact; timeline bars and table rows are capped, and say so."""
from __future__ import annotations

import bisect
import html
import json
import math
import os
import re
import time

from ..errors import DryPipeError
from ..reports import fmt_bytes, fmt_seconds
from ..state import states as S
from .progress import group_of

DETAIL_CAP = 10_000  # tasks in the task table, attempts in the table of failed attempts
TIMELINE_CAP = 5_000  # bars of the timeline (an SVG path each); the concurrency chart has them all
CONCURRENCY_POINTS = 1_000  # instants of the concurrency chart, when there are more events
FAILURE_CAP = 50  # failed tasks shown with the tail of their out.log
TAIL_LINES, TAIL_BYTES = 40, 16_384
DAG_TASK_CAP = 150  # above: the DAG plot has a node per key pattern
MERMAID_CAP = 200_000  # characters of mermaid text in the page
GROUP_CHART_CAP = 40  # groups in the charts (the largest ones); the tables have them all
MEM_HEADROOM, TIME_HEADROOM = 1.2, 1.5
COLORS = {"completed": "#3f9142", "running": "#2f80ed", "launched": "#2f80ed", "step-started": "#2f80ed",
          "failed": "#d64545", "killed": "#b7791f", "timed-out": "#8e44ad", "ready": "#90cdf4",
          "waiting": "#a0aec0", "queued": "#cbd2d9"}
# a group's colour in the DAG: its most telling state
SEVERITY = ("failed", "timed-out", "killed", "step-started", "launched", "ready", "waiting", "completed")
TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report_template.html")


def write_report(instance_dir: str, path: str | None = None) -> str:
    """Write the report of an instance to path (default INSTANCE_DIR/report.html); return path."""
    if not os.path.isdir(instance_dir):
        raise DryPipeError(f"{instance_dir}: no such instance directory")
    path = path or os.path.join(instance_dir, "report.html")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise DryPipeError(f"{path}: directory {parent} does not exist")
    text, tmp = render(instance_dir), f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise DryPipeError(f"{path}: cannot write the report: {e.strerror}") from e
    return path


def plotly_js() -> str:
    """The plotly.min.js of the installed `plotly` package (found without importing it)."""
    import importlib.util
    spec = importlib.util.find_spec("plotly")
    js = os.path.join(list(spec.submodule_search_locations)[0], "package_data", "plotly.min.js") if spec else ""
    if not os.path.isfile(js):
        raise DryPipeError("report: the Python package `plotly` is missing (pip install plotly)")
    with open(js, encoding="utf-8") as f:
        return f.read().replace("</script", "<\\/script")


def render(instance_dir: str, now: float | None = None) -> str:
    """The HTML text of the report."""
    from ..api import Instance
    inst = Instance(instance_dir)
    tasks, attempts = inst.tasks(), inst.attempts()
    now = time.time() if now is None else now
    by_key: dict[str, list[dict]] = {}
    for a in attempts:
        by_key.setdefault(a["name"], []).append(a)
    figures: list[dict] = []
    pid = inst.running_orchestrator
    body = [f'<p class="warn">Written during a run (orchestrator pid {pid}): a snapshot; write it again for '
            "newer figures.</p>" if pid else "",
            _summary(tasks, attempts, by_key, now, figures),
            _timeline(attempts, by_key, now, figures),
            _resources(attempts, figures),
            _failures(tasks, attempts, by_key),
            _dag(inst.instance_dir, tasks, figures),
            _task_table(tasks, by_key, now)]
    slots = {"TITLE": esc(f"DryPipe report: {inst.instance_dir}"), "BODY": "\n".join(body),
             "SUBTITLE": subtitle(inst.instance_dir, now),
             "FIGURES": json.dumps(figures, separators=(",", ":")).replace("<", "\\u003c"),
             "PLOTLY": plotly_js()}
    with open(TEMPLATE, encoding="utf-8") as f:
        return re.sub(r"{{([A-Z]+)}}", lambda m: slots[m.group(1)], f.read())


def esc(x) -> str:
    return html.escape("" if x is None else str(x))


def local(ts: float) -> str:
    """Epoch seconds as local time with ms, the form plotly's date axes read."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)] if values else None


def stats(values: list[float]) -> dict | None:
    v = sorted(values)
    return {"min": v[0], "p25": percentile(v, 25), "p50": percentile(v, 50), "p75": percentile(v, 75),
            "p95": percentile(v, 95), "max": v[-1], "mean": sum(v) / len(v)} if v else None


def badge(state: str) -> str:
    return f'<span class="st" style="background:{COLORS.get(state.split(".")[0], "#627d98")}">{esc(state)}</span>'


def table(headers: list[str], rows: list[list[str]], numeric=frozenset(), attrs: str = "") -> str:
    """An HTML table of cells already escaped; columns in numeric aligned right."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table {attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>' + "".join(parts) + "</section>"


def note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def figure(figures: list[dict], fid: str, data: list[dict], layout: dict, height: int) -> str:
    """A plotly figure drawn in the page: its div, the figure appended to figures."""
    base = {"height": height, "margin": {"l": 60, "r": 20, "t": 50, "b": 40}, "font": {"size": 11},
            "title": {"x": 0.01, "xanchor": "left", "text": layout.pop("title", "")},
            "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"}}
    figures.append({"id": fid, "data": data, "layout": {**base, **layout}})
    return f'<div class="plot" id="{fid}"></div>'


def subtitle(instance_dir: str, now: float) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        versions = f" &middot; drypipe {esc(version('drypipe'))}, plotly {esc(version('plotly'))}"
    except PackageNotFoundError:
        versions = ""
    return f"{esc(instance_dir)} &middot; written {time.strftime('%F %T %Z (UTC%z)', time.localtime(now))}{versions}"


def _summary(tasks, attempts, by_key, now, figures) -> str:
    counts: dict[str, int] = {}
    per_group: dict[str, dict[str, int]] = {}
    for t in tasks:
        counts[t.state] = counts.get(t.state, 0) + 1
        g = per_group.setdefault(group_of(t.key), {})
        g[t.state] = g.get(t.state, 0) + 1
    wall = max(a["complete_epoch"] or now for a in attempts) - min(a["submit_epoch"] for a in attempts) \
        if attempts else None
    rss = max((a["peak_rss"] for a in attempts if a["peak_rss"] is not None), default=None)
    cards = [("tasks", len(tasks)), ("completed", counts.get(S.COMPLETED, 0)),
             ("running", sum(counts.get(s, 0) for s in S.ACTIVE))]
    cards += [(s, counts[s]) for s in (S.READY, S.WAITING, S.FAILED, S.KILLED, S.TIMED_OUT) if counts.get(s)]
    cards += [("attempts", len(attempts)), ("retries and restarts", len(attempts) - len(by_key)),
              ("wall time", fmt_seconds(wall)), ("max peak memory", fmt_bytes(rss) or "-"),
              ("CPU time", fmt_seconds(sum((a["cpu_user"] or 0) + (a["cpu_sys"] or 0) for a in attempts)))]
    parts = ['<div class="cards">' + "".join(f'<div class="card"><div class="v">{esc(v)}</div><div class="k">'
                                             f"{esc(k)}</div></div>" for k, v in cards) + "</div>"]
    running = sorted((a for a in attempts if a["status"] == "running"), key=lambda a: a["submit_epoch"])
    if running:
        rows = [[esc(a["name"]), str(a["attempt"]), local(a["start_epoch"] or a["submit_epoch"]),
                 fmt_seconds(now - (a["start_epoch"] or a["submit_epoch"])), esc(a["executer"]),
                 esc(a["host"]), esc(a["native_id"])] for a in running[:100]]
        parts.append("<h3>Running now</h3>" + table(["task", "attempt", "since", "for", "executer", "host",
                                                    "native id"], rows, {1, 3})
                     + note(f"The 100 longest running of {len(running)}.") * (len(running) > 100))
    shown = sorted(per_group, key=lambda g: -sum(per_group[g].values()))[:GROUP_CHART_CAP]
    data = [{"type": "bar", "orientation": "h", "name": s, "y": shown, "x": [per_group[g].get(s, 0) for g in shown],
             "marker": {"color": COLORS[s]}} for s in S.ALL if any(per_group[g].get(s) for g in shown)]
    layout = {"barmode": "stack", "title": "Tasks per key group (the key up to its first '.') and state",
              "yaxis": {"autorange": "reversed", "automargin": True}, "xaxis": {"title": {"text": "tasks"}}}
    parts.append(figure(figures, "fig-groups", data, layout, min(150 + 24 * len(shown), 900)))
    if len(per_group) > len(shown):
        parts.append(note(f"The {len(shown)} largest of {len(per_group)} key groups."))
    return section("summary", "Summary", *parts)


def _timeline(attempts, by_key, now, figures) -> str:
    if not attempts:
        return section("timeline", "Timeline", note("No task was launched yet."))
    shown = sorted(attempts, key=lambda a: a["submit_epoch"])[-TIMELINE_CAP:]
    traces = {k: {"type": "bar", "orientation": "h", "name": k, "base": [], "x": [], "y": [], "hovertext": [],
                  "hovertemplate": "%{hovertext}<extra></extra>", "marker": {"color": COLORS[k]}}
              for k in ("queued", "completed", "running", "failed", "timed-out", "killed")}
    labels = []
    for a in shown:
        label = a["name"] if len(by_key[a["name"]]) == 1 else f'{a["name"]} #{a["attempt"]}'
        labels.append(label)
        sub, start = a["submit_epoch"], a["start_epoch"]
        end = max(sub, a["complete_epoch"] if a["complete_epoch"] is not None else now)
        text = (f"{esc(label)}: {a['status']}<br>queued {fmt_seconds((start or end) - sub)}"
                + (f", ran {fmt_seconds(end - start)}" if start is not None else "")
                + (f"<br>{esc(a['host'])} {esc(a['native_id'])}" if a["host"] else ""))
        bars = [("queued", sub, start if start is not None else end)]
        if start is not None or a["status"] != "running":  # one that ended before it started: a sliver
            bars.append((a["status"], start if start is not None else end, end))
        for kind, t0, t1 in bars:
            tr = traces[kind]
            tr["base"].append(local(t0))
            tr["x"].append(max(round((t1 - t0) * 1000), 1))
            tr["y"].append(label)
            tr["hovertext"].append(text)
    layout = {"barmode": "overlay", "title": "Attempts: queued (grey), then running, coloured by how it ended",
              "xaxis": {"type": "date", "title": {"text": "local time"}},
              "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": labels,
                        "autorange": "reversed", "showticklabels": len(labels) <= 80, "automargin": True}}
    if any(a["status"] == "running" for a in shown):  # a line at now
        layout["shapes"] = [{"type": "line", "xref": "x", "yref": "paper", "x0": local(now), "x1": local(now),
                             "y0": 0, "y1": 1, "line": {"color": COLORS["running"], "dash": "dot", "width": 1}}]
    parts = [_concurrency(attempts, now, figures),
             figure(figures, "fig-timeline", [t for t in traces.values() if t["x"]], layout,
                    min(max(260, 110 + 16 * len(labels)), 1400))]
    if len(shown) < len(attempts):
        parts.append(note(f"The {len(shown):,} latest of {len(attempts):,} attempts (the other charts, the summary "
                          "and the resources count them all)."))
    return section("timeline", "Timeline", *parts)


def concurrency(attempts, now: float, points: int = CONCURRENCY_POINTS) -> tuple[list[float], list[int], list[int]]:
    """(instants, attempts queued, attempts running): exact counts at every submit, start and end,
    or at `points` evenly spaced instants when there are more."""
    subs = sorted(a["submit_epoch"] for a in attempts)
    starts = sorted(a["start_epoch"] for a in attempts if a["start_epoch"] is not None)
    ends = sorted(a["complete_epoch"] or now for a in attempts if a["start_epoch"] is not None)
    unstarted_ends = sorted(a["complete_epoch"] for a in attempts if a["start_epoch"] is None and a["complete_epoch"])
    events = sorted(set(subs + starts + ends + unstarted_ends))
    if len(events) > points:
        t0, t1 = events[0], events[-1]
        events = [t0 + (t1 - t0) * i / (points - 1) for i in range(points)]
    n = bisect.bisect_right
    return (events, [n(subs, t) - n(starts, t) - n(unstarted_ends, t) for t in events],
            [n(starts, t) - n(ends, t) for t in events])


def _concurrency(attempts, now, figures) -> str:
    times, *counts = concurrency(attempts, now)
    data = [{"type": "scatter", "mode": "lines", "name": name, "x": [local(t) for t in times], "y": y,
             "fill": "tozeroy", "line": {"shape": "hv", "color": COLORS[name], "width": 1}}
            for name, y in zip(("queued", "running"), counts)]
    layout = {"title": "Attempts queued and running", "xaxis": {"type": "date"},
              "yaxis": {"rangemode": "tozero", "title": {"text": "attempts"}, "tickformat": "d",
                        "dtick": max(1, math.ceil(max(max(c, default=0) for c in counts) / 5))}}
    return figure(figures, "fig-concurrency", data, layout, 240)


def group_resources(attempts) -> dict[str, dict]:
    """Per key group: stats of its ended attempts' run time (s), %cpu and peak memory (bytes), its
    CPU seconds, and for its Slurm attempts used vs requested and suggested requests (slurm_fit)."""
    groups: dict[str, list[dict]] = {}
    for a in attempts:
        groups.setdefault(group_of(a["name"]), []).append(a)
    out = {}
    for g, items in groups.items():
        ended = [a for a in items if a["complete_epoch"] is not None]
        out[g] = {"attempts": len(items), "cpu_s": sum((a["cpu_user"] or 0) + (a["cpu_sys"] or 0) for a in items),
                  "time": stats([a["realtime"] / 1000 for a in ended if a["realtime"] is not None]),
                  "cpu": stats([a["%cpu"] for a in ended if a["%cpu"] is not None]),
                  "mem": stats([a["peak_rss"] for a in ended if a["peak_rss"] is not None]),
                  "slurm": slurm_fit([a for a in ended if a["executer"] == "slurm"
                                      and (a["req_mem"] or a["req_time"])])}
    return out


def slurm_fit(slurm: list[dict]) -> dict | None:
    """Used vs requested of ended Slurm attempts, and the --mem and --time to request: the p95 of
    the completed ones with headroom, and at least twice what those out of memory or time had."""
    if not slurm:
        return None
    done = [a for a in slurm if a["status"] == "completed"]
    oom = [a["req_mem"] for a in slurm if a["slurm_state"] == "OUT_OF_MEMORY" and a["req_mem"]]
    late = [a["req_time"] for a in slurm if (a["status"] == "timed-out" or a["slurm_state"] == "TIMEOUT")
            and a["req_time"]]
    used_mem = percentile(sorted(a["peak_rss"] for a in done if a["peak_rss"]), 95)
    used_time = percentile(sorted(a["realtime"] / 1000 for a in done if a["realtime"] is not None), 95)
    mem = max(([used_mem * MEM_HEADROOM] if used_mem else []) + [2 * m for m in oom], default=None)
    tim = max(([used_time * TIME_HEADROOM] if used_time is not None else []) + [2 * t for t in late], default=None)
    return {"req_mem": max((a["req_mem"] for a in slurm if a["req_mem"]), default=None),
            "req_time": max((a["req_time"] for a in slurm if a["req_time"]), default=None),
            "mem": stats([a["peak_rss"] / a["req_mem"] for a in slurm if a["req_mem"] and a["peak_rss"]]),
            "time": stats([a["realtime"] / 1000 / a["req_time"] for a in slurm
                           if a["req_time"] and a["realtime"] is not None]),
            "oom": len(oom), "timeouts": len(late), "suggest_mem": slurm_mem(mem) if mem else None,
            "suggest_time": slurm_time(tim) if tim is not None else None}


def slurm_mem(b: float) -> str:
    """A --mem value: MiB rounded up to 100M (at least 100M), whole G from 10G."""
    mib = max(100, math.ceil(b / 2 ** 20 / 100) * 100)
    return f"{math.ceil(b / 2 ** 30)}G" if mib >= 10240 else f"{mib}M"


def slurm_time(s: float) -> str:
    """A --time value: whole minutes rounded up (at least 1), as [D-]HH:MM:SS."""
    d, m = divmod(max(1, math.ceil(s / 60)), 24 * 60)
    return (f"{d}-" if d else "") + f"{m // 60:02d}:{m % 60:02d}:00"


def _box(figures, fid, title, res, metric, groups, unit=1) -> str:
    """Box plots from precomputed stats (divided by unit): min, quartiles, max and mean per group."""
    shown = [g for g in groups if res[g][metric]]
    st = [res[g][metric] for g in shown]
    data = [{"type": "box", "x": shown, "name": title, "boxpoints": False, "boxmean": True,
             "marker": {"color": "#486581"}, **{k: [s[v] / unit for s in st] for k, v in (
                 ("q1", "p25"), ("median", "p50"), ("q3", "p75"), ("lowerfence", "min"), ("upperfence", "max"),
                 ("mean", "mean"))}}]
    layout = {"title": title, "showlegend": False, "yaxis": {"rangemode": "tozero"},
              "xaxis": {"type": "category", "automargin": True}}
    return figure(figures, fid, data, layout, 320)


def _resources(attempts, figures) -> str:
    res = group_resources(attempts)
    if not res:
        return section("resources", "Resources per key group", note("No task was launched yet."))
    groups = sorted(res, key=lambda g: -res[g]["attempts"])
    big = groups[:GROUP_CHART_CAP]
    parts = ['<div class="row">' + _box(figures, "fig-time", "Run time (s)", res, "time", big)
             + _box(figures, "fig-mem", "Peak memory (MB)", res, "mem", big, 2 ** 20)
             + _box(figures, "fig-cpu", "CPU (% of one core)", res, "cpu", big) + "</div>",
             note("Ended attempts per group: min, quartiles, max; the dashed line is the mean."
                  + (f" The {len(big)} largest of {len(groups)} groups." if len(big) < len(groups) else ""))]

    def trio(s, f):
        return [f(s[k]) if s else "-" for k in ("p50", "p95", "max")]
    rows = [[esc(g), str(r["attempts"]), *trio(r["time"], fmt_seconds), *trio(r["cpu"], "{:.1f}".format),
             fmt_seconds(r["cpu_s"]), *trio(r["mem"], fmt_bytes)] for g in groups for r in [res[g]]]
    parts.append(table(["group", "attempts", "run p50", "run p95", "run max", "%cpu p50", "%cpu p95", "%cpu max",
                        "CPU time", "mem p50", "mem p95", "mem max"], rows, set(range(1, 12))))
    slurm = [g for g in groups if res[g]["slurm"]]
    if slurm:
        parts.append(_slurm(figures, {g: res[g]["slurm"] for g in slurm}))
    return section("resources", "Resources per key group", *parts)


def _slurm(figures, fits: dict[str, dict]) -> str:
    def pct(s, k):
        return f"{100 * s[k]:.0f}%" if s else "-"
    rows = [[esc(g), fmt_bytes(f["req_mem"]), pct(f["mem"], "p95"), pct(f["mem"], "max"), str(f["oom"]),
             f"<b>{esc(f['suggest_mem'] or '-')}</b>", fmt_seconds(f["req_time"]), pct(f["time"], "p95"),
             pct(f["time"], "max"), str(f["timeouts"]), f"<b>{esc(f['suggest_time'] or '-')}</b>"]
            for g, f in fits.items()]
    shown = list(fits)[:GROUP_CHART_CAP]
    data = [{"type": "bar", "name": f"{what} {stat}", "x": shown, "marker": {"color": color},
             "y": [100 * fits[g][what][stat] if fits[g][what] else None for g in shown]}
            for what, stat, color in (("mem", "p95", "#486581"), ("mem", "max", "#9fb3c8"),
                                      ("time", "p95", "#c05621"), ("time", "max", "#f6ad55"))]
    layout = {"barmode": "group", "title": "Slurm: used, as % of requested",
              "yaxis": {"title": {"text": "% of requested"}, "rangemode": "tozero"},
              "xaxis": {"type": "category", "automargin": True},
              "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 100, "y1": 100,
                          "line": {"color": COLORS["failed"], "dash": "dash", "width": 1}}]}
    return ("<h3>Slurm tasks: used vs requested</h3>" + figure(figures, "fig-slurm", data, layout, 340)
            + table(["group", "--mem requested", "mem used p95", "mem used max", "out of memory", "suggested --mem",
                     "--time requested", "time used p95", "time used max", "timed out", "suggested --time"],
                    rows, set(range(1, 11)))
            + note(f"Suggested: the p95 of the completed attempts times {MEM_HEADROOM} (memory) or "
                   f"{TIME_HEADROOM} (time), and at least twice the request of an attempt that ran out of it."))


def tail(path: str, lines: int = TAIL_LINES, size: int = TAIL_BYTES) -> str | None:
    """The last lines of a file (at most size bytes read), None when it does not exist."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            data = f.read()
    except OSError:
        return None
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _failures(tasks, attempts, by_key) -> str:
    failed = sorted((t for t in tasks if t.state in S.FAILURES), key=lambda t: -(t.ended_at or 0))
    parts = [] if failed else [note("No task is failed, killed or timed out.")]
    for t in failed[:FAILURE_CAP]:
        a = (by_key.get(t.key) or [{}])[-1]
        facts = [f"attempt {a['attempt']}" if a else "", f"exit {a['exit']}" if a.get("exit") is not None else "",
                 a.get("slurm_state") or "", f"{a['executer']} {a['native_id'] or ''}" if a else "",
                 f"on {a['host']}" if a.get("host") else "", f"ended {local(t.ended_at)}" if t.ended_at else ""]
        log = tail(t.out_log)
        parts.append(f'<div class="failure"><h3>{esc(t.key)} {badge(t.state_name)}</h3>'
                     + (f"<div>{esc(t.message)}</div>" if t.message else "") + note(esc(", ".join(filter(None, facts))))
                     + (f"<pre>{esc(log)}</pre>" + note(f"The last lines of {esc(t.out_log)}")
                        if log is not None else note(f"No {esc(t.out_log)}")) + "</div>")
    parts.append(note(f"The {FAILURE_CAP} latest of {len(failed)} failed tasks: `drypipe list-states` lists "
                      "them all.") * (len(failed) > FAILURE_CAP))
    states = {t.key: t.state for t in tasks}
    retried = [a for a in attempts if a["status"] in S.FAILURES and states.get(a["name"]) not in S.FAILURES]
    if retried:
        rows = [[esc(a["name"]), str(a["attempt"]), badge(a["status"]), esc(a["exit"]), esc(a["slurm_state"]),
                 local(a["complete_epoch"])] for a in retried[:DETAIL_CAP]]
        parts.append("<h3>Failed attempts since retried or restarted</h3>"
                     + table(["task", "attempt", "status", "exit", "slurm state", "ended"], rows, {1, 3}))
    return section("failures", f"Failures ({len(failed)})" if failed else "Failures", *parts)


def layers(nodes: list[str], links: set[tuple[str, str]]) -> dict[str, tuple[int, float]]:
    """A layered layout of nodes given in a topological order (tasks in creation order; a link
    against it, possible between key patterns, is ignored): x = the longest path from a source,
    y = the order in the layer, by the mean y of the node's upstreams, centred on 0."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for u, d in links:
        preds[d].append(u)
    layer: dict[str, int] = {}
    by_layer: dict[int, list[str]] = {}
    for n in nodes:
        layer[n] = max((layer[p] + 1 for p in preds[n] if p in layer), default=0)
        by_layer.setdefault(layer[n], []).append(n)
    pos: dict[str, tuple[int, float]] = {}
    for x in sorted(by_layer):
        col = sorted(by_layer[x], key=lambda n: sum(pos[p][1] for p in preds[n] if p in pos) / max(1, len(preds[n])))
        pos.update((n, (x, i - (len(col) - 1) / 2)) for i, n in enumerate(col))
    return pos


def _dag(instance_dir, tasks, figures) -> str:
    """A layered plot of the DAG (drypipe.observe.dag's edges): a node per task, or per key pattern
    above DAG_TASK_CAP tasks; and `drypipe dag`'s mermaid text of the same graph."""
    from . import dag
    if not tasks:
        return section("dag", "DAG", note("No task yet."))
    graph = dag.read_dag(instance_dir)
    grouped = len(graph.keys) > DAG_TASK_CAP
    name = dag.key_pattern if grouped else str
    state = {t.key: t.state for t in tasks}
    members: dict[str, list[str]] = {}
    for k in graph.keys:
        members.setdefault(name(k), []).append(state.get(k, S.WAITING))
    nodes = list(members)
    pairs = {(name(graph.keys[p]), name(graph.keys[c])) for p, _, c in graph.edges} - {(n, n) for n in nodes}
    pos = layers(nodes, pairs)
    xs, ys = [], []  # an edge: its start, its arrow head (pointing along it), its end, a break
    for (x0, y0), (x1, y1) in ((pos[u], pos[d]) for u, d in sorted(pairs)):
        xs += [x0, x0 + 0.9 * (x1 - x0), x1, None]
        ys += [y0, y0 + 0.9 * (y1 - y0), y1, None]
    data = [{"type": "scatter", "mode": "lines+markers", "x": xs, "y": ys, "hoverinfo": "skip", "showlegend": False,
             "line": {"color": "#9fb3c8", "width": 1}, "marker": {
                 "symbol": "arrow", "angleref": "previous", "color": "#829ab1",
                 "size": [9 if i % 4 == 1 else 0 for i in range(len(xs))]}}]
    severest = {n: next(s for s in SEVERITY if s in ms) for n, ms in members.items()}
    for s in SEVERITY:
        ns = [n for n in nodes if severest[n] == s]
        if ns:
            data.append({"type": "scatter", "mode": "markers+text" if len(nodes) <= 60 else "markers", "name": s,
                         "x": [pos[n][0] for n in ns], "y": [pos[n][1] for n in ns], "text": ns,
                         "textposition": "top center", "hovertemplate": "%{hovertext}<extra></extra>",
                         "hovertext": [f"{esc(n)}: " + ", ".join(f"{members[n].count(m)} {m}" for m in S.ALL
                                                                if m in members[n]) for n in ns],
                         "marker": {"size": 14, "color": COLORS[s], "line": {"width": 1, "color": "#fff"}}})
    widest = max(sum(1 for p in pos.values() if p[0] == x) for x in {p[0] for p in pos.values()})
    layout = {"title": "Left to right" + (": a node per key pattern (numbers made *)" if grouped else ""),
              "xaxis": {"visible": False}, "yaxis": {"visible": False}, "hovermode": "closest"}
    plot = figure(figures, "fig-dag", data, layout, min(max(300, 120 + 40 * widest), 1400))
    text = dag.render_grouped(graph) if grouped else dag.render(graph)
    pre = (f'<h3>Mermaid (<code>drypipe dag{" --group" if grouped else ""}</code>) <button data-copy="dag-mermaid">'
           f'Copy</button></h3><pre id="dag-mermaid">{esc(text[:MERMAID_CAP])}</pre>'
           + (note(f"Cut at {MERMAID_CAP:,} characters: `drypipe dag` prints it all.")
              if len(text) > MERMAID_CAP else ""))
    return section("dag", "DAG", plot, pre)


def _task_table(tasks, by_key, now) -> str:
    rows = []
    for t in tasks[:DETAIL_CAP]:
        a = (by_key.get(t.key) or [None])[-1]
        last = ["", "", "", "", "", ""]
        if a:
            end, cpu = a["start_epoch"] or a["complete_epoch"] or now, a["%cpu"]
            last = [local(a["submit_epoch"]), fmt_seconds(end - a["submit_epoch"]),
                    fmt_seconds(a["realtime"] / 1000 if a["realtime"] is not None else None),
                    "-" if cpu is None else f"{cpu:.1f}", fmt_bytes(a["peak_rss"]),
                    esc(" ".join(filter(None, (a["host"], a["native_id"]))))]
        rows.append([esc(t.key), badge(t.state_name), str(len(by_key.get(t.key, ()))), *last, esc(t.message)])
    parts = ['<input type="search" id="task-filter" placeholder="filter by key, state, host...">',
             '<div class="scroll">' + table(["key", "state", "attempts", "submitted", "queued", "ran", "%cpu",
                                             "peak mem", "where", "message"], rows, {2, 4, 5, 6, 7},
                                            'id="task-table"') + "</div>",
             note("Figures of each task's last attempt."
                  + (f" The first {DETAIL_CAP:,} of {len(tasks):,} tasks." if len(tasks) > DETAIL_CAP else ""))]
    return section("tasks", f"Tasks ({len(tasks)})", *parts)
