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

from utils.datasets.download import DatasetError, download_file, resolve_data_dir, verify_sha256
from utils.datasets.graph import GraphData, edge_index_from_adjacency_lists, row_normalise

PLANETOID_URL = "https://github.com/kimiyoung/planetoid/raw/master/data"
PLANETOID_DATASETS = ("cora", "citeseer", "pubmed")
RAW_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")

# SHA-256 of the raw files as published in the Planetoid repository. ind.pubmed.allx is not pinned: it
# could not be obtained to hash (the restricted unpickler still keeps a tampered file from running code).
KNOWN_SHA256 = {
    "ind.citeseer.allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
    "ind.citeseer.ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
    "ind.citeseer.graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
    "ind.citeseer.test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
    "ind.citeseer.tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
    "ind.citeseer.ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
    "ind.citeseer.x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
    "ind.citeseer.y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
    "ind.pubmed.x": "fbe9cb5c47200d1b7769a26e579be3b7130b556831f9d850e77c4c74f2599b33",
    "ind.pubmed.y": "e6c807633307a07ed659249006536a147c7999c797f11a2560752990181b41b3",
    "ind.pubmed.tx": "4eb5f5d0f30f26497eb0ac6ac9719d09c67e284f1ed0385c93f3ef27a671da3d",
    "ind.pubmed.ty": "ee2e0d4819d9fbcc403689c3bf2e49face401b605932f093bc58ab6461130fdd",
    "ind.pubmed.ally": "0c37bbe3b5014ec365e9d393cf4791925e5ed94fb194305d74f064a8d7b50f0e",
    "ind.pubmed.graph": "5b89f0036ca22909471f1e6558eb42fa06e0c730a577bde5b058b40638f81dc9",
    "ind.pubmed.test.index": "b101d421688bbaecbd82e8a18f1e282378d6830f3a37666f28ebc47f844341b5",
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


# Cora's seven topics in the order of Planetoid's label columns. The npz release (npz/cora.npz, the same papers)
# names its classes and counts Case based 298, Genetic algorithms 418, Neural networks 818, Probabilistic methods
# 426, Reinforcement learning 217, Rule learning 180, Theory 351; Planetoid's columns (ally + ty) hold 351, 217,
# 418, 818, 426, 298, 180 papers, all different, which fixes the order (tests/datasets/test_planetoid.py checks
# them).
CORA_CLASS_NAMES = ["Theory", "Reinforcement learning", "Genetic algorithms", "Neural networks",
                    "Probabilistic methods", "Case based", "Rule learning"]
# Citeseer's six topics in the order of Planetoid's label columns. The LINQS release counts its 3,312 papers per
# topic as Agents 596, AI 249, DB 701, IR 668, ML 590, HCI 508; Planetoid's columns (ally + ty) hold 249, 590,
# 668, 701, 596, 508 papers, all different, which fixes the order (tests/datasets/test_planetoid.py checks
# them).
CITESEER_CLASS_NAMES = ["AI", "ML", "IR", "DB", "Agents", "HCI"]
CITESEER_CLASS_SIZES = {"Agents": 596, "AI": 249, "DB": 701, "IR": 668, "ML": 590, "HCI": 508}
CLASS_NAMES = {"cora": CORA_CLASS_NAMES, "citeseer": CITESEER_CLASS_NAMES}


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
    """Paths of the raw files in DIR/planetoid/, downloading and verifying any that are missing.

    A DIR that itself holds the ind.<name>.* files (one level too deep) is understood; a DIR whose
    subfolder holds them (one level too shallow) gets a "did you mean" instead of a download."""
    dataset_name = dataset_name.lower()
    if dataset_name not in PLANETOID_DATASETS:
        raise DatasetError(f"unknown Planetoid dataset {dataset_name!r}; choose one of {PLANETOID_DATASETS}")
    data_dir = resolve_data_dir(data_dir)
    marker = f"ind.{dataset_name}.graph"
    folder = data_dir if (data_dir / marker).exists() and not (data_dir / "planetoid" / marker).exists() \
        else data_dir / "planetoid"
    names = [f"ind.{dataset_name}.{part}" for part in RAW_PARTS]
    missing = [name for name in names if not (folder / name).exists()]
    if missing:
        if len(missing) == len(names):
            _suggest_data_dir(data_dir, marker)
        listing = (f"Missing in {folder}: {', '.join(missing)}. Download them from {PLANETOID_URL}/ and place them "
                   f"there, or point --data_dir (or $GAT_DATA_DIR) at the folder that holds planetoid/.")
        if not download:
            raise DatasetError(listing)
        for name in missing:
            try:
                download_file(f"{PLANETOID_URL}/{name}", folder / name, KNOWN_SHA256.get(name), offline_hint=False)
            except DatasetError as error:  # why it failed, then every file still missing and where it goes
                still_missing = [n for n in missing if not (folder / n).exists()]
                raise DatasetError(f"{error} {listing.replace(', '.join(missing), ', '.join(still_missing))}") \
                    from None
    for name in names:
        verify_sha256(folder / name, KNOWN_SHA256.get(name), f"{PLANETOID_URL}/{name}")
    return {part: folder / name for part, name in zip(RAW_PARTS, names)}


def _suggest_data_dir(data_dir, marker):
    """Nothing where we looked: if a subfolder has the files, the user meant that one."""
    if not data_dir.is_dir():
        return
    for candidate in sorted(data_dir.iterdir()):
        if (candidate / "planetoid" / marker).exists() or (candidate / marker).exists():
            raise DatasetError(f"{marker} is not in {data_dir / 'planetoid'}, but {candidate} has it: did you "
                               f"mean --data_dir {candidate}?")


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
        class_names=CLASS_NAMES.get(dataset_name),
    )
