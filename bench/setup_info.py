"""What `make bench` measures: which DryPipe (a wheel in a fresh venv, or the editable dev
install), with or without loadable bash builtins, and with its progress display on a terminal
(a pty), as a user runs it; and the pty runner that gives DryPipe that terminal."""
from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading

_PROBE = r"""
import glob, json, os, importlib.metadata as m
import drypipe
d = m.distribution("drypipe")
try:
    url = json.loads(d.read_text("direct_url.json") or "{}")
except ValueError:
    url = {}
pkg = os.path.dirname(drypipe.__file__)
print(json.dumps({"file": drypipe.__file__, "version": d.version,
                  "editable": bool(url.get("dir_info", {}).get("editable")),
                  "url": url.get("url", ""),
                  "builtins": bool(glob.glob(os.path.join(pkg, "runtime", "*.so")))}))
"""


def configuration(python: str = sys.executable, progress: bool = True) -> dict:
    """The DryPipe that `python`'s venv runs (probed from / with -I, as its console script
    imports it: not from this checkout)."""
    out = subprocess.run([python, "-I", "-c", _PROBE], cwd="/", capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"cannot import drypipe with {python}: {out.stderr.strip()[-300:]}")
    info = json.loads(out.stdout)
    if info["editable"]:
        install = "editable"
    elif info["url"].endswith(".whl") or not info["url"]:
        install = "wheel"  # from a local wheel, or from an index (a wheel too)
    else:
        install = "pip install DIR"
    fresh = os.environ.get("DRYPIPE_BENCH_FRESH_VENV") == os.path.dirname(os.path.dirname(python))
    info.update(install=install, fresh_venv=fresh, progress="tty" if progress else "off (-q)",
                venv=os.path.dirname(os.path.dirname(python)))
    info["label"] = describe(info)
    return info


def describe(info: dict) -> str:
    """`wheel, fresh venv, no builtins, progress on`: the configuration column of the tables."""
    return ", ".join([info["install"] + (" in a fresh venv" if info["fresh_venv"] else ""),
                      "bash builtins" if info["builtins"] else "no builtins",
                      "progress on" if info["progress"] == "tty" else "progress off"])


def popen_on_pty(argv, **kwargs):
    """Popen with stderr on a new pseudo-terminal (DryPipe's progress display redraws there as on
    a user's terminal); returns (proc, drain) where drain(path) waits for the pty's EOF and
    writes what DryPipe drew to path."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stderr=slave, **kwargs)
    finally:
        os.close(slave)
    chunks: list[bytes] = []

    def read():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the slave side closed it
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def drain(path: str) -> None:
        reader.join(10)
        os.close(master)
        with open(path, "wb") as f:
            f.write(b"".join(chunks))
    return proc, drain
