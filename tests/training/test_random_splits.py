"""The one-graph trainer on random splits and on npz graphs: --split, a path as --dataset_name, and resume."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import training_script_cora
from utils.datasets.npz_graph import save_npz_graph
from utils.datasets.splits import random_split
from utils.training.one_graph import train_one_graph

QUIET = dict(console_log_freq=0, checkpoint_freq=0, save_binary=False)


def no_log(*args):
    pass


def two_community_graph(path, nodes_per_class=60, seed=0):
    """A small .npz graph in the gnn-benchmark layout: two classes, mostly within-class edges, informative
    binary features; and one isolated pair of nodes outside the largest component."""
    rng = np.random.default_rng(seed)
    num_nodes = 2 * nodes_per_class + 2
    labels = np.repeat([0, 1], nodes_per_class).tolist() + [0, 1]
    sources, targets = [], []
    for node in range(2 * nodes_per_class):
        same = rng.choice(np.flatnonzero(np.array(labels[:2 * nodes_per_class]) == labels[node]), 3)
        sources += [node] * 3
        targets += same.tolist()
    sources += [0, 5, 10, 15, 20]  # a few edges across the classes: one component of 2 * nodes_per_class
    targets += [nodes_per_class + i for i in (0, 5, 10, 15, 20)]
    sources.append(num_nodes - 2), targets.append(num_nodes - 1)
    adjacency = sp.csr_matrix((np.ones(len(sources)), (sources, targets)), shape=(num_nodes, num_nodes))
    features = (rng.random((num_nodes, 16)) < 0.2).astype(np.float32)
    features[np.array(labels) == 1, :4] = 1.0
    return save_npz_graph(path, adjacency, sp.csr_matrix(features), np.array(labels), class_names=["a", "b"])


@pytest.mark.slow
def test_random_split_run_uses_the_drawn_split_and_records_it(cora, isolated_outputs):
    result = train_one_graph(dict(QUIET, num_of_epochs=3, split="random", split_seed=7), log=no_log, data=cora)
    drawn = random_split(cora.labels, cora.edge_index, cora.num_nodes, 20, 30, seed=7)
    assert result["split"] == {"split": "random", "split_seed": 7, "train_per_class": 20, "val_per_class": 30,
                               "largest_component": True, "drop_small_classes": False,
                               "num_train": len(drawn["train"]), "num_val": len(drawn["val"]),
                               "num_test": len(drawn["test"])}
    assert (len(drawn["train"]), len(drawn["val"])) == (140, 210)
    public = train_one_graph(dict(QUIET, num_of_epochs=3), log=no_log, data=cora)
    assert public["split"] == {"split": "public"} and public["test_acc"] != result["test_acc"]


@pytest.mark.slow
def test_a_random_split_run_resumes_on_the_same_split_exactly(cora, isolated_outputs):
    config = dict(QUIET, split="random", split_seed=2, train_per_class=10, val_per_class=20, seed=1)
    reference = train_one_graph(dict(config, num_of_epochs=8, run_name="whole"), log=no_log, data=cora)
    train_one_graph(dict(config, num_of_epochs=4, run_name="half"), log=no_log, data=cora)
    resumed = train_one_graph(dict(QUIET, resume="half", num_of_epochs=8), log=no_log, data=cora)
    assert resumed["split"] == reference["split"] and resumed["split"]["num_train"] == 70
    assert resumed["history"] == reference["history"] and resumed["test_acc"] == reference["test_acc"]
    with pytest.raises(Exception, match="--split_seed 3 \\(checkpoint: 2\\)"):
        train_one_graph(dict(QUIET, resume="half", num_of_epochs=9, split_seed=3), log=no_log, data=cora)


@pytest.mark.slow
def test_a_path_as_dataset_name_trains_on_that_graph_with_a_random_split(tmp_path, isolated_outputs, capsys):
    path = two_community_graph(tmp_path / "my_graph.npz")
    results_path = tmp_path / "r.json"
    training_script_cora.main(["--dataset_name", str(path), "--num_of_epochs", "30", "--console_log_freq", "0",
                               "--train_per_class", "10", "--val_per_class", "10", "--results_json", str(results_path)])
    out = capsys.readouterr().out
    assert "on my_graph: 122 nodes" in out and "20/20/80 train/val/test (random split 0" in out, out
    results = json.loads(results_path.read_text())
    assert results["split"]["num_test"] == 80 and results["dataset"] == "my_graph"  # the isolated pair is left out
    assert results["run_name"].startswith("my-graph_gat_seed0_") and 0 <= results["test_acc"] <= 1


def test_split_errors_are_one_line(cora_data_dir, tmp_path, isolated_outputs):
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(["--data_dir", str(cora_data_dir), "--split", "random", "--train_per_class", "200"])
    message = str(exit_info.value.code)
    assert message.startswith("error: cora: class ") and "--train_per_class" in message and "\n" not in message
    path = two_community_graph(tmp_path / "g.npz")
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(["--dataset_name", str(path), "--split", "public"])
    assert str(exit_info.value.code) == "error: g has no public split; train it with --split random"
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(["--dataset_name", str(tmp_path / "missing.npz")])
    assert "missing.npz does not exist" in str(exit_info.value.code)


@pytest.mark.slow
def test_cora_npz_by_path_trains_like_planetoid_cora(cora_data_dir, isolated_outputs):
    path = cora_data_dir / "npz" / "cora.npz"
    if not path.is_file():
        pytest.skip(f"no {path}")
    result = train_one_graph(dict(QUIET, dataset_name=str(path), num_of_epochs=2, data_dir=str(cora_data_dir)),
                            log=no_log)
    # The same graph as Planetoid Cora (tests/datasets/test_npz_graph.py), split as Shchur et al. did: 20 + 30 per class
    # of the 2,485-node largest component.
    assert result["split"]["num_train"] == 140 and result["split"]["num_test"] == 2485 - 140 - 210
    assert torch.is_tensor(result["model"].layers[0].linear_proj.weight)
