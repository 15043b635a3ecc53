"""PPI (protein-protein interaction): 24 graphs, inductive, 121 binary labels per node.

On-disk format (`ppi.zip`, extracted into DIR/ppi/), for each split in train / valid / test:
    <split>_graph.json     networkx node-link JSON of all the split's graphs (node ids 0..N_split-1)
    <split>_feats.npy      [N_split, 50] float node features
    <split>_labels.npy     [N_split, 121] 0/1 labels
    <split>_graph_id.npy   [N_split] the graph each node belongs to
The real dataset has 20 / 2 / 2 graphs and 44,906 / 6,514 / 5,524 nodes. No pickle anywhere:
numpy files are read with allow_pickle=False.

Data written by utils/datasets/ppi_synthetic.py has the same files plus GENERATED_MARKER (its generator's
settings); its graphs are named "ppi-generated_<split>_<id>" instead of "ppi_<split>_<id>", and runs on it are
named and recorded as ppi-generated (`dataset_name_of`).
"""

import json
from pathlib import Path

import numpy as np
import torch

from utils.datasets.download import DatasetError, download_file, extracted_zip, resolve_data_dir
from utils.datasets.graph import GraphData, build_edge_index, merge_graphs

PPI_URL = "https://data.dgl.ai/dataset/ppi.zip"
SPLITS = ("train", "valid", "test")
NUM_FEATURES = 50
NUM_LABELS = 121
GENERATED_MARKER = "generated.json"


def ppi_files(split):
    return [f"{split}_graph.json", f"{split}_feats.npy", f"{split}_labels.npy", f"{split}_graph_id.npy"]


def ensure_ppi(data_dir=None, download=True):
    """Return DIR/ppi, downloading and extracting ppi.zip first if it is not there.

    DIR may also be the ppi folder itself (one level too deep); a DIR whose subfolder holds ppi/ gets a
    "did you mean" instead of a download."""
    data_dir = resolve_data_dir(data_dir)
    folder = data_dir / "ppi"
    if folder.is_dir():
        return folder
    if (data_dir / "train_graph.json").exists():
        return data_dir
    zip_path = data_dir / "ppi.zip"
    if not zip_path.exists():
        if data_dir.is_dir():
            for candidate in sorted(data_dir.iterdir()):
                if (candidate / "ppi").is_dir() or (candidate / "ppi.zip").is_file():
                    raise DatasetError(f"PPI is not in {data_dir}, but {candidate} has it: did you mean "
                                       f"--data_dir {candidate}?")
        elsewhere = data_dir / "ppi-generated"
        offline = (f"Without network access, generated PPI-format data (not PPI: its runs are named ppi-generated) "
                   f"can stand in: python -m utils.datasets.ppi_synthetic --output {elsewhere / 'ppi'}, then train "
                   f"with --data_dir {elsewhere}.")
        if not download:
            raise DatasetError(f"PPI not found in {folder}. Download {PPI_URL} and unzip it there.\n{offline}")
        try:
            download_file(PPI_URL, zip_path)
        except DatasetError as error:
            raise DatasetError(f"{error}\n{offline}") from None
    extract_ppi_zip(zip_path, folder)
    return folder


def extract_ppi_zip(zip_path, folder):
    """Check the zip is whole, extract it to a temp folder, validate, then rename into place."""
    how_to_fix = f"Delete {zip_path} and run again to re-download it from {PPI_URL}."
    folder = Path(folder)
    with extracted_zip(zip_path, folder, how_to_fix) as tmp:
        # The files may sit at the archive's root or inside one folder (e.g. ppi/).
        root = tmp if (tmp / "train_graph.json").exists() else next(
            (p.parent for p in tmp.rglob("train_graph.json")), tmp)
        for split in SPLITS:
            _read_split(root, split)  # validates every file before the folder appears
        root.rename(folder)
    return folder


