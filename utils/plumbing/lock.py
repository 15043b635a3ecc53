"""One process per run: the run's folder holds a lock file while a process trains it.

    models/checkpoints/<run>/lock      the training process's pid; exists only while it trains (or after it was killed)

The lock is the operating system's advisory file lock (fcntl.flock) on that file, not the file itself: the system
releases it when the process ends, however it ends, so a lock file left by a killed process blocks nothing. The
pid in it is only there to say who holds the run. Where the platform has no fcntl (Windows), runs are not locked.
"""

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover (no advisory locks on this platform)
    fcntl = None

LOCK_NAME = "lock"

_held = {}  # the folders this process holds: resolved folder -> the lock file's descriptor


class RunInUse(RuntimeError):
    """Another process is training this run right now."""


def try_lock(folder):
    """Take the run folder's lock if no other process holds it; True if this process holds it now."""
    folder = Path(folder).resolve()
    if folder in _held or fcntl is None:
        return True
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        if _same_file(fd, path):  # (not a file that its holder removed while we opened it)
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[folder] = fd
    return True


def holds(folder):
    """Whether this process holds the run folder's lock."""
    return Path(folder).resolve() in _held


def lock_run(folder, run_name):
    """Take the lock, or RunInUse saying which process trains the run."""
    if not try_lock(folder):
        raise RunInUse(_in_use(run_name, holder(folder)))


def refuse_if_in_use(folder, run_name):
    """RunInUse if another process trains the run right now; takes nothing. (A resume checks this first, and takes
    the lock with lock_run only when its data and model are ready: a resume that fails before it holds nothing.)"""
    owner = holder(folder)
    if owner is not None and not holds(folder):
        raise RunInUse(_in_use(run_name, owner))


def _in_use(run_name, owner):
    return (f"run {run_name} is being trained right now by another process" + (f" (pid {owner})" if owner else "")
            + "; wait for it to end (or stop it with Ctrl-C) before resuming it, or start a new run")


def holder(folder):
    """The pid of the process training the run, or None when no process holds it (finished, killed, or never
    locked)."""
    folder = Path(folder).resolve()
    if folder in _held:
        return os.getpid()
    path = folder / LOCK_NAME
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None  # nobody holds it: a lock file left by a process that ended
    except BlockingIOError:
        text = os.read(fd, 32).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)


def left_behind(folder):
    """True when the run folder holds a lock file that no process holds: the process that trained it last was
    killed (a run that ends any other way removes its lock file)."""
    return fcntl is not None and (Path(folder) / LOCK_NAME).is_file() and holder(folder) is None


def release(folder):
    """Let go of the run (its lock file goes), and remove its folder if the run saved nothing into it."""
    folder = Path(folder).resolve()
    fd = _held.pop(folder, None)
    if fd is None:
        return
    try:
        (folder / LOCK_NAME).unlink(missing_ok=True)
    finally:
        os.close(fd)
    try:
        folder.rmdir()  # only when empty: a run that stopped before its first save leaves no folder behind
    except OSError:
        pass


def saved_nothing(folder):
    """True for a run folder with no file but a lock file: a run that stopped before its first save."""
    return all(path.name == LOCK_NAME for path in Path(folder).iterdir())


def _same_file(fd, path):
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
