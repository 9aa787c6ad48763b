"""Moved to drypipe/state/lock.py (state/db.py needs it, and state/ imports nothing of scheduler/)."""
from ..state.lock import *  # noqa: F401,F403
from ..state.lock import LOCK_NAME, InstanceLock, holder_pid, lock_path  # noqa: F401
