"""PPI: the loader on data in the exact on-disk format, batching, and inductive training that learns."""

import dataclasses
import io
import json
import shutil
import zipfile

import numpy as np
import pytest
import torch

import training_script_ppi
from utils.datasets import download as data_loading
from utils.datasets.download import DatasetError
from utils.datasets.graph import merge_graphs
from utils.datasets.ppi import GraphDataLoader, ensure_ppi, load_ppi
from utils.datasets.ppi_synthetic import write_synthetic_ppi
from utils.training.many_graphs import train_many_graphs

GRAPHS = (10, 2, 3)


@pytest.fixture(scope="session")
def ppi_data_dir(tmp_path_factory):
    """A small dataset in the real ppi.zip layout: DIR/ppi/<split>_{graph.json,feats,labels,graph_id}."""
    data_dir = tmp_path_factory.mktemp("ppi_data")
    write_synthetic_ppi(data_dir / "ppi", graphs_per_split=GRAPHS, nodes_per_graph=(50, 70), seed=0)
    return data_dir


@pytest.fixture(scope="session")
def ppi_splits(ppi_data_dir):
    return load_ppi(ppi_data_dir, download=False)


def test_generated_files_have_the_real_format(ppi_data_dir):
    folder = ppi_data_dir / "ppi"
    graph = json.loads((folder / "train_graph.json").read_text())
    assert set(graph) >= {"directed", "nodes", "links"} and graph["directed"] is False
    assert set(graph["links"][0]) == {"source", "target"}
    features, labels = np.load(folder / "train_feats.npy"), np.load(folder / "train_labels.npy")
    graph_ids = np.load(folder / "train_graph_id.npy")
    assert features.shape[1] == 50 and features.dtype == np.float32
    assert labels.shape == (features.shape[0], 121) and set(np.unique(labels)) == {0, 1}
    assert graph_ids.shape == (features.shape[0],) and len(np.unique(graph_ids)) == GRAPHS[0]


def test_loader_splits_graphs_and_standardises_with_training_statistics(ppi_splits, ppi_data_dir):
    assert [len(ppi_splits[s]) for s in ("train", "valid", "test")] == list(GRAPHS)
    train_features = torch.cat([g.node_features for g in ppi_splits["train"]])
    torch.testing.assert_close(train_features.mean(0), torch.zeros(50), atol=1e-5, rtol=0)
    torch.testing.assert_close(train_features.std(0, unbiased=False), torch.ones(50), atol=1e-4, rtol=0)

    raw = load_ppi(ppi_data_dir, download=False, standardize=False)
    raw_train = torch.cat([g.node_features for g in raw["train"]])
    mean, std = raw_train.mean(0), raw_train.std(0, unbiased=False)
    torch.testing.assert_close(ppi_splits["test"][0].node_features, (raw["test"][0].node_features - mean) / std,
                               atol=1e-4, rtol=0)
    for graph in ppi_splits["train"]:
        source, target = graph.edge_index
        assert int((source == target).sum()) == graph.num_nodes  # one self loop per node
        assert graph.edge_index.max() < graph.num_nodes and graph.labels.shape == (graph.num_nodes, 121)


def test_merged_batches_offset_node_ids(ppi_splits):
    graphs = ppi_splits["train"][:3]
    batch = merge_graphs(graphs)
    assert batch.num_nodes == sum(g.num_nodes for g in graphs)
    offset = graphs[0].num_nodes
    second = batch.edge_index[:, graphs[0].edge_index.shape[1]:][:, :graphs[1].edge_index.shape[1]]
    torch.testing.assert_close(second, graphs[1].edge_index + offset)


def test_loader_covers_every_graph_once_in_a_seeded_order(ppi_splits):
    graphs = ppi_splits["train"]

    def batches(seed):
        loader = GraphDataLoader(graphs, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(seed))
        return [batch.name for batch in loader]

    names = batches(0)
    assert len(names) == 3  # 10 graphs, batches of 4, 4 and 2
    assert sorted("+".join(names).split("+")) == sorted(g.name for g in graphs)
    assert batches(0) == names and batches(1) != names
    # Evaluation covers every test graph whatever the batch size.
    for batch_size in (1, 2, 5):
        loader = GraphDataLoader(ppi_splits["test"], batch_size)
        assert sum(b.num_nodes for b in loader) == sum(g.num_nodes for g in ppi_splits["test"])


def strip_edges(splits):
    """The no-edge baseline: every graph keeps only its self loops, so the GAT sees each node alone."""
    def alone(graph):
        loops = torch.arange(graph.num_nodes).repeat(2, 1)
        return dataclasses.replace(graph, edge_index=loops)
    return {split: [alone(g) for g in graphs] for split, graphs in splits.items()}


@pytest.mark.slow
def test_training_on_ppi_format_data_learns_from_the_edges(ppi_splits):
    config = dict(num_of_epochs=25, hidden_features=64, console_log_freq=0, checkpoint_freq=0, save_binary=False,
                  progress_bar=False, seed=0)
    with_edges = train_many_graphs(config, log=lambda *_: None, splits=ppi_splits)
    without_edges = train_many_graphs(config, log=lambda *_: None, splits=strip_edges(ppi_splits))
    assert with_edges["test_micro_f1"] > without_edges["test_micro_f1"] + 0.15, (with_edges, without_edges)
    assert with_edges["test_micro_f1"] > 0.7


