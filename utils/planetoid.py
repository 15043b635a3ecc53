"""The Planetoid citation graphs (Cora, Citeseer, Pubmed) with the public split.

The raw files (Yang, Cohen & Salakhutdinov, 2016) are Python-2 pickles: scipy sparse feature
matrices, numpy one-hot label arrays, a dict of adjacency lists, and a text file of test indices.
They are checked against pinned SHA-256 hashes (where we have them) and then unpickled with an
unpickler that can only build those few numpy/scipy/builtin types, so a tampered file cannot run code.
"""

import collections
import pickle

import numpy as np
import scipy.sparse as sp
import torch

from utils.data_loading import DatasetError, download_file, resolve_data_dir, verify_sha256
from utils.graph import GraphData, edge_index_from_adjacency_lists, row_normalise

PLANETOID_URL = "https://github.com/kimiyoung/planetoid/raw/master/data"
PLANETOID_DATASETS = ("cora", "citeseer", "pubmed")
RAW_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")

# SHA-256 of the published raw files. Only Cora's could be verified while writing this loader;
# Citeseer's and Pubmed's are not pinned (the restricted unpickler still protects against code).
KNOWN_SHA256 = {
    "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
}

NUM_VAL_NODES = 500  # public split: 500 validation nodes right after the labelled training nodes


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only what the Planetoid files contain; anything else is refused."""

    ALLOWED = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("scipy.sparse.csr", "csr_matrix"): lambda: sp.csr_matrix,
        ("scipy.sparse._csr", "csr_matrix"): lambda: sp.csr_matrix,
        ("collections", "defaultdict"): lambda: collections.defaultdict,
        ("__builtin__", "list"): lambda: list,
        ("builtins", "list"): lambda: list,
        ("__builtin__", "set"): lambda: set,
        ("builtins", "set"): lambda: set,
        # Protocol-2 pickles written by Python 3 spell byte strings as _codecs.encode(str, 'latin1').
        ("_codecs", "encode"): lambda: _encode_latin1,
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not a type Planetoid files use")
        return self.ALLOWED[(module, name)]()


def _encode_latin1(text, encoding="latin1"):
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"unexpected byte-string encoding {encoding!r}")
    return text.encode("latin1")


def _unpickle(path):
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f, encoding="latin1").load()
        except Exception as error:  # a truncated or foreign file fails in many ways
            raise DatasetError(f"{path} could not be read as a Planetoid pickle ({error}). "
                               f"Delete it and run again to re-download it.") from None


def raw_file_paths(dataset_name, data_dir=None, download=True):
    """Paths of the raw files in DIR/planetoid/, downloading and verifying any that are missing."""
    dataset_name = dataset_name.lower()
    if dataset_name not in PLANETOID_DATASETS:
        raise DatasetError(f"unknown Planetoid dataset {dataset_name!r}; choose one of {PLANETOID_DATASETS}")
    folder = resolve_data_dir(data_dir) / "planetoid"
    paths = {}
    for part in RAW_PARTS:
        file_name = f"ind.{dataset_name}.{part}"
        path, url = folder / file_name, f"{PLANETOID_URL}/{file_name}"
        if not path.exists():
            if not download:
                raise DatasetError(f"{path} is missing. Download it from {url} and place it there.")
            download_file(url, path, KNOWN_SHA256.get(file_name))
        verify_sha256(path, KNOWN_SHA256.get(file_name), url)
        paths[part] = path
    return paths


def load_planetoid(dataset_name="cora", data_dir=None, download=True):
    """Load Cora, Citeseer or Pubmed with the public split, as a GraphData.

    Features are row-normalised (each row sums to 1, all-zero rows stay zero). Labels are class ids;
    -1 marks Citeseer's isolated test-range nodes that have no features and no label.
    """
    dataset_name = dataset_name.lower()
    paths = raw_file_paths(dataset_name, data_dir, download)
    x, y, tx, ty, allx, ally, graph = (_unpickle(paths[p]) for p in RAW_PARTS[:-1])
    try:
        test_index_file_order = np.loadtxt(paths["test.index"], dtype=np.int64, ndmin=1)
    except ValueError as error:
        raise DatasetError(f"{paths['test.index']} is not a list of integers ({error})") from None

    # Nodes are laid out as [allx rows (train + val + the rest), tx rows]; tx rows belong to the
    # node ids listed in test.index, which is not sorted.
    test_ids_sorted = np.sort(test_index_file_order)
    num_train = y.shape[0]
    if dataset_name == "citeseer":
        # Some Citeseer ids in the test range are isolated nodes absent from tx: give them an
        # all-zero feature row and an all-zero label row (-1 below), as the standard loaders do.
        full_range = np.arange(test_ids_sorted[0], test_ids_sorted[-1] + 1)
        tx_full = sp.lil_matrix((len(full_range), tx.shape[1]), dtype=np.float32)
        tx_full[test_ids_sorted - test_ids_sorted[0], :] = tx
        ty_full = np.zeros((len(full_range), ty.shape[1]), dtype=ty.dtype)
        ty_full[test_ids_sorted - test_ids_sorted[0], :] = ty
        tx, ty = tx_full, ty_full

    features = sp.vstack((allx, tx)).tolil()
    features[test_index_file_order, :] = features[test_ids_sorted, :]
    one_hot = np.vstack((ally, ty))
    one_hot[test_index_file_order, :] = one_hot[test_ids_sorted, :]
    labels = np.where(one_hot.any(axis=1), one_hot.argmax(axis=1), -1)

    features = row_normalise(features.tocsr())
    edge_index = edge_index_from_adjacency_lists(graph, num_nodes=features.shape[0])

    train_indices = np.arange(num_train)
    val_indices = np.arange(num_train, num_train + NUM_VAL_NODES)
    for split, indices in (("train", train_indices), ("val", val_indices), ("test", test_ids_sorted)):
        if (labels[indices] < 0).any():
            raise DatasetError(f"{dataset_name}: the {split} split contains unlabelled nodes; "
                               f"the raw files look inconsistent")

    return GraphData(
        name=dataset_name,
        node_features=torch.from_numpy(features.toarray().astype(np.float32)),
        labels=torch.from_numpy(labels.astype(np.int64)),
        edge_index=edge_index,
        num_classes=one_hot.shape[1],
        train_indices=torch.from_numpy(train_indices),
        val_indices=torch.from_numpy(val_indices),
        test_indices=torch.from_numpy(test_ids_sorted.astype(np.int64)),
    )
