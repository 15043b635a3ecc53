"""The graphs of Shchur, Mumme, Bojchevski & Günnemann, "Pitfalls of Graph Neural Network Evaluation" (2018),
in their gnn-benchmark .npz layout, and any graph of your own written in that layout.

    graph = load_npz_graph("amazon-photo")               # downloaded into DIR/npz/ on first use
    graph = load_npz_graph("path/to/my_graph.npz")       # your own file

These graphs have no public split: draw one with utils.datasets.splits.random_split (20 per class to train, 30 to
validate, the rest to test, on the largest connected component), as Shchur et al. did.

Layout (one .npz archive, every array plain numpy, read with allow_pickle=False so a file cannot run code):
    adj_data, adj_indices, adj_indptr, adj_shape           adjacency [N, N] in CSR; every stored entry is an
                                                           edge (weights and direction are dropped)
    attr_data, attr_indices, attr_indptr, attr_shape       features [N, F] in CSR, or instead
    attr_matrix                                            features [N, F] dense
    labels                                                 [N] integer class ids, -1 = no label, or instead
    labels_data, labels_indices, labels_indptr, labels_shape   [N, C] one-hot rows in CSR (an empty row = no label)
    class_names (optional)                                 [C] strings
    node_names (optional)                                  [N] strings, ignored here

Writing your own, from a scipy adjacency, a feature matrix and labels:

    import numpy as np, scipy.sparse as sp
    adjacency = sp.csr_matrix((np.ones(len(sources)), (sources, targets)), shape=(num_nodes, num_nodes))
    save_npz_graph("my_graph.npz", adjacency, features, labels, class_names=["a", "b"])
    # which is, by hand:
    np.savez("my_graph.npz", adj_data=adjacency.data, adj_indices=adjacency.indices,
             adj_indptr=adjacency.indptr, adj_shape=adjacency.shape,
             attr_matrix=features, labels=labels, class_names=np.array(["a", "b"]))
"""

import warnings
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from utils.datasets.download import DatasetError, download_file, resolve_data_dir, verify_sha256
from utils.datasets.graph import GraphData, build_edge_index, row_normalise
from utils.datasets.names import NPZ_DATASETS, own_graph_name
from utils.plumbing.files import atomic_write

NPZ_URL = "https://github.com/shchur/gnn-benchmark/raw/master/data/npz"

# Only cora.npz is pinned: it is the only file that could be obtained here to hash. The others are not
# pinned (not available offline to hash); they are still read with allow_pickle=False, so a tampered file
# can give wrong numbers but cannot run code.
KNOWN_SHA256 = {
    "cora.npz": "068e22d90c3849b4057dfb05851741428992af058efcd4e7ebb4186f3d581de2",
}

CSR_PARTS = ("data", "indices", "indptr", "shape")


# ----------------------------------------------------------------------------- finding the file

def npz_file_path(name_or_path, data_dir=None, download=True):
    """The file to read: a dataset name is looked up in DIR/npz/ (downloaded if missing), anything else is a path,
    relative to the working folder or, failing that, to the data folder."""
    if str(name_or_path).lower() in NPZ_DATASETS:
        return _dataset_file(str(name_or_path).lower(), data_dir, download)
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if not path.is_absolute():
        try:
            in_data_dir = resolve_data_dir(data_dir) / path
        except DatasetError:
            in_data_dir = None
        if in_data_dir is not None and in_data_dir.is_file():
            return in_data_dir
    if path.suffix != ".npz" and len(path.parts) == 1:
        raise DatasetError(f"unknown npz dataset {str(name_or_path)!r}: choose one of {sorted(NPZ_DATASETS)}, "
                           f"or give the path of a .npz file in the gnn-benchmark layout "
                           f"(see utils/datasets/npz_graph.py)")
    raise DatasetError(f"{path} does not exist (or is not a file), here or in the data folder. Give the path of "
                       f"a .npz graph file, or one of the npz dataset names {sorted(set(NPZ_DATASETS) - {'cora'})} "
                       f"(their cora.npz: by its path, as 'cora' is Planetoid's Cora).")


