"""ogbn-arxiv from the Open Graph Benchmark: the first graph people try after Cora.

169,343 arXiv CS papers (nodes), 1,166,243 citations (directed edges), 128 features per paper (an average of
word embeddings of its title and abstract), 40 subject classes, and OGB's time split (train: papers until
2017, validation: 2018, test: 2019 onwards).

Source: the OGB node-property-prediction archive (ARXIV_URL), extracted into DIR/ogbn_arxiv/. Inside:
    raw/edge.csv.gz            one "source,target" line per citation
    raw/node-feat.csv.gz       one line of 128 comma-separated floats per node
    raw/node-label.csv.gz      one class id per line
    raw/num-node-list.csv.gz   the node count;  raw/num-edge-list.csv.gz: the edge count
    split/time/{train,valid,test}.csv.gz   node ids, one per line
Only these plain-text files are read (never a pickle). OGB publishes no checksum for the archive, so none is
pinned here; the zip's own CRCs are checked, and every file is checked against the counts before the
folder is put in place. As GAT is usually trained on it, the citations are made undirected and a self loop
is added to every node.
"""

import gzip
import zipfile
from pathlib import Path

import numpy as np
import torch

from utils.datasets.download import DatasetError, download_file, extracted_zip, resolve_data_dir
from utils.datasets.graph import GraphData, build_edge_index

ARXIV_URL = "http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip"
FOLDER = "ogbn_arxiv"
RAW_FILES = ("raw/edge.csv.gz", "raw/node-feat.csv.gz", "raw/node-label.csv.gz", "raw/num-node-list.csv.gz",
             "raw/num-edge-list.csv.gz")
SPLIT_FILES = {"train": "split/time/train.csv.gz", "val": "split/time/valid.csv.gz",
               "test": "split/time/test.csv.gz"}
NUM_CLASSES = 40
NUM_FEATURES = 128


def ensure_arxiv(data_dir=None, download=True):
    """DIR/ogbn_arxiv, downloading and extracting arxiv.zip first if it is not there."""
    data_dir = resolve_data_dir(data_dir)
    folder = data_dir / FOLDER
    if folder.is_dir():
        return folder
    if (data_dir / "raw" / "edge.csv.gz").is_file():  # one level too deep: DIR is the dataset folder
        return data_dir
    zip_path = data_dir / "arxiv.zip"
    if not zip_path.exists():
        if not download:
            raise DatasetError(f"ogbn-arxiv not found in {folder}. Download {ARXIV_URL} into {data_dir}/ (it is "
                               f"extracted on first use), or run with network access.")
        download_file(ARXIV_URL, zip_path)
    return extract_arxiv_zip(zip_path, folder)


def extract_arxiv_zip(zip_path, folder):
    """Check the zip is whole, extract it to a temp folder, validate every file, then rename into place."""
    how_to_fix = f"Delete {zip_path} and run again to re-download it from {ARXIV_URL}."
    folder = Path(folder)
    with extracted_zip(zip_path, folder, how_to_fix) as tmp:
        # The archive holds one folder (arxiv/) with raw/ and split/ inside.
        root = next((p.parent.parent for p in tmp.rglob("edge.csv.gz") if p.parent.name == "raw"), None)
        if root is None:
            raise DatasetError(f"{zip_path} has no raw/edge.csv.gz: not the ogbn-arxiv archive. {how_to_fix}")
        try:
            read_arxiv(root)  # validates every file before the folder appears
        except DatasetError as error:
            raise DatasetError(f"{error} {how_to_fix}") from None
        root.rename(folder)
    return folder


def _read_csv(path, dtype, columns=None):
    try:
        with gzip.open(path, "rt") as text:
            values = np.loadtxt(text, delimiter=",", dtype=dtype, ndmin=2 if columns else 1)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"cannot read {path}: {error}") from None
    if columns is not None and values.shape[1] != columns:
        raise DatasetError(f"{path} has {values.shape[1]} columns, expected {columns}")
    return values


def read_ogb_splits(folder):
    """{split: node ids} from an OGB node-property folder's split/time/*.csv.gz (ogbn-arxiv's and ogbn-papers100M's)."""
    return {name: _read_csv(Path(folder) / path, np.int64).reshape(-1) for name, path in SPLIT_FILES.items()}


