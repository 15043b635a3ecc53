"""Graphs on disk: written once and checked then, opened in milliseconds, sampled and evaluated by reading only the
rows they touch; a graph whose files exceed a memory limit trains to the end under it."""

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.disk_scaling import cgroup_available, evict_from_page_cache, run_under_memory_limit
from models import GAT, Graph
from utils.datasets import disk_graph
from utils.datasets.convert import main as convert
from utils.datasets.disk_graph import DiskGraphWriter, open_disk_graph, write_disk_graph
from utils.datasets.download import DatasetError
from utils.datasets.sbm_graph import write_sbm_disk_graph
from utils.paths import PROJECT_ROOT
from utils.training.sampling import InNeighbours, NeighbourSampler, layerwise_inference_on_disk


@pytest.fixture(scope="module")
def cora_on_disk(cora, tmp_path_factory):
    return write_disk_graph(cora, tmp_path_factory.mktemp("disk") / "cora")


def test_a_graph_written_to_disk_opens_with_the_same_arrays(cora, cora_on_disk):
    started = time.perf_counter()
    disk = open_disk_graph(cora_on_disk)
    assert time.perf_counter() - started < 1.0
    assert (disk.num_nodes, disk.num_edges, disk.num_classes) == (2708, 13264 - 2708, 7)
    assert disk.class_names == cora.class_names and isinstance(disk.features, np.memmap)
    assert torch.equal(disk.rows(torch.tensor([5, 3, 2000])), cora.node_features[[5, 3, 2000]])
    assert torch.equal(disk.labels_of(torch.tensor([7, 8])), cora.labels[[7, 8]])
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(disk, f"{name}_indices"), getattr(cora, f"{name}_indices"))
    # The CSR by target holds every edge but the self loops, sources ascending: the in-memory sampler's index.
    neighbours = InNeighbours(cora.edge_index, cora.num_nodes)
    indptr, indices = disk.csr()
    assert torch.equal(indptr, neighbours.offsets) and torch.equal(indices.long(), neighbours.sources)


def test_sampling_from_disk_draws_the_in_memory_batches(cora, cora_on_disk):
    disk = open_disk_graph(cora_on_disk)
    in_memory = NeighbourSampler(cora.edge_index, cora.num_nodes, [10, 10], seed=3)
    on_disk = NeighbourSampler(None, disk.num_nodes, [10, 10], seed=3, neighbours=InNeighbours.from_csr(*disk.csr()))
    for first in (0, 64):
        a, b = in_memory.sample(cora.train_indices[first:first + 64]), on_disk.sample(cora.train_indices[first:first + 64])
        assert torch.equal(a.nodes, b.nodes) and torch.equal(a.edge_index, b.edge_index)


@pytest.mark.parametrize("chunk_size", [700, 5000])
def test_layerwise_evaluation_on_disk_equals_the_full_pass(cora, cora_on_disk, chunk_size, monkeypatch):
    from utils.training import sampling
    monkeypatch.setattr(sampling, "LAYER_OUTPUT_IN_MEMORY_BYTES", 1000)  # (the layer outputs in memory-mapped files)
    torch.manual_seed(0)
    model = GAT(2, [8, 1], [1433, 8, 7], attention_type="gatv2").eval()
    with torch.no_grad():
        full = model(cora.node_features, Graph(cora.edge_index, cora.num_nodes))
    nodes = torch.tensor([0, 1358, 2707, 15])
    chunked = layerwise_inference_on_disk(model, open_disk_graph(cora_on_disk), chunk_size, nodes)
    torch.testing.assert_close(chunked, full[nodes], rtol=1e-5, atol=1e-6)