def _dataset_file(dataset_name, data_dir, download):
    file_name = NPZ_DATASETS[dataset_name]
    url = f"{NPZ_URL}/{file_name}"
    data_dir = resolve_data_dir(data_dir)
    path = data_dir / "npz" / file_name
    if not path.exists() and (data_dir / file_name).exists():  # DIR is the npz/ folder itself
        path = data_dir / file_name
    if not path.exists():
        if not download:
            raise DatasetError(f"{data_dir / 'npz' / file_name} is missing. Download it from {url} and place it "
                               f"there, or point --data_dir (or $GAT_DATA_DIR) at the folder that holds npz/.")
        download_file(url, data_dir / "npz" / file_name, KNOWN_SHA256.get(file_name))
        path = data_dir / "npz" / file_name
    verify_sha256(path, KNOWN_SHA256.get(file_name), url)
    return path


# ----------------------------------------------------------------------------- reading and checking arrays

def _read_arrays(path):
    """Every array of the archive that this loader uses, read without pickle. Optional arrays that would need
    pickle are left out (they only name things); required ones are refused in the checks that follow."""
    how_to_fix = ("Re-download it, or re-write it with utils.datasets.npz_graph.save_npz_graph "
                  "(plain numpy arrays only).")
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path} is not an .npz archive (not a zip file: incomplete download, or another "
                           f"format?). {how_to_fix}")
    wanted = {f"{prefix}_{part}" for prefix in ("adj", "attr", "labels") for part in CSR_PARTS}
    wanted |= {"attr_matrix", "labels", "class_names"}
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in sorted(wanted & set(archive.files)):
                try:
                    arrays[key] = archive[key]
                except ValueError as error:  # "Object arrays cannot be loaded when allow_pickle=False"
                    if key == "class_names":
                        continue
                    raise DatasetError(f"{path}: array {key!r} cannot be read without pickle ({error}); pickled "
                                       f"arrays are refused because they can run code. {how_to_fix}") from None
    except DatasetError:
        raise
    except Exception as error:  # a truncated or damaged archive fails in many ways (BadZipFile, zlib, EOF)
        raise DatasetError(f"{path} is corrupt and could not be read ({type(error).__name__}: {error}). "
                           f"{how_to_fix}") from None
    return arrays


def _require(arrays, key, path, what):
    if key not in arrays:
        raise DatasetError(f"{path} has no array {key!r} ({what}); it holds {sorted(arrays) or 'none we use'}. "
                           f"See the layout in utils/datasets/npz_graph.py.")
    return arrays[key]


def _is_integer(array):
    return np.issubdtype(array.dtype, np.integer)


def _is_number(array):
    return np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_


def _checked_csr(arrays, prefix, path, what):
    """Build the CSR matrix stored as <prefix>_data/indices/indptr/shape, after checking every part."""
    data, indices, indptr, shape = (_require(arrays, f"{prefix}_{part}", path, what) for part in CSR_PARTS)
    if shape.shape != (2,) or not _is_integer(shape) or (shape < 0).any():
        raise DatasetError(f"{path}: {prefix}_shape must be two non-negative integers, got {shape!r}")
    num_rows, num_cols = (int(s) for s in shape)
    for name, array in (("indices", indices), ("indptr", indptr)):
        if array.ndim != 1 or not _is_integer(array):
            raise DatasetError(f"{path}: {prefix}_{name} must be a 1-D integer array, got {array.dtype} "
                               f"with shape {array.shape}")
    if data.ndim != 1 or not _is_number(data):
        raise DatasetError(f"{path}: {prefix}_data must be a 1-D numeric array, got {data.dtype} with shape "
                           f"{data.shape}")
    if len(indptr) != num_rows + 1:
        raise DatasetError(f"{path}: {prefix}_indptr has {len(indptr)} entries; a {num_rows}-row matrix needs "
                           f"{num_rows + 1}")
    if len(indptr) and (indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != len(indices)):
        raise DatasetError(f"{path}: {prefix}_indptr must start at 0, never decrease and end at the number of "
                           f"stored entries ({len(indices)}); it runs {indptr[0]} .. {indptr[-1]}")
    if len(data) != len(indices):
        raise DatasetError(f"{path}: {prefix}_data has {len(data)} entries but {prefix}_indices has "
                           f"{len(indices)}")
    if len(indices) and (indices.min() < 0 or indices.max() >= num_cols):
        raise DatasetError(f"{path}: {prefix}_indices must lie in [0, {num_cols}) (the matrix has {num_cols} "
                           f"columns), found {indices.min()} .. {indices.max()}")
    return sp.csr_matrix((data, indices.astype(np.int64), indptr.astype(np.int64)), shape=(num_rows, num_cols))


