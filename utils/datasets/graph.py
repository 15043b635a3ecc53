"""Graph helpers that every dataset uses: the GraphData container, edge_index construction,
batching disjoint graphs, and feature preprocessing. No dataset-specific code lives here."""

import dataclasses

import numpy as np
import scipy.sparse as sp
import torch

from models.sparse_features import csr_features


@dataclasses.dataclass
class GraphData:
    """One graph (or a batch of disjoint graphs) ready for a GAT.

    node_features [N, F] float, labels [N] (class ids, -1 = no label) or [N, C] (multi-label 0/1),
    edge_index [2, E] long (row 0 source, row 1 target; symmetric, deduplicated, self loops added),
    train/val/test indices (transductive datasets only), class_names (where the data names its classes: Cora's
    and Citeseer's topics, an .npz file's class_names).
    """
    name: str
    node_features: torch.Tensor
    labels: torch.Tensor
    edge_index: torch.Tensor
    num_classes: int
    train_indices: torch.Tensor = None
    val_indices: torch.Tensor = None
    test_indices: torch.Tensor = None
    class_names: list = None

    @property
    def num_nodes(self):
        return self.node_features.shape[0]

    def to(self, device):
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[key] = value.to(device)
        return GraphData(**moved)


def build_edge_index(sources, targets, num_nodes):
    """Symmetrise, drop self loops and duplicates, then add exactly one self loop per node.

    Edges come out sorted by (target, source), which keeps each neighbourhood contiguous.
    """
    sources, targets = np.asarray(sources, dtype=np.int64), np.asarray(targets, dtype=np.int64)
    both_sources = np.concatenate([sources, targets])
    both_targets = np.concatenate([targets, sources])
    keep = both_sources != both_targets
    loops = np.arange(num_nodes, dtype=np.int64)
    all_sources = np.concatenate([both_sources[keep], loops])
    all_targets = np.concatenate([both_targets[keep], loops])
    keys = np.unique(all_targets * num_nodes + all_sources)
    edge_index = np.stack([keys % num_nodes, keys // num_nodes])
    return torch.from_numpy(edge_index)


def edge_index_from_adjacency_lists(adjacency_lists, num_nodes):
    """{node: [neighbours]} -> [2, E] edge_index: both directions, no duplicates, self loops added."""
    sources, targets = [], []
    for node, neighbours in adjacency_lists.items():
        sources.extend([node] * len(neighbours))
        targets.extend(neighbours)
    sources, targets = np.asarray(sources, dtype=np.int64), np.asarray(targets, dtype=np.int64)
    num_nodes = max(num_nodes, int(sources.max(initial=-1)) + 1, int(targets.max(initial=-1)) + 1)
    return build_edge_index(sources, targets, num_nodes)


def merge_graphs(graphs):
    """Batch several graphs into one disjoint graph: node ids of each graph shifted past the last."""
    offsets = np.cumsum([0] + [g.num_nodes for g in graphs[:-1]])
    return GraphData(
        name="+".join(g.name for g in graphs),
        node_features=torch.cat([g.node_features for g in graphs]),
        labels=torch.cat([g.labels for g in graphs]),
        edge_index=torch.cat([g.edge_index + int(offset) for g, offset in zip(graphs, offsets)], dim=1),
        num_classes=graphs[0].num_classes,
    )


def row_normalise(features):
    """Scale each row to sum to 1 (all-zero rows stay zero). Dense numpy or any scipy sparse format."""
    row_sums = np.asarray(features.sum(axis=1)).flatten()
    inverse = np.divide(1.0, row_sums, out=np.zeros_like(row_sums, dtype=np.float64), where=row_sums != 0)
    if isinstance(features, np.ndarray):
        return features * inverse[:, None]
    return sp.diags(inverse) @ features


def sparsify_if_mostly_zero(features, max_density=0.5):
    """Return features as a sparse CSR tensor when at most `max_density` of them are non-zero.

    The layers accept either layout and compute the same thing; on a mostly-zero input (Cora's features are
    1.3 % non-zero) the sparse projection is far cheaper than the dense one. The CSR tensor carries the pattern
    its projection's backward pass needs, built once here (models/sparse_features.py).
    """
    if features.layout != torch.strided or features.numel() == 0:
        return features
    if torch.count_nonzero(features).item() > max_density * features.numel():
        return features
    return csr_features(features)
