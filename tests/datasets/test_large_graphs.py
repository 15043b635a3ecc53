"""Graphs beyond the citation datasets: the generated SBM graph and the ogbn-arxiv loader (on a small archive
written in exactly the OGB layout; the real one cannot be downloaded here)."""

import gzip
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

import training_script_cora
from utils.datasets.download import DatasetError
from utils.datasets.ogbn_arxiv import NUM_CLASSES, ensure_arxiv, load_arxiv, write_arxiv_format_zip
from utils.datasets.sbm_graph import load_sbm_graph, write_sbm_graph
from utils.paths import PROJECT_ROOT


def _is_symmetric_with_self_loops(edge_index, num_nodes):
    edges = set(map(tuple, edge_index.t().tolist()))
    return all((t, s) in edges for s, t in edges) and all((i, i) in edges for i in range(num_nodes))


def test_sbm_graph_has_its_planted_structure(tmp_path):
    write_sbm_graph(tmp_path / "g", num_nodes=3000, avg_degree=8, num_classes=5, num_features=16, homophily=0.8, seed=1)
    graph = load_sbm_graph(tmp_path / "g")
    assert graph.node_features.shape == (3000, 16) and graph.num_classes == 5
    assert _is_symmetric_with_self_loops(graph.edge_index, 3000)
    source, target = graph.edge_index[:, graph.edge_index[0] != graph.edge_index[1]]
    same_class = (graph.labels[source] == graph.labels[target]).float().mean().item()
    assert same_class == pytest.approx(0.8 + 0.2 / 5, abs=0.03)               # homophily as asked
    splits = torch.cat([graph.train_indices, graph.val_indices, graph.test_indices])
    assert torch.equal(torch.sort(splits).values, torch.arange(3000))           # every node in one split
    # The class means are in the features: each class's mean feature vector differs from the others.
    means = torch.stack([graph.node_features[graph.labels == c].mean(0) for c in range(5)])
    assert torch.cdist(means, means).fill_diagonal_(float("inf")).min() > 0.5
    # Same seed, same files.
    write_sbm_graph(tmp_path / "again", num_nodes=3000, avg_degree=8, num_classes=5, num_features=16, homophily=0.8,
                    seed=1)
    for name in ("edges.npy", "features.npy", "labels.npy", "split.npy"):
        assert (tmp_path / "g" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_sbm_loader_explains_what_is_missing(tmp_path):
    with pytest.raises(DatasetError, match="python -m utils.datasets.sbm_graph --output"):
        load_sbm_graph(tmp_path)
    write_sbm_graph(tmp_path / "g", num_nodes=100, seed=0)
    np.save(tmp_path / "g" / "labels.npy", np.zeros(7, dtype=np.int64))
    with pytest.raises(DatasetError, match="do not match meta.json"):
        load_sbm_graph(tmp_path / "g")


@pytest.mark.slow
def test_training_script_on_a_generated_graph(tmp_path, isolated_outputs, capsys):
    write_sbm_graph(tmp_path / "g", num_nodes=2000, seed=0)
    training_script_cora.main(["--dataset_name", "sbm", "--data_dir", str(tmp_path / "g"), "--fanouts", "5", "5",
                               "--batch_size", "100", "--num_of_epochs", "2", "--no_save_binary",
                               "--eval_chunk_size", "500"])
    assert "Test accuracy = " in capsys.readouterr().out


def test_arxiv_loader_reads_the_ogb_layout(tmp_path):
    write_arxiv_format_zip(tmp_path / "arxiv.zip", num_nodes=60, num_edges=200)
    graph = load_arxiv(tmp_path, download=False)
    assert (tmp_path / "ogbn_arxiv" / "raw" / "edge.csv.gz").is_file()       # extracted into DIR/ogbn_arxiv
    assert graph.node_features.shape == (60, 128) and graph.num_classes == NUM_CLASSES
    assert _is_symmetric_with_self_loops(graph.edge_index, 60)
    with zipfile.ZipFile(tmp_path / "arxiv.zip") as archive:
        with archive.open("arxiv/raw/edge.csv.gz") as edges_file:
            edges = np.loadtxt(gzip.open(edges_file), delimiter=",", dtype=np.int64)
    present = set(map(tuple, graph.edge_index.t().tolist()))
    assert all((s, t) in present and (t, s) in present for s, t in edges)  # every citation, both directions
    sizes = [len(graph.train_indices), len(graph.val_indices), len(graph.test_indices)]
    assert sizes == [36, 12, 12] and len(set(torch.cat([graph.train_indices, graph.val_indices,
                                                        graph.test_indices]).tolist())) == 60
    assert load_arxiv(tmp_path / "ogbn_arxiv", download=False).num_nodes == 60   # one level too deep works too


def test_arxiv_loader_refuses_damaged_archives(tmp_path):
    with pytest.raises(DatasetError, match="ogbn-arxiv not found"):
        ensure_arxiv(tmp_path, download=False)
    (tmp_path / "arxiv.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="not a zip archive"):
        ensure_arxiv(tmp_path, download=False)
    # A whole zip whose files disagree (one edge missing): refused, and no half-made folder is left.
    write_arxiv_format_zip(tmp_path / "good.zip")
    with zipfile.ZipFile(tmp_path / "good.zip") as good, zipfile.ZipFile(tmp_path / "arxiv.zip", "w") as bad:
        for item in good.infolist():
            data = good.read(item)
            if item.filename.endswith("num-edge-list.csv.gz"):
                data = gzip.compress(b"201\n")
            bad.writestr(item, data)
    with pytest.raises(DatasetError, match="inconsistent: 200 edges, num-edge-list says 201"):
        ensure_arxiv(tmp_path, download=False)
    assert not (tmp_path / "ogbn_arxiv").exists() and not list(tmp_path.glob(".ogbn_arxiv-extract-*"))


@pytest.mark.slow
def test_training_script_on_arxiv_format_data(tmp_path, isolated_outputs, capsys):
    write_arxiv_format_zip(tmp_path / "arxiv.zip", num_nodes=80, num_edges=300)
    training_script_cora.main(["--dataset_name", "ogbn-arxiv", "--data_dir", str(tmp_path), "--fanouts", "4", "4", "4",
                               "--batch_size", "16", "--num_of_epochs", "2", "--no_save_binary"])
    output = capsys.readouterr().out
    assert "on ogbn-arxiv: 80 nodes" in output and "Test accuracy = " in output
    with pytest.raises(SystemExit) as exit_info:  # the interpreter prints this message to stderr
        training_script_cora.main(["--dataset_name", "ogbn-arxiv", "--data_dir", str(tmp_path), "--fanouts", "4", "4"])
    assert "one number per GAT layer (3 for ogbn-arxiv)" in str(exit_info.value.code)


@pytest.mark.parametrize("command", [["-m", "utils.sbm_graph", "--help"], ["-m", "utils.ppi_synthetic", "--help"],
                                     ["-m", "utils.datasets.sbm_graph", "--help"], ["-m", "utils.runs", "--help"]])
def test_data_tools_answer_by_their_old_and_new_module_names(command):
    """python -m utils.sbm_graph / utils.ppi_synthetic, as typed before the datasets had a package, still run."""
    finished = subprocess.run([sys.executable, *command], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith("usage: python -m ") or finished.stdout.startswith("usage:"), finished.stdout
