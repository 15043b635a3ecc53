"""Random per-class splits (Shchur et al., 2018): exact counts, disjoint, everything eligible used, repeatable,
inside the largest component, unlabelled nodes left out, and a clear error for a class too small to split."""

import os

import numpy as np
import pytest
import torch

from utils.datasets.download import resolve_data_dir
from utils.datasets.graph import build_edge_index
from utils.datasets.npz_graph import load_npz_graph
from utils.datasets.splits import SplitError, largest_connected_component, random_split, split_description

BIG = np.arange(0, 400)          # one connected component: a ring plus random chords
SMALL = np.arange(400, 460)      # a second, smaller ring
ISOLATED = np.arange(460, 470)
NUM_NODES = 470


def ring(nodes):
    return nodes, np.roll(nodes, -1)


def synthetic_graph():
    """Three classes spread over the big component, class 3 only in the small one, every 17th node unlabelled."""
    rng = np.random.default_rng(123)
    chords = rng.choice(BIG, size=(2, 400))
    sources = np.concatenate([ring(BIG)[0], ring(SMALL)[0], chords[0]])
    targets = np.concatenate([ring(BIG)[1], ring(SMALL)[1], chords[1]])
    edge_index = build_edge_index(sources, targets, NUM_NODES)
    labels = np.concatenate([rng.integers(0, 3, len(BIG)), np.full(len(SMALL), 3), rng.integers(0, 3, 10)])
    labels[::17] = -1
    return torch.from_numpy(labels), edge_index


def eligible_by_construction(labels, largest_component=True):
    nodes = BIG if largest_component else np.arange(NUM_NODES)
    return set(nodes[labels.numpy()[nodes] >= 0].tolist())


def test_largest_connected_component_is_the_big_ring():
    _, edge_index = synthetic_graph()
    component = largest_connected_component(edge_index, NUM_NODES)
    assert component.dtype == torch.int64 and component.tolist() == BIG.tolist()


def test_split_counts_disjoint_and_complete():
    labels, edge_index = synthetic_graph()
    split = random_split(labels, edge_index, NUM_NODES, train_per_class=20, val_per_class=30, seed=0)
    for name, indices in split.items():
        assert indices.dtype == torch.int64 and indices.tolist() == sorted(indices.tolist()), name
    for name, per_class in (("train", 20), ("val", 30)):
        assert torch.bincount(labels[split[name]], minlength=3).tolist() == [per_class] * 3, name
    train, val, test = (set(split[name].tolist()) for name in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == eligible_by_construction(labels)  # inside the big ring, labelled only
    assert (labels[split["test"]] >= 0).all()
    assert 3 not in labels[split["test"]].tolist()  # class 3 lives outside the largest component: absent


def test_same_seed_same_split_other_seed_other_split():
    labels, edge_index = synthetic_graph()
    first, again = (random_split(labels, edge_index, NUM_NODES, seed=7) for _ in range(2))
    other = random_split(labels, edge_index, NUM_NODES, seed=8)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not torch.equal(first["train"], other["train"]) and not torch.equal(first["val"], other["val"])


def test_split_is_the_documented_draw():
    """Per class in id order: permute its eligible nodes with default_rng(seed), first 20 train, next 30 val.
    Reproduced here independently of the code under test; the draw depends on nothing platform specific."""
    labels, edge_index = synthetic_graph()
    split = random_split(labels, edge_index, NUM_NODES, seed=3)
    rng = np.random.default_rng(3)
    eligible = np.array(sorted(eligible_by_construction(labels)))
    expected_train, expected_val = [], []
    for class_id in range(3):
        permuted = rng.permutation(eligible[labels.numpy()[eligible] == class_id])
        expected_train += permuted[:20].tolist()
        expected_val += permuted[20:50].tolist()
    assert split["train"].tolist() == sorted(expected_train)
    assert split["val"].tolist() == sorted(expected_val)


def test_without_largest_component_every_labelled_node_is_eligible():
    labels, edge_index = synthetic_graph()
    split = random_split(labels, edge_index, NUM_NODES, largest_component=False)
    assert torch.bincount(labels[split["train"]]).tolist() == [20] * 4  # class 3 from the small ring too
    union = set(torch.cat(list(split.values())).tolist())
    assert union == eligible_by_construction(labels, largest_component=False)


def test_too_small_class_names_itself_and_what_to_change():
    labels, edge_index = synthetic_graph()
    labels = labels.clone()
    labels[BIG[1:11]] = 4  # ten nodes of a new class inside the big component (none a multiple of 17)
    with pytest.raises(SplitError) as error:
        random_split(labels, edge_index, NUM_NODES, train_per_class=20, val_per_class=30)
    message = str(error.value)
    assert isinstance(error.value, ValueError)
    assert "class 4 has only 10 eligible nodes" in message and "20 train + 30 val" in message
    assert "--train_per_class" in message and "--val_per_class" in message and "--no_largest_component" in message

    split = random_split(labels, edge_index, NUM_NODES, drop_small_classes=True)
    assert 4 not in torch.cat(list(split.values())).tolist()
    assert torch.bincount(labels[split["train"]], minlength=5).tolist() == [20, 20, 20, 0, 0]

    small = random_split(labels, edge_index, NUM_NODES, train_per_class=5, val_per_class=5)
    assert torch.bincount(labels[small["train"]], minlength=5).tolist() == [5, 5, 5, 0, 5]


def test_description_for_checkpoints():
    labels, edge_index = synthetic_graph()
    split = random_split(labels, edge_index, NUM_NODES, train_per_class=10, val_per_class=15, seed=4)
    description = split_description(split, seed=4, train_per_class=10, val_per_class=15)
    assert description == {"split": "random", "split_seed": 4, "train_per_class": 10, "val_per_class": 15,
                           "largest_component": True, "drop_small_classes": False, "num_train": 30,
                           "num_val": 45, "num_test": len(eligible_by_construction(labels)) - 75}


def test_multi_label_targets_are_refused():
    _, edge_index = synthetic_graph()
    with pytest.raises(SplitError, match="one integer class id per node"):
        random_split(torch.zeros(NUM_NODES, 3), edge_index, NUM_NODES)


def test_shchur_split_of_real_cora_npz():
    data_dir = resolve_data_dir()
    if not (data_dir / "npz" / "cora.npz").exists():
        message = f"real cora.npz not found under {data_dir}/npz; set GAT_DATA_DIR (CI uses ../shared/datasets)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    graph = load_npz_graph("cora", data_dir, download=False)
    split = random_split(graph.labels, graph.edge_index, graph.num_nodes)
    # The largest component has 2,485 nodes (Shchur et al., Table 1), all labelled: 7 x 20, 7 x 30, the rest.
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (140, 210, 2485 - 350)
