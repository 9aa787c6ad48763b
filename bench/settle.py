"""Before measuring: wait for a file system that makes file creation slow after deletions.

ext4 without a journal (this project's VMs: /sys/fs/ext4/<dev>/journal_task says `<none>`) does
not hand out an inode freed less than a minute ago, or six while its inode table block is dirty
(fs/ext4/ialloc.c, recently_deleted: RECENTCY_MIN 60 s + RECENTCY_DIRTY 300 s), and every
allocation skips such inodes one by one: for minutes after thousands of deletions, each file or
directory created costs several times more. DryPipe creates about ten inodes per task, its
floors one, so a measurement that starts right after deletions (the temporary build environment
of `make bench`'s wheel, the previous bench's cleanup) charges them to DryPipe. The bench waits
until RECENCY_S passed since the last deletion it knows of: the time in bench/results/deleted-at
(written after each cleanup) and $DRYPIPE_BENCH_DELETED_AT (scripts/run-bench.sh, after its
setup). Other file systems, including ext4 with a journal, are not waited for."""
from __future__ import annotations

import os
import time
from pathlib import Path

RECENCY_S = 360.0
STAMP = Path(__file__).resolve().parent / "results" / "deleted-at"


def mount_of(path: str, mountinfo: str) -> tuple[str, str, str] | None:
    """(mount point, file system type, major:minor) of the mount holding path, from the text of
    /proc/self/mountinfo (the longest mount point that is a prefix of path)."""
    best = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if not sep or len(fields) < 5 or not rest:
            continue
        point = fields[4].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, rest[0], fields[2])
    return best


def journal_less_ext4(path: str, sys_root: str = "/sys", proc_mountinfo: str = "/proc/self/mountinfo") -> bool:
    """Is path on an ext4 file system that has no journal?"""
    try:
        with open(proc_mountinfo) as f:
            mount = mount_of(os.path.realpath(path), f.read())
        if mount is None or mount[1] != "ext4":
            return False
        device = os.path.basename(os.readlink(os.path.join(sys_root, "dev", "block", mount[2])))
        with open(os.path.join(sys_root, "fs", "ext4", device, "journal_task")) as f:
            return f.read().strip() == "<none>"
    except OSError:
        return False


def last_deletion(env: dict[str, str]) -> float | None:
    times = []
    try:
        times.append(float(STAMP.read_text().strip()))
    except (OSError, ValueError):
        pass
    try:
        times.append(float(env.get("DRYPIPE_BENCH_DELETED_AT", "")))
    except ValueError:
        pass
    return max(times) if times else None


def wait_seconds(now: float, deleted_at: float | None) -> float:
    return 0.0 if deleted_at is None else max(0.0, deleted_at + RECENCY_S - now)


def wait_for_file_system(work_dir: str, env: dict[str, str] | None = None, log=print) -> float:
    """Sleep as long as files deleted lately slow down file creation in work_dir; the seconds waited."""
    if not journal_less_ext4(work_dir):
        return 0.0
    wait = wait_seconds(time.time(), last_deletion(os.environ if env is None else env))
    if wait > 0:
        log(f"waiting {wait:.0f} s before measuring: {work_dir} is on ext4 without a journal, which makes "
            f"file creation slow for {RECENCY_S / 60:.0f} minutes after deletions (see bench/settle.py)")
        os.sync()
        time.sleep(wait)
    return wait


def stamp() -> None:
    """Record that files were deleted now (after the bench's cleanup)."""
    STAMP.parent.mkdir(parents=True, exist_ok=True)
    STAMP.write_text(f"{time.time():.0f}\n")
