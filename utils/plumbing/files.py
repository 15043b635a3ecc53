"""Atomic file writing: whatever a user saved is either the old file or the whole new one."""

import contextlib
import errno
import os
import tempfile
from pathlib import Path


class OutputError(RuntimeError):
    """A folder or file a run must write cannot be written (said before anything trains)."""


def check_writable(path, is_file=False):
    """Prove that the folder `path` (or a file's folder) can be made and written, changing nothing: its nearest
    existing ancestor must be a folder that takes a file. OutputError naming the path and the reason otherwise."""
    path = Path(path)
    folder = path.parent if is_file else path
    try:
        if is_file and path.is_dir():
            raise OutputError(f"cannot write {display_path(path)}: it is a folder, not a file")
        existing = next(parent for parent in [folder, *folder.parents] if parent.exists())
        if not existing.is_dir():
            raise OutputError(f"cannot write into {display_path(folder)}: {display_path(existing)} is a file, "
                              f"not a folder; move it away or choose another path")
        with tempfile.TemporaryFile(dir=existing, prefix=".write-check-"):
            pass
    except OutputError:
        raise
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            reason += " (check the folder's permissions, or choose another path)"
        raise OutputError(f"cannot write into {display_path(folder)}: {reason}") from None


@contextlib.contextmanager
def atomic_write(path, mode="wb", exclusive=False):
    """Yield a file object for a temp file beside `path`; on success move it into place.

    exclusive=True hard-links instead of renaming, which raises FileExistsError instead of
    overwriting an existing file. On any error the temp file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes it 0600; a saved file gets what open() would give
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp_name, path)
        else:
            os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)


def current_umask():
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path, payload):
    """Write `payload` as indented JSON, atomically."""
    import json
    with atomic_write(path, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    return Path(path)


def display_path(path):
    """A path as a user would type it: relative to the working directory when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