def _checked_adjacency(arrays, path):
    adjacency = _checked_csr(arrays, "adj", path, "the adjacency matrix")
    if adjacency.shape[0] != adjacency.shape[1]:
        raise DatasetError(f"{path}: the adjacency matrix must be square, its adj_shape is {adjacency.shape}")
    return adjacency


def _checked_features(arrays, path, num_nodes):
    if "attr_data" in arrays or "attr_matrix" not in arrays:  # CSR first, as gnn-benchmark's own reader
        features = _checked_csr(arrays, "attr", path, "the node features, or a dense attr_matrix instead")
        values = features.data
    else:
        features = arrays["attr_matrix"]
        if features.ndim != 2 or not _is_number(features):
            raise DatasetError(f"{path}: attr_matrix must be a 2-D numeric array, got {features.dtype} with shape "
                               f"{features.shape}")
        values = features
    if features.shape[0] != num_nodes:
        raise DatasetError(f"{path}: the features have {features.shape[0]} rows but the graph has {num_nodes} "
                           f"nodes")
    if not np.isfinite(values).all():
        raise DatasetError(f"{path}: the features contain NaN or infinite values")
    return features


def _checked_labels(arrays, path, num_nodes):
    """Class ids [N] (-1 = no label) and the number of classes.

    One-hot CSR rows give the column of their one entry, empty rows -1. A row with several labels is refused
    rather than reduced by argmax: silently keeping one class of a multi-label node would change the task."""
    if "labels_data" in arrays or "labels" not in arrays:
        one_hot = _checked_csr(arrays, "labels", path, "the node labels: a 1-D labels array or labels_* CSR")
        one_hot.eliminate_zeros()
        labels_per_row = np.diff(one_hot.indptr)
        if (labels_per_row > 1).any():
            row = int(np.flatnonzero(labels_per_row > 1)[0])
            raise DatasetError(f"{path}: node {row} (and {int((labels_per_row > 1).sum()) - 1} others) has several "
                               f"labels; this loader handles single-label graphs only")
        labels = np.full(one_hot.shape[0], -1, dtype=np.int64)
        labels[labels_per_row == 1] = one_hot.indices
        num_classes = one_hot.shape[1]
    else:
        labels = arrays["labels"]
        if labels.ndim != 1 or not _is_integer(labels):
            raise DatasetError(f"{path}: labels must be a 1-D integer array of class ids, got {labels.dtype} with "
                               f"shape {labels.shape}")
        labels = labels.astype(np.int64)
        if len(labels) and labels.min() < -1:
            raise DatasetError(f"{path}: labels must be class ids >= 0 (or -1 for no label), found {labels.min()}")
        num_classes = int(labels.max(initial=-1)) + 1
    if len(labels) != num_nodes:
        raise DatasetError(f"{path}: there are {len(labels)} labels but the graph has {num_nodes} nodes")
    if "class_names" in arrays:
        class_names = arrays["class_names"]
        if class_names.ndim != 1 or len(class_names) < num_classes:
            raise DatasetError(f"{path}: class_names must name every class: {num_classes} classes, got shape "
                               f"{class_names.shape}")
        num_classes = len(class_names)
    if num_classes == 0:
        raise DatasetError(f"{path}: no node has a label")
    return labels, num_classes


# ----------------------------------------------------------------------------- the loader

