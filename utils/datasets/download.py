"""Where datasets live, how they are downloaded, verified and extracted. Shared by the dataset loaders.

Data directory: `--data_dir DIR` if given, else $GAT_DATA_DIR, else `data/` in the project root.
Nothing here touches the disk until a loader is called.
"""

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from utils import paths
from utils.plumbing.files import atomic_write


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt or could not be downloaded. The message says what to do."""


def resolve_data_dir(data_dir=None, must_exist=True):
    """--data_dir wins, then $GAT_DATA_DIR, then data/ in the project root. A folder named by either must exist
    (a typo would otherwise start downloads into a new folder); data/ is made when a download needs it."""
    for named, source in ((data_dir, "--data_dir"), (os.environ.get("GAT_DATA_DIR"), "$GAT_DATA_DIR")):
        if named:
            folder = Path(named).expanduser()
            if must_exist and not folder.is_dir():
                raise DatasetError(f"{source} {folder} {'is not a folder' if folder.exists() else 'does not exist'}: "
                                   f"point it at the folder that holds the datasets (planetoid/, npz/, ppi/, ...), "
                                   f"or create it first to download them into it")
            return folder
    return paths.DATA_DIR


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path, expected, url):
    """Raise DatasetError unless the file's SHA-256 is `expected` (None: nothing pinned to check)."""
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise DatasetError(
            f"{path} is corrupt or not the expected file: its SHA-256 is {actual}, expected {expected}.\n"
            f"Delete it and run again to re-download it from {url}, or place the right file there by hand.")


def download_file(url, destination, expected_sha256=None, show_progress=None, offline_hint=True):
    """Download url to destination with a progress bar; the file appears only once whole and verified.
    offline_hint=False: a failed download says why in one line, for a caller that says itself where files go."""
    destination = Path(destination)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError) as error:
        hint = (f"\nWithout network access, download it elsewhere and place it at {destination} (or point "
                f"--data_dir / GAT_DATA_DIR at a folder that has it)." if offline_hint else "")
        raise DatasetError(f"Could not download {destination.name} from {url} ({error}).{hint}") from None
    with response, atomic_write(destination, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        digest = hashlib.sha256()
        with tqdm(total=total, unit="B", unit_scale=True, desc=destination.name, disable=not show_progress) as bar:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise DatasetError(
                f"The download of {destination.name} from {url} is corrupt: SHA-256 {digest.hexdigest()}, "
                f"expected {expected_sha256}. Try again, or place the right file at {destination} by hand.")
    return destination


@contextlib.contextmanager
def extracted_zip(zip_path, destination, how_to_fix):
    """Check a downloaded zip (a zip at all, every CRC, no path that escapes) and extract it into a temporary
    folder beside `destination`; yields that folder and removes whatever is left of it afterwards.

    The caller validates the files and renames the dataset folder out of it into `destination`: beside it
    means on the same filesystem, so that rename is atomic and a failed extraction leaves nothing behind."""
    if not zipfile.is_zipfile(zip_path):
        raise DatasetError(f"{zip_path} is not a zip archive (incomplete download?). {how_to_fix}")
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}-extract-"))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            broken = archive.testzip()
            if broken is not None:
                raise DatasetError(f"{zip_path} is corrupt (bad CRC in {broken}). {how_to_fix}")
            for member in archive.namelist():
                if member.startswith("/") or ".." in Path(member).parts:
                    raise DatasetError(f"{zip_path} contains an unsafe path {member!r}. {how_to_fix}")
            archive.extractall(tmp)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