def test_what_is_wrong_with_a_disk_graph_is_one_line(cora_on_disk, tmp_path):
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(cora_on_disk), str(copy)], check=True)
    header = json.loads((copy / "header.json").read_text())
    for change, expected in ((lambda h: h.update(num_nodes=5), "was changed after the graph was written"),
                             (lambda h: h.update(format="other"), "not the header of a disk graph")):
        changed = dict(header)
        change(changed)
        (copy / "header.json").write_text(json.dumps(changed))
        with pytest.raises(DatasetError, match=expected) as refused:
            open_disk_graph(copy)
        assert "\n" not in str(refused.value)
    newer = dict(header, version=99)
    newer["header_sha256"] = disk_graph._header_checksum(newer)
    (copy / "header.json").write_text(json.dumps(newer))
    with pytest.raises(DatasetError, match="format version 99; this code reads version 1"):
        open_disk_graph(copy)
    (copy / "header.json").write_text(json.dumps(header))
    np.save(copy / "labels.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(DatasetError, match="the header says int64 \\[2708\\]"):
        open_disk_graph(copy)
    with pytest.raises(DatasetError, match="has no header.json"):
        open_disk_graph(tmp_path)
    with pytest.raises(DatasetError, match="exists already"):
        write_disk_graph(None, copy)


def test_an_interrupted_or_full_disk_write_leaves_no_graph(cora, tmp_path, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        with DiskGraphWriter(tmp_path / "stopped", "x", 10, 5, 3, 2) as writer:
            writer.write_nodes(0, np.zeros((10, 3), np.float32), np.zeros(10, np.int64))
            raise KeyboardInterrupt
    original = np.save

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(np, "save", full_disk)
    with pytest.raises(DatasetError) as refused:
        write_disk_graph(cora, tmp_path / "full")
    monkeypatch.setattr(np, "save", original)
    message = str(refused.value)
    assert "the disk is full" in message and "nothing was left behind" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no graph, no partial folder


def test_a_really_full_disk_is_found_before_anything_is_written(tmp_path):
    """On a 1 MiB tmpfs (mounting one needs root): the arrays' blocks are reserved when the writer starts, so a disk
    too small says so in one line, instead of a crash (SIGBUS) while writing through a memory map."""
    disk = tmp_path / "small_disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        stopped = subprocess.run([sys.executable, "-m", "utils.datasets.sbm_graph", "--output", str(disk / "g"),
                                  "--num_nodes", "20000", "--disk"], cwd=PROJECT_ROOT, capture_output=True, text=True)
        assert stopped.returncode == 1 and list(disk.iterdir()) == []
        assert stopped.stderr.count("\n") == 1 and "the disk is full" in stopped.stderr
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_the_converter_and_the_generator_write_graphs_that_open(cora_data_dir, tmp_path, capsys):
    convert(["--dataset_name", "cora", "--data_dir", str(cora_data_dir), "--output", str(tmp_path / "cora")])
    assert "--dataset_name " + str(tmp_path / "cora") in capsys.readouterr().out
    assert open_disk_graph(tmp_path / "cora").num_nodes == 2708
    write_sbm_disk_graph(tmp_path / "sbm", 5000, avg_degree=6, num_features=8, chunk_nodes=1200, log=lambda *_: None)
    sbm = open_disk_graph(tmp_path / "sbm")
    indptr, indices = sbm.csr()
    assert sbm.num_nodes == 5000 and 0 < sbm.num_edges <= 30000 and int(indptr[-1]) == sbm.num_edges
    assert len(sbm.train_indices) + len(sbm.val_indices) + len(sbm.test_indices) == 5000
    partial = open_disk_graph(write_sbm_disk_graph(tmp_path / "partly", 5000, split=(0.1, 0.1, 0.2),
                                                   log=lambda *_: None))
    assert 1500 < len(partial.train_indices) + len(partial.val_indices) + len(partial.test_indices) < 2500


@pytest.mark.slow
def test_sampled_training_from_disk_is_the_in_memory_training(cora, cora_on_disk):
    from utils.training.one_graph import train_one_graph
    settings = dict(fanouts=[10, 10], batch_size=64, num_of_epochs=3, console_log_freq=0, checkpoint_freq=0,
                    save_binary=False, last_checkpoint_seconds=None, seed=2)
    in_memory = train_one_graph(dict(settings), log=lambda *_: None, data=cora)
    on_disk = train_one_graph(dict(settings, dataset_name=str(cora_on_disk)), log=lambda *_: None)
    assert [h["train_loss"] for h in in_memory["history"]] == [h["train_loss"] for h in on_disk["history"]]
    assert on_disk["test_acc"] == pytest.approx(in_memory["test_acc"], abs=1e-6)


def test_a_disk_graph_trains_sampled_only_and_on_its_own_split(cora_on_disk, capsys):
    import training_script_cora
    for flags, expected in (([], "add --fanouts"), (["--fanouts", "5", "5", "--split", "random"],
                                                    "trains on the split written with it")):
        with pytest.raises(SystemExit) as exit_info:
            training_script_cora.main(["--dataset_name", str(cora_on_disk), *flags])
        assert expected in str(exit_info.value.code)


@pytest.mark.slow
def test_a_graph_larger_than_the_memory_limit_trains_and_evaluates_under_it(tmp_path):
    """Sampled training and chunked evaluation of a graph whose files exceed a hard memory limit (a cgroup v1
    memory controller, so that page cache is reclaimed instead of the process being killed) run to the end."""
    if not cgroup_available():
        message = "needs root and the cgroup v1 memory controller (/sys/fs/cgroup/memory)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    graph = write_sbm_disk_graph(tmp_path / "graph", 1_200_000, avg_degree=10, num_features=96,
                                 split=(0.002, 0.002, 0.01), log=lambda *_: None)
    graph_bytes = sum(path.stat().st_size for path in graph.iterdir())
    limit = 420 * 2 ** 20  # (torch, numpy and the model alone: about 250 MiB)
    assert graph_bytes > limit, graph_bytes
    # Pages the writer left in the page cache are charged to this process's cgroup, not the limited one: evicted,
    # the run reads every page itself, under its limit.
    still_cached = evict_from_page_cache(graph)
    assert still_cached < 0.05 * graph_bytes, f"{still_cached} of {graph_bytes} bytes stay cached (tmpfs?)"
    run, peak, oom_kills, charged = run_under_memory_limit(
        [sys.executable, "tests/isolated_script.py", tmp_path, "training_script_cora.py", "--dataset_name", graph,
         "--fanouts", "5", "5", "--batch_size", "512", "--num_of_epochs", "1", "--eval_chunk_size", "2000",
         "--no_save_binary", "--console_log_freq", "1", "--run_name", "bounded"],
        limit, timeout=900, cwd=PROJECT_ROOT, env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert "Test accuracy = " in run.stdout and peak <= limit and oom_kills == 0, (peak, oom_kills)
    assert charged > graph_bytes / 2, charged  # (what was read through the limit: most of the files)
