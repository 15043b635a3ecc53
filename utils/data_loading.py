"""Where datasets live, how they are downloaded and verified. Shared by the Planetoid and PPI loaders.

Data directory: `--data_dir DIR` if given, else $GAT_DATA_DIR, else `data/` in the project root.
Nothing here touches the disk until a loader is called.
"""

import dataclasses
import hashlib
import os
import sys
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

from utils.files import atomic_write

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt or could not be downloaded. The message says what to do."""


@dataclasses.dataclass
class GraphData:
    """One graph (or a batch of disjoint graphs) ready for a GAT.

    node_features [N, F] float, labels [N] (class ids, -1 = no label) or [N, C] (multi-label 0/1),
    edge_index [2, E] long (row 0 source, row 1 target; symmetric, deduplicated, self loops added),
    train/val/test indices (transductive datasets only).
    """
    name: str
    node_features: torch.Tensor
    labels: torch.Tensor
    edge_index: torch.Tensor
    num_classes: int
    train_indices: torch.Tensor = None
    val_indices: torch.Tensor = None
    test_indices: torch.Tensor = None

    @property
    def num_nodes(self):
        return self.node_features.shape[0]

    def to(self, device):
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[key] = value.to(device)
        return GraphData(**moved)


def sparsify_if_mostly_zero(features, max_density=0.5):
    """Return features as a sparse CSR tensor when at most `max_density` of them are non-zero.

    The layers accept either layout and compute the same thing; on Cora (1.3% non-zero) the sparse
    input projection is ~20x cheaper than the dense one.
    """
    if features.layout != torch.strided or features.numel() == 0:
        return features
    if torch.count_nonzero(features).item() > max_density * features.numel():
        return features
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return features.to_sparse_csr()


def resolve_data_dir(data_dir=None):
    """--data_dir wins, then $GAT_DATA_DIR, then data/ in the project root."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("GAT_DATA_DIR"):
        return Path(os.environ["GAT_DATA_DIR"]).expanduser()
    return DEFAULT_DATA_DIR


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


def download_file(url, destination, expected_sha256=None, show_progress=None):
    """Download url to destination with a progress bar; the file appears only once whole and verified."""
    destination = Path(destination)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError) as error:
        raise DatasetError(
            f"Could not download {destination.name} from {url} ({error}).\n"
            f"Without network access, download it elsewhere and place it at {destination} "
            f"(or point --data_dir / GAT_DATA_DIR at a folder that has it).") from None
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