@pytest.mark.slow
def test_script_end_to_end(ppi_data_dir, isolated_outputs, capsys):
    results_path = isolated_outputs / "ppi.json"
    training_script_ppi.main(["--data_dir", str(ppi_data_dir), "--num_of_epochs", "2", "--hidden_features", "8",
                              "--batch_size", "4", "--results_json", str(results_path), "--checkpoint_freq", "1"])
    results = json.loads(results_path.read_text())
    assert set(results) >= {"dataset", "layer_type", "seed", "test_micro_f1", "best_val_micro_f1", "best_val_loss",
                            "epochs", "train_seconds"}
    assert results["dataset"] == "ppi-generated" and results["epochs"] == 2 and 0 <= results["test_micro_f1"] <= 1
    assert len(list((isolated_outputs / "checkpoints").glob(f"{results['run_name']}/epoch_*.pth"))) == 2
    assert [p.name for p in (isolated_outputs / "binaries").glob("*.pth")] == [f"{results['run_name']}.pth"]
    assert results["run_name"].startswith("ppi-generated_gat_seed0_")
    assert "Test micro-F1 = " in capsys.readouterr().out


def test_cuda_out_of_memory_becomes_advice(ppi_data_dir, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr("models.gat.GAT.forward", out_of_memory)
    with pytest.raises(SystemExit) as exit_info:
        training_script_ppi.main(["--data_dir", str(ppi_data_dir), "--num_of_epochs", "1", "--no_save_binary"])
    assert "--batch_size 1" in str(exit_info.value.code) and "--hidden_features" in str(exit_info.value.code)


@pytest.mark.parametrize("flags", [["--batch_size", "0"], ["--hidden_features", "-3"], ["--layer_type", "dense"]])
def test_bad_flags_are_rejected(flags):
    with pytest.raises(SystemExit) as exit_info:
        training_script_ppi.get_parser().parse_args(flags)
    assert exit_info.value.code == 2


def copy_dataset(ppi_data_dir, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(ppi_data_dir, target)
    return target


@pytest.mark.parametrize("file_name, array, message", [
    ("train_feats.npy", np.zeros((3, 49), dtype=np.float32), "shape"),
    ("valid_labels.npy", None, "labels must be 0 or 1"),
    ("test_graph_id.npy", np.array([{"a": 1}], dtype=object), "not a plain numpy array"),
])
def test_bad_files_are_named_in_the_error(ppi_data_dir, tmp_path, file_name, array, message):
    data_dir = copy_dataset(ppi_data_dir, tmp_path)
    path = data_dir / "ppi" / file_name
    if array is None:
        array = np.load(path) * 2
    np.save(path, array, allow_pickle=True)
    with pytest.raises(DatasetError, match=message) as error:
        load_ppi(data_dir, download=False)
    assert file_name in str(error.value)


def zip_bytes(folder, prefix=""):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, prefix + path.name)
    return buffer.getvalue()


class FakeResponse(io.BytesIO):
    headers = {}


def test_download_extracts_atomically(ppi_data_dir, tmp_path, monkeypatch):
    payload = zip_bytes(ppi_data_dir / "ppi", prefix="ppi/")
    monkeypatch.setattr(data_loading.urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload))
    folder = ensure_ppi(tmp_path)
    assert folder == tmp_path / "ppi" and (folder / "train_graph.json").exists()
    assert [p.name for p in tmp_path.iterdir()] and not list(tmp_path.glob(".ppi-extract-*"))
    assert len(load_ppi(tmp_path, download=False)["train"]) == GRAPHS[0]


def test_corrupt_or_truncated_zip_leaves_nothing_behind(ppi_data_dir, tmp_path):
    payload = zip_bytes(ppi_data_dir / "ppi")
    (tmp_path / "ppi.zip").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(DatasetError, match="ppi.zip"):
        ensure_ppi(tmp_path)
    assert not (tmp_path / "ppi").exists() and not list(tmp_path.glob(".ppi-extract-*"))

    # A whole zip whose content is wrong: validated before the folder appears.
    broken = tmp_path / "broken"
    shutil.copytree(ppi_data_dir / "ppi", broken)
    (broken / "test_labels.npy").unlink()
    (tmp_path / "ppi.zip").write_bytes(zip_bytes(broken))
    with pytest.raises(DatasetError, match="test_labels.npy is missing"):
        ensure_ppi(tmp_path)
    assert not (tmp_path / "ppi").exists()


def test_ppi_data_dir_mistakes_get_a_useful_answer(ppi_data_dir, tmp_path, monkeypatch):
    # The ppi folder itself, one level too deep: understood.
    assert len(load_ppi(ppi_data_dir / "ppi", download=False)["train"]) == GRAPHS[0]
    # The folder above the data dir: "did you mean", no download attempt.
    data_dir = copy_dataset(ppi_data_dir, tmp_path)
    monkeypatch.setattr(data_loading.urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download expected"))
    with pytest.raises(DatasetError, match=f"did you mean --data_dir {data_dir}"):
        ensure_ppi(tmp_path)


def test_missing_ppi_says_how_to_generate_it_offline(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise data_loading.urllib.error.URLError("offline")
    monkeypatch.setattr(data_loading.urllib.request, "urlopen", refuse)
    (tmp_path / "empty").mkdir()
    for download in (True, False):
        with pytest.raises(DatasetError) as error:
            ensure_ppi(tmp_path / "empty", download=download)
        message = str(error.value)
        # Generated data goes beside the real PPI's folder, never into it, and is said to be generated.
        generated = tmp_path / "empty" / "ppi-generated"
        assert f"python -m utils.datasets.ppi_synthetic --output {generated / 'ppi'}" in message
        assert f"--data_dir {generated}." in message and "not PPI" in message
