"""Random per-class splits, as in Shchur et al., "Pitfalls of Graph Neural Network Evaluation" (2018).

For graphs without a public split (utils.datasets.npz_graph), and to re-split those that have one: 20 nodes per class
to train, 30 per class to validate, every other eligible node to test, on the largest connected component.
Shchur et al. showed that one fixed split can rank models differently from the next, so report the mean
over several seeds.

The draw uses numpy's default Generator (PCG64), whose stream is specified and does not depend on the
platform: the same seed gives the same split on any machine.
"""

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components


class SplitError(ValueError):
    """The requested split cannot be drawn from this graph. The message says what to change."""


def largest_connected_component(edge_index, num_nodes):
    """Sorted node ids [K] of the largest connected component, edge direction ignored.

    Of components equally large, the one holding the lowest node id wins, so the answer is deterministic."""
    if isinstance(edge_index, torch.Tensor):
        edge_index = edge_index.cpu().numpy()
    sources, targets = np.asarray(edge_index, dtype=np.int64)
    adjacency = sp.coo_matrix((np.ones(len(sources), dtype=np.int8), (sources, targets)),
                              shape=(num_nodes, num_nodes))
    _, component_of_node = connected_components(adjacency, directed=False)
    largest = np.argmax(np.bincount(component_of_node))
    return torch.from_numpy(np.flatnonzero(component_of_node == largest).astype(np.int64))


def eligible_nodes(labels, edge_index, num_nodes, largest_component=True):
    """Nodes a split may use: labelled (label >= 0) and, with largest_component, in the largest component."""
    labels = _class_ids(labels)
    eligible = labels >= 0
    if largest_component:
        in_component = np.zeros(num_nodes, dtype=bool)
        in_component[largest_connected_component(edge_index, num_nodes).numpy()] = True
        eligible &= in_component
    return np.flatnonzero(eligible)


def random_split(labels, edge_index, num_nodes, train_per_class=20, val_per_class=30, seed=0,
                 largest_component=True, drop_small_classes=False):
    """Draw train/val/test node ids (sorted LongTensors) per class, as Shchur et al. did.

    For each class in class-id order, that class's eligible nodes (see eligible_nodes) are permuted by
    np.random.default_rng(seed); the first train_per_class go to train, the next val_per_class to val.
    Test is every other eligible node.

    A class with no eligible node (no labelled node, or none in the largest component) is simply absent.
    A class with some, but fewer than train_per_class + val_per_class, raises SplitError; with
    drop_small_classes its nodes are left out of all three sets instead (Shchur et al. removed such classes
    from Cora-Full; they stay in the graph here, unlabelled for the split, so message passing is unchanged).
    """
    labels = _class_ids(labels)
    if len(labels) != num_nodes:
        raise SplitError(f"there are {len(labels)} labels for {num_nodes} nodes")
    if train_per_class < 0 or val_per_class < 0:
        raise SplitError(f"train_per_class and val_per_class must be >= 0, got {train_per_class} and "
                         f"{val_per_class}")
    eligible = eligible_nodes(labels, edge_index, num_nodes, largest_component)
    needed = train_per_class + val_per_class
    rng = np.random.default_rng(seed)
    train, val, dropped = [], [], []
    for class_id in np.unique(labels[eligible]):
        members = eligible[labels[eligible] == class_id]
        if len(members) < needed:
            if drop_small_classes:
                dropped.append(members)
                continue
            where = "in the largest connected component" if largest_component else "labelled"
            raise SplitError(
                f"class {class_id} has only {len(members)} eligible nodes ({where}), but {train_per_class} train + "
                f"{val_per_class} val per class = {needed} were asked for. Use a smaller --train_per_class / "
                f"--val_per_class, or --no_largest_component to also draw from the other components, or "
                f"drop_small_classes=True to leave such classes out of the split.")
        members = rng.permutation(members)
        train.append(members[:train_per_class])
        val.append(members[train_per_class:needed])
    train, val = _sorted_ids(train), _sorted_ids(val)
    test = np.setdiff1d(eligible, np.concatenate([train, val, *dropped]))
    return {"train": torch.from_numpy(train), "val": torch.from_numpy(val), "test": torch.from_numpy(test)}


def split_description(split, seed, train_per_class=20, val_per_class=30, largest_component=True,
                      drop_small_classes=False):
    """What a checkpoint or results JSON records about a split drawn by random_split with these settings:
    enough to draw it again from the same graph, and its sizes to check that it was."""
    return {"split": "random", "split_seed": seed, "train_per_class": train_per_class,
            "val_per_class": val_per_class, "largest_component": largest_component,
            "drop_small_classes": drop_small_classes, "num_train": len(split["train"]),
            "num_val": len(split["val"]), "num_test": len(split["test"])}


def _class_ids(labels):
    labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise SplitError(f"random_split needs one integer class id per node (-1 = no label), got {labels.dtype} "
                         f"labels of shape {labels.shape}; multi-label graphs have no per-class split")
    return labels.astype(np.int64)


def _sorted_ids(parts):
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
