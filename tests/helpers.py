"""What several test modules build or check: random graphs in the layers' input contract, a small .npz graph of
one's own, PNG figures."""

import torch
from matplotlib.image import imread

from utils.datasets.graph import build_edge_index


def random_graph(num_nodes=40, num_edges=160, num_features=12, seed=0, undirected=True, hub=None, sink=False,
                 shuffle=False):
    """(features [N, F], edge_index [2, E]): num_edges random edges j -> i, then one self loop per node and no
    duplicate edges, as the loaders return a graph (undirected: each edge both ways, columns sorted by target).

    hub: a node that every other node among the first ones sends an edge to (a high in-degree); sink: the last node
    sends no edge but its self loop; shuffle: the columns in a random order instead of sorted by target."""
    generator = torch.Generator().manual_seed(seed)
    sources = torch.randint(0, num_nodes - 1 if sink else num_nodes, (num_edges,), generator=generator)
    targets = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    if hub is not None:
        sources[:hub + 1], targets[:hub + 1] = torch.arange(hub + 1), hub
    if undirected:
        edge_index = build_edge_index(sources.numpy(), targets.numpy(), num_nodes)
    else:
        loops = torch.arange(num_nodes)
        pairs = torch.unique(torch.cat([targets, loops]) * num_nodes + torch.cat([sources, loops]))
        edge_index = torch.stack([pairs % num_nodes, pairs // num_nodes])
    if shuffle:
        edge_index = edge_index[:, torch.randperm(edge_index.shape[1], generator=generator)]
    features = torch.randn(num_nodes, num_features, generator=generator)
    return features, edge_index


def write_own_graph(path, num_nodes=90, num_classes=3, unlabelled=(0, 1), seed=0):
    """An .npz graph of one's own whose classes the edges tell (most edges inside a class, features noisy class
    indicators), with the `unlabelled` nodes' labels -1. Returns the path."""
    import numpy as np
    import scipy.sparse as sp

    from utils.datasets.npz_graph import save_npz_graph
    rng = np.random.default_rng(seed)
    labels = np.arange(num_nodes) % num_classes
    sources = rng.integers(0, num_nodes, 4 * num_nodes)
    same_class = rng.random(sources.size) < 0.9
    other = rng.integers(0, num_nodes, sources.size)
    targets = np.where(same_class, (other // num_classes) * num_classes + labels[sources], other) % num_nodes
    adjacency = sp.csr_matrix((np.ones(sources.size), (sources, targets)), shape=(num_nodes, num_nodes))
    features = (np.eye(num_classes)[labels] + rng.normal(0, 1.5, (num_nodes, num_classes))).astype(np.float32)
    labels = labels.copy()
    labels[list(unlabelled)] = -1
    return save_npz_graph(path, adjacency, features, labels, class_names=[f"class {c}" for c in range(num_classes)])


def assert_png(path, min_side=300):
    """A real figure: big enough, and not a blank canvas."""
    image = imread(path)
    assert image.shape[0] >= min_side and image.shape[1] >= min_side, image.shape
    assert image[..., :3].std() > 0.01
