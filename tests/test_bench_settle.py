"""bench/settle.py: the bench waits, on ext4 without a journal, until files deleted lately no
longer slow down file creation (fs/ext4/ialloc.c skips inodes freed in the last minutes)."""
from __future__ import annotations

import os
import sys

from conftest import REPO

sys.path.insert(0, str(REPO))
from bench import settle  # noqa: E402

# /proc/self/mountinfo of this project's VMs (recorded), trimmed
MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
28 27 0:23 / /dev/shm rw,nosuid,nodev - tmpfs tmpfs rw,size=24683784k
40 27 0:40 / /scratch\\040space rw,relatime shared:7 - xfs /dev/vdb rw
"""


def test_the_mount_of_a_path_is_the_longest_mount_point_holding_it():
    assert settle.mount_of("/tmp/drypipe-bench-x", MOUNTINFO) == ("/", "ext4", "254:0")
    assert settle.mount_of("/dev/shm/x", MOUNTINFO) == ("/dev/shm", "tmpfs", "0:23")
    assert settle.mount_of("/dev/shmx", MOUNTINFO) == ("/", "ext4", "254:0")  # a prefix, not a parent
    assert settle.mount_of("/scratch space/b", MOUNTINFO) == ("/scratch space", "xfs", "0:40")


def fake_machine(tmp_path, journal: str | None):
    """A /sys and a mountinfo file for a root file system on vda, with or without a journal."""
    sys_root = tmp_path / "sys"
    (sys_root / "dev" / "block").mkdir(parents=True)
    os.symlink("../../devices/pci0000:00/virtio1/block/vda", sys_root / "dev" / "block" / "254:0")
    ext4 = sys_root / "fs" / "ext4" / "vda"
    ext4.mkdir(parents=True)
    if journal is not None:
        (ext4 / "journal_task").write_text(journal + "\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO)
    return str(sys_root), str(mountinfo)


def test_only_ext4_without_a_journal_is_waited_for(tmp_path):
    sys_root, mountinfo = fake_machine(tmp_path, "<none>")
    assert settle.journal_less_ext4("/tmp", sys_root, mountinfo)
    assert not settle.journal_less_ext4("/dev/shm", sys_root, mountinfo)  # tmpfs
    sys_root, mountinfo = fake_machine(tmp_path / "j", "jbd2/vda-8")
    assert not settle.journal_less_ext4("/tmp", sys_root, mountinfo)
    sys_root, mountinfo = fake_machine(tmp_path / "old", None)  # a kernel without the attribute
    assert not settle.journal_less_ext4("/tmp", sys_root, mountinfo)


def test_the_wait_ends_six_minutes_after_the_last_known_deletion(tmp_path, monkeypatch):
    monkeypatch.setattr(settle, "STAMP", tmp_path / "deleted-at")
    assert settle.last_deletion({}) is None and settle.wait_seconds(1000.0, None) == 0.0
    settle.STAMP.write_text("1000\n")
    assert settle.last_deletion({"DRYPIPE_BENCH_DELETED_AT": "1100"}) == 1100.0
    assert settle.last_deletion({"DRYPIPE_BENCH_DELETED_AT": "junk"}) == 1000.0
    assert settle.wait_seconds(1100.0, 1000.0) == settle.RECENCY_S - 100
    assert settle.wait_seconds(1000.0 + settle.RECENCY_S + 1, 1000.0) == 0.0