def read_arxiv(folder):
    """The arrays of an extracted ogbn-arxiv folder, checked against each other:
    (edges [E, 2], features [N, 128], labels [N], {split: node ids})."""
    folder = Path(folder)
    missing = [name for name in (*RAW_FILES, *SPLIT_FILES.values()) if not (folder / name).is_file()]
    if missing:
        raise DatasetError(f"{folder} is missing {', '.join(missing)}")
    num_nodes = int(_read_csv(folder / "raw/num-node-list.csv.gz", np.int64)[0])
    num_edges = int(_read_csv(folder / "raw/num-edge-list.csv.gz", np.int64)[0])
    edges = _read_csv(folder / "raw/edge.csv.gz", np.int64, columns=2)
    features = _read_csv(folder / "raw/node-feat.csv.gz", np.float32, columns=NUM_FEATURES)
    labels = _read_csv(folder / "raw/node-label.csv.gz", np.int64).reshape(-1)
    splits = read_ogb_splits(folder)
    problems = []
    if len(edges) != num_edges:
        problems.append(f"{len(edges)} edges, num-edge-list says {num_edges}")
    if len(features) != num_nodes or len(labels) != num_nodes:
        problems.append(f"{len(features)} feature rows and {len(labels)} labels for {num_nodes} nodes")
    if len(edges) and (edges.min() < 0 or edges.max() >= num_nodes):
        problems.append("edge endpoints outside 0..num_nodes-1")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        problems.append(f"labels outside 0..{NUM_CLASSES - 1}")
    for name, ids in splits.items():
        if len(ids) and (ids.min() < 0 or ids.max() >= num_nodes):
            problems.append(f"{name} split ids outside 0..num_nodes-1")
    if problems:
        raise DatasetError(f"{folder} is inconsistent: {'; '.join(problems)} (a partial or damaged copy?)")
    return edges, features, labels, splits


def load_arxiv(data_dir=None, download=True):
    """ogbn-arxiv as a GraphData: undirected, one self loop per node, OGB's time split."""
    folder = ensure_arxiv(data_dir, download)
    edges, features, labels, splits = read_arxiv(folder)
    edge_index = build_edge_index(edges[:, 0], edges[:, 1], len(labels))
    return GraphData(name="ogbn-arxiv", node_features=torch.from_numpy(np.ascontiguousarray(features)),
                     labels=torch.from_numpy(labels), edge_index=edge_index,
                     num_classes=NUM_CLASSES, train_indices=torch.from_numpy(splits["train"]),
                     val_indices=torch.from_numpy(splits["val"]), test_indices=torch.from_numpy(splits["test"]))


def write_arxiv_format_zip(zip_path, num_nodes=60, num_edges=200, seed=0):
    """A small archive in exactly the ogbn-arxiv layout (tests, and trying the loader offline)."""
    rng = np.random.default_rng(seed)
    files = {
        "raw/edge.csv.gz": "\n".join(f"{s},{t}" for s, t in rng.integers(0, num_nodes, size=(num_edges, 2))),
        "raw/node-feat.csv.gz": "\n".join(",".join(f"{v:.6f}" for v in row)
                                          for row in rng.standard_normal((num_nodes, NUM_FEATURES))),
        "raw/node-label.csv.gz": "\n".join(str(v) for v in rng.integers(0, NUM_CLASSES, size=num_nodes)),
        "raw/num-node-list.csv.gz": str(num_nodes),
        "raw/num-edge-list.csv.gz": str(num_edges),
    }
    order = rng.permutation(num_nodes)
    cut = [int(0.6 * num_nodes), int(0.8 * num_nodes)]
    for (name, path), ids in zip(SPLIT_FILES.items(), np.split(order, cut)):
        files[path] = "\n".join(str(v) for v in sorted(ids))
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path, text in files.items():
            archive.writestr(f"arxiv/{path}", gzip.compress((text + "\n").encode()))
        archive.writestr("arxiv/RELEASE_v1.txt", "generated in the ogbn-arxiv layout\n")
    return zip_path
