"""ogbn-papers100M's own files, streamed into a graph on disk: tested on small folders written in exactly OGB's layout
(the real files are 57 GB), in small chunks so that every pass crosses chunk boundaries."""

import numpy as np
import pytest
import torch

from utils.datasets import ogbn_papers100m
from utils.datasets.convert import main as convert
from utils.datasets.disk_graph import open_disk_graph
from utils.datasets.download import DatasetError
from utils.datasets.ogbn_papers100m import NpyInZip, convert_papers100m, write_papers100m_format


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(ogbn_papers100m, "EDGE_CHUNK", 37)
    monkeypatch.setattr(ogbn_papers100m, "ROW_CHUNK", 7)


@pytest.mark.parametrize("compressed", [True, False])
def test_the_converted_graph_is_the_undirected_citation_graph(tmp_path, compressed):
    edge_index, node_feat, node_label, splits = write_papers100m_format(tmp_path / "papers100M-bin",
                                                                        compressed=compressed)
    convert_papers100m(tmp_path, tmp_path / "disk")  # DIR, with the extracted papers100M-bin/ inside
    disk = open_disk_graph(tmp_path / "disk")
    n = node_feat.shape[0]

    # The reference, in memory: both directions, no self loops, no duplicates, sources ascending per target.
    s, t = edge_index
    keep = s != t
    pairs = np.unique(np.concatenate([t[keep] * n + s[keep], s[keep] * n + t[keep]]))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs // n, minlength=n), out=indptr[1:])
    assert disk.num_nodes == n and disk.num_edges == pairs.size
    assert np.array_equal(disk.indptr, indptr) and np.array_equal(disk.indices, pairs % n)
    assert np.array_equal(disk.features, node_feat)
    assert np.array_equal(disk.labels, np.where(np.isnan(node_label[:, 0]), -1, node_label[:, 0]).astype(np.int64))
    assert (disk.labels == -1).any() and disk.num_classes == 172
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(disk, f"{name}_indices"), torch.from_numpy(splits[name]))
    assert not list(tmp_path.glob("*.partial-*"))  # nothing of the scratch file or the temporary folder is left


def test_an_array_inside_a_zip_is_read_in_chunks_in_storage_order(tmp_path):
    array = np.arange(30, dtype=np.int64).reshape(3, 10)
    np.savez_compressed(tmp_path / "a.npz", a=array, f=np.asfortranarray(array))
    stream = NpyInZip(tmp_path / "a.npz", "a")
    assert stream.shape == (3, 10) and not stream.fortran_order
    assert np.array_equal(np.concatenate(list(stream.flat_chunks(12, 15, 4))), array.reshape(-1)[12:27])
    fortran = NpyInZip(tmp_path / "a.npz", "f")
    assert fortran.fortran_order
    assert np.array_equal(np.concatenate(list(fortran.flat_chunks(0, 30, 8))), array.reshape(-1, order="F"))


def test_the_converter_takes_papers100m_by_name_and_says_what_is_missing(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        convert(["--dataset_name", "ogbn-papers100M", "--data_dir", str(tmp_path), "--output", str(tmp_path / "o")])
    assert "papers100M-bin.zip" in str(stopped.value) and "raw/data.npz" in str(stopped.value)
    write_papers100m_format(tmp_path / "papers100M-bin")
    convert(["--dataset_name", "ogbn-papers100M", "--data_dir", str(tmp_path), "--output", str(tmp_path / "o")])
    assert open_disk_graph(tmp_path / "o").name == "ogbn-papers100m"
    assert "python training_script_cora.py --dataset_name" in capsys.readouterr().out


def test_a_damaged_archive_says_so_and_leaves_nothing(tmp_path):
    write_papers100m_format(tmp_path)
    data = tmp_path / "raw" / "data.npz"
    data.write_bytes(data.read_bytes()[:len(data.read_bytes()) // 2])
    with pytest.raises(DatasetError, match="papers100M-bin.zip"):
        convert_papers100m(tmp_path, tmp_path / "disk")
    assert not (tmp_path / "disk").exists() and not list(tmp_path.glob("disk.partial-*"))
