"""A trained model used as the README says: loaded in evaluation mode, and its predictions written as CSV for
every node of the data it trained on (Planetoid, one's own .npz graph, PPI)."""

import csv
import os

import torch
from helpers import write_own_graph

import playground
import training_script_cora
import training_script_ppi
from utils import paths
from utils.datasets.planetoid import CORA_CLASS_NAMES
from utils.datasets.ppi_synthetic import write_synthetic_ppi
from utils.plumbing.files import write_json
from utils.runs.checkpoints import model_from_checkpoint
from utils.training.metrics import accuracy

QUIET = ["--console_log_freq", "0", "--checkpoint_freq", "0"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_loaded_model_is_in_evaluation_mode_and_scores_as_trained(cora):
    model, checkpoint = model_from_checkpoint(paths.PRETRAINED_CORA)
    assert not model.training and not any(layer.training for layer in model.layers)
    with torch.no_grad():
        logits = model(cora.node_features, cora.edge_index)
    test = cora.test_indices
    assert accuracy(logits[test], cora.labels[test]) == checkpoint["training_state"]["test_acc"]
    assert round(checkpoint["training_state"]["test_acc"], 3) == 0.834


def test_predict_on_cora_writes_every_node_and_says_where(cora, cora_data_dir, tmp_path, capsys):
    output = tmp_path / "cora.csv"
    playground.main(["predict", "--model_name", str(paths.PRETRAINED_CORA), "--data_dir", str(cora_data_dir),
                     "--output", str(output)])
    said = capsys.readouterr().out
    assert f"(cora, 2708 nodes) to {output}" in said
    assert "the paper's early stopping keeps the last epoch" in said and "mean top-class probability is 0." in said
    rows = read_csv(output)
    assert len(rows) == cora.num_nodes and list(rows[0])[:6] == ["node", "split", "label", "predicted_class",
                                                           "predicted_name", "p_0"]
    assert abs(sum(float(rows[0][f"p_{c}"]) for c in range(7)) - 1) < 1e-4
    test = [row for row in rows if row["split"] == "test"]
    assert [int(row["node"]) for row in test] == sorted(cora.test_indices.tolist())
    assert [sum(row["split"] == name for row in rows) for name in ("train", "val", "")] == [140, 500, 1068]
    assert all(row["predicted_name"] == CORA_CLASS_NAMES[int(row["predicted_class"])] for row in rows)
    correct = sum(row["predicted_class"] == row["label"] for row in test)
    assert round(correct / len(test), 3) == 0.834


def test_predict_on_an_npz_graph_of_ones_own_includes_its_unlabelled_nodes(tmp_path, capsys):
    graph = write_own_graph(tmp_path / "my_graph.npz")
    training_script_cora.main(["--dataset_name", str(graph), "--split", "random", "--train_per_class", "5",
                               "--val_per_class", "5", "--num_of_epochs", "3", "--run_name", "mine", *QUIET])
    output = tmp_path / "out" / "mine.csv"
    playground.main(["predict", "--model_name", "mine", "--output", str(output)])
    rows = read_csv(output)
    assert len(rows) == 90 and rows[0]["label"] == "" and rows[2]["label"] == "2"
    # the run's random split, drawn again: 5 + 5 labelled nodes per class, the other labelled ones tested
    assert [sum(row["split"] == name for row in rows) for name in ("train", "val")] == [15, 15]
    assert all(row["label"] != "" for row in rows if row["split"]) and rows[0]["split"] == ""
    assert rows[0]["predicted_class"] in {"0", "1", "2"} and "p_2" in rows[0]
    assert rows[0]["predicted_name"] == f"class {rows[0]['predicted_class']}"  # the file's own class_names


def test_predict_on_ppi_gives_each_labels_probability(tmp_path):
    write_synthetic_ppi(tmp_path / "ppi" / "ppi", graphs_per_split=(2, 1, 1), nodes_per_graph=(20, 30), seed=1)
    training_script_ppi.main(["--data_dir", str(tmp_path / "ppi"), "--num_of_epochs", "1", "--hidden_features", "8",
                              "--run_name", "ppi_run", "--no_progress_bar", *QUIET])
    output = tmp_path / "ppi.csv"
    playground.main(["predict", "--model_name", "ppi_run", "--output", str(output)])
    rows = read_csv(output)
    assert {row["split"] for row in rows} == {"train", "valid", "test"}
    assert list(rows[0])[:5] == ["split", "graph", "node", "predicted_labels", "p_label_0"] and "p_label_120" in rows[0]


def test_saved_files_take_the_umasks_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        assert os.stat(write_json(tmp_path / "a.json", {})).st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert os.stat(write_json(tmp_path / "b.json", {})).st_mode & 0o777 == 0o600
    finally:
        os.umask(previous)