def _read_split(folder, split):
    """Read and validate one split's four files: (links [2, L], features, labels, graph_ids)."""
    names = ppi_files(split)
    paths = [Path(folder) / name for name in names]
    for path in paths:
        if not path.exists():
            raise DatasetError(f"{path} is missing; expected the PPI files {', '.join(names)} in {folder}")
    try:
        with open(paths[0]) as f:
            graph = json.load(f)
        links = graph.get("links", graph.get("edges"))
        node_ids = [node["id"] for node in graph["nodes"]]
        links = np.array([[link["source"], link["target"]] for link in links], dtype=np.int64).reshape(-1, 2).T
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{paths[0]} is not networkx node-link JSON with 'nodes' and 'links' ({error})") from None

    arrays = []
    for path in paths[1:]:
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except ValueError as error:
            raise DatasetError(f"{path} is not a plain numpy array file ({error})") from None
    features, labels, graph_ids = arrays
    num_nodes = len(node_ids)
    expectations = [
        (features, (num_nodes, NUM_FEATURES), np.floating, paths[1]),
        (labels, (num_nodes, NUM_LABELS), np.number, paths[2]),
        (graph_ids, (num_nodes,), np.integer, paths[3]),
    ]
    for array, shape, kind, path in expectations:
        if array.shape != shape or not np.issubdtype(array.dtype, kind):
            raise DatasetError(f"{path}: expected a {kind.__name__} array of shape {shape}, "
                               f"got {array.dtype} {array.shape}")
    if sorted(node_ids) != list(range(num_nodes)):
        raise DatasetError(f"{paths[0]}: node ids must be 0..{num_nodes - 1}")
    if not np.isin(labels, (0, 1)).all():
        raise DatasetError(f"{paths[2]}: labels must be 0 or 1")
    if links.size and (links.min() < 0 or links.max() >= num_nodes):
        raise DatasetError(f"{paths[0]}: a link points at a node that does not exist")
    return links, features.astype(np.float32), labels.astype(np.float32), graph_ids


def load_ppi(data_dir=None, download=True, standardize=True):
    """All three splits as {split: [GraphData, one per graph]}.

    With standardize=True (the paper's preprocessing) features are standardised with the mean and
    standard deviation of the training graphs' nodes only.
    """
    folder = ensure_ppi(data_dir, download)
    name = "ppi-generated" if (folder / GENERATED_MARKER).is_file() else "ppi"
    raw = {split: _read_split(folder, split) for split in SPLITS}
    if standardize:
        train_features = raw["train"][1]
        mean = train_features.mean(axis=0)
        std = train_features.std(axis=0)
        std[std == 0] = 1.0
        raw = {split: (links, (features - mean) / std, labels, graph_ids)
               for split, (links, features, labels, graph_ids) in raw.items()}
    return {split: _split_into_graphs(name, split, *raw[split]) for split in SPLITS}


def dataset_name_of(splits):
    """'ppi', or 'ppi-generated' for data written by utils/datasets/ppi_synthetic.py (from its graphs' names)."""
    return splits["train"][0].name.rsplit("_", 2)[0]


def _split_into_graphs(name, split, links, features, labels, graph_ids):
    graphs = []
    for graph_id in np.unique(graph_ids):
        nodes = np.flatnonzero(graph_ids == graph_id)
        local = np.full(len(graph_ids), -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        inside = (local[links[0]] >= 0) & (local[links[1]] >= 0)
        edge_index = build_edge_index(local[links[0][inside]], local[links[1][inside]], len(nodes))
        graphs.append(GraphData(name=f"{name}_{split}_{int(graph_id)}", node_features=torch.from_numpy(features[nodes]),
                                labels=torch.from_numpy(labels[nodes]), edge_index=edge_index,
                                num_classes=NUM_LABELS))
    return graphs


class GraphDataLoader:
    """Yields batches of `batch_size` whole graphs merged into one, reshuffled every epoch when
    `shuffle` (with `generator`, so a seed fixes the order). Every graph is in exactly one batch.

    With world_size > 1 (data-parallel training), every rank draws the same order and yields only its
    share of each batch (a contiguous slice, as even as possible), or None when a short last batch
    leaves it without a graph. `step_num_nodes` is then the node count of the whole batch, all ranks
    together: what the loss is normalised by.
    """

    def __init__(self, graphs, batch_size=1, shuffle=False, generator=None, rank=0, world_size=1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.graphs, self.batch_size, self.shuffle, self.generator = list(graphs), batch_size, shuffle, generator
        self.rank, self.world_size = rank, world_size
        self.step_num_nodes = None

    def __len__(self):
        return (len(self.graphs) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        order = torch.randperm(len(self.graphs), generator=self.generator).tolist() if self.shuffle \
            else range(len(self.graphs))
        order = list(order)
        for start in range(0, len(order), self.batch_size):
            batch = [self.graphs[i] for i in order[start:start + self.batch_size]]
            self.step_num_nodes = sum(graph.num_nodes for graph in batch)
            share = np.array_split(np.arange(len(batch)), self.world_size)[self.rank]
            yield merge_graphs([batch[i] for i in share]) if len(share) else None
