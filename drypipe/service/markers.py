"""An instance's marker, `X/.drypipe/state.<s>`: how the service and the people (or scripts)
who drop instances talk. Whoever prepares a folder writes `state.ready` last; the service
renames it `state.running`, then `state.completed` or `state.failed`; renaming a failed one
back to `state.ready` asks for it to be resumed. One marker per instance, moved by rename, so
it is never missing nor doubled however a process dies."""
from __future__ import annotations

import os
import time

READY, RUNNING, COMPLETED, FAILED = "ready", "running", "completed", "failed"
MARKERS = (READY, RUNNING, COMPLETED, FAILED)
LOG_NAME = "instance.log"


def marker_path(instance_dir: str, state: str) -> str:
    return os.path.join(instance_dir, ".drypipe", f"state.{state}")


def current(instance_dir: str) -> str | None:
    """The instance's marker state, or None (no marker: not an instance, or not yet dropped)."""
    for state in MARKERS:
        if os.path.exists(marker_path(instance_dir, state)):
            return state
    return None


def move(instance_dir: str, old: str, new: str) -> bool:
    """Rename the marker from old to new; False when it no longer says old."""
    try:
        os.rename(marker_path(instance_dir, old), marker_path(instance_dir, new))
        return True
    except FileNotFoundError:
        return False


def scan(instances_dir: str, state: str, skip=frozenset()) -> list[tuple[float, str]]:
    """(marker mtime, folder) of the instances whose marker is `state`, oldest first, the
    folders named in skip left out. Costs one listdir and one stat per folder: the service's
    idle scan of a thousand finished instances is a few milliseconds."""
    found = []
    suffix = os.path.join(".drypipe", f"state.{state}")
    try:
        entries = os.scandir(instances_dir)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    with entries:
        for e in entries:
            if e.name.startswith(".") or e.name in skip:
                continue
            try:
                st = os.stat(os.path.join(e.path, suffix))
            except OSError:  # no marker (or not a folder): not for us, never touched
                continue
            found.append((st.st_mtime, e.path))
    found.sort()
    return found


def instance_folders(instances_dir: str) -> list[str]:
    """The folders of instances_dir that have a .drypipe folder (instances, dropped or not)."""
    try:
        names = sorted(os.listdir(instances_dir))
    except OSError:
        return []
    return [os.path.join(instances_dir, n) for n in names
            if not n.startswith(".") and os.path.isdir(os.path.join(instances_dir, n, ".drypipe"))]


def log_line(instance_dir: str, text: str) -> None:
    """Append a time-stamped line to X/.drypipe/instance.log (best effort: the folder may be gone)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    try:
        with open(os.path.join(instance_dir, ".drypipe", LOG_NAME), "a") as f:
            f.write(f"{stamp} {text}\n")
    except OSError:
        pass


# -- the service's own files, in <home>/.drypipe --------------------------------------------
SERVICE_LOCK = "service.lock"
SERVICE_JSON = "service.json"


def service_file(home: str, name: str) -> str:
    return os.path.join(home, ".drypipe", name)


def is_service_home(path: str) -> bool:
    """Is path the home of a `drypipe service` (rather than an instance)?"""
    return os.path.isfile(service_file(path, SERVICE_JSON))