def load_npz_graph(name_or_path, data_dir=None, download=True, normalise_features=True, binarise_features=None):
    """Load a gnn-benchmark .npz graph (a name from NPZ_DATASETS, or the path of a file) as a GraphData.

    Edges are made undirected, deduplicated and given one self loop per node. Features are dense float32.
    binarise_features (None: yes for the named benchmark graphs, no for your own file) sets every non-zero
    feature to 1, as Shchur et al. and PyG do for these graphs. normalise_features then scales each row to
    sum to 1, as the Planetoid loader here does (Shchur et al. leave it off by default; pass False to match);
    features with a negative value (embeddings, standardised measurements) are not counts and are kept as they
    are, with a warning that says so.
    Labels are class ids, -1 for unlabelled nodes; the file's class_names, where it has them, name the classes in
    figures and predictions. No split: see utils.datasets.splits.random_split.
    """
    is_named = str(name_or_path).lower() in NPZ_DATASETS
    path = npz_file_path(name_or_path, data_dir, download)
    arrays = _read_arrays(path)
    adjacency = _checked_adjacency(arrays, path)
    num_nodes = adjacency.shape[0]
    features = _checked_features(arrays, path, num_nodes)
    labels, num_classes = _checked_labels(arrays, path, num_nodes)

    sources = np.repeat(np.arange(num_nodes, dtype=np.int64), np.diff(adjacency.indptr))
    edge_index = build_edge_index(sources, adjacency.indices, num_nodes)

    features = sp.csr_matrix(features, dtype=np.float64)  # normalise sparse: cheaper than dense
    features.sum_duplicates()
    if binarise_features if binarise_features is not None else is_named:
        features.data[:] = (features.data != 0)
    if normalise_features and features.data.min(initial=0) < 0:
        warnings.warn(f"{path.name}: features with negative values are kept as they are (rows are scaled to sum "
                      f"to 1 only where every feature is a count or a weight >= 0)", stacklevel=2)
    elif normalise_features:
        features = row_normalise(features)

    return GraphData(
        name=str(name_or_path).lower() if is_named else own_graph_name(path),
        node_features=torch.from_numpy(features.toarray().astype(np.float32)),
        labels=torch.from_numpy(labels),
        edge_index=edge_index,
        num_classes=num_classes,
        class_names=[name.decode() if isinstance(name, bytes) else str(name) for name in arrays["class_names"]]
        if "class_names" in arrays else None,
    )


# ----------------------------------------------------------------------------- writing your own

def save_npz_graph(path, adjacency, features, labels, class_names=None):
    """Write a graph in the layout load_npz_graph reads (atomically; the file is named exactly `path`).

    adjacency: [N, N] scipy sparse or dense (non-zeros are edges). features: [N, F] scipy sparse (stored
    as attr_* CSR) or dense (attr_matrix). labels: [N] class ids (-1 = no label), or [N, C] one-hot,
    dense or sparse (stored as labels_* CSR). class_names: optional list of C strings.
    """
    adjacency = sp.csr_matrix(adjacency)
    adjacency.eliminate_zeros()
    num_nodes = adjacency.shape[0]
    if adjacency.shape != (num_nodes, num_nodes):
        raise ValueError(f"adjacency must be square, got shape {adjacency.shape}")
    features = sp.csr_matrix(features) if sp.issparse(features) else np.asarray(features)
    labels = sp.csr_matrix(labels) if sp.issparse(labels) or np.ndim(labels) == 2 else np.asarray(labels, np.int64)
    for what, rows in (("features", features.shape[0]), ("labels", labels.shape[0])):
        if rows != num_nodes:
            raise ValueError(f"{what} have {rows} rows but the adjacency has {num_nodes} nodes")

    arrays = _csr_arrays("adj", adjacency)
    if sp.issparse(features):
        arrays.update(_csr_arrays("attr", features))
    else:
        arrays["attr_matrix"] = features
    if sp.issparse(labels):
        arrays.update(_csr_arrays("labels", labels))
    else:
        arrays["labels"] = labels
    if class_names is not None:
        arrays["class_names"] = np.asarray(class_names, dtype=str)
    with atomic_write(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return Path(path)


def _csr_arrays(prefix, matrix):
    return {f"{prefix}_data": matrix.data, f"{prefix}_indices": matrix.indices,
            f"{prefix}_indptr": matrix.indptr, f"{prefix}_shape": np.asarray(matrix.shape, dtype=np.int64)}
