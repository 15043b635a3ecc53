"""Graphs that live on disk: memory-mapped .npy arrays under a small JSON header, opened without reading them.

    python -m utils.datasets.convert --dataset_name cora --output /data/cora_disk         # any dataset the scripts take
    python -m utils.datasets.sbm_graph --output /data/sbm_10m --num_nodes 10000000 --disk  # generated, in chunks
    python training_script_cora.py --dataset_name /data/sbm_10m --fanouts 10 10             # sampled, from disk

One folder:
    header.json    {"format": FORMAT, "version": VERSION, "name", "num_nodes", "num_edges", "num_features",
                    "num_classes", "class_names", "self_loops": true, "arrays": {name: {"shape", "dtype",
                    "sha256"}}, "header_sha256": SHA-256 of the rest of the header (canonical JSON)}
    indptr.npy     int64 [N + 1]: node i's incoming edges are indices[indptr[i]:indptr[i + 1]] (CSR by target)
    indices.npy    int32 or int64 [E]: their sources, ascending within each node, no duplicates, no self loops
                   (every node has a self loop, not stored: self_loops true)
    features.npy   float32 [N, F]
    labels.npy     int64 [N] (class ids, -1: no label)
    train.npy, val.npy, test.npy   int64 node ids of the split (where the graph has one)

The edge_index contract (ids in range, no duplicates; every node's incoming self loop is implied) and the arrays'
SHA-256 are checked once, when the graph is written; opening it checks the header's own checksum, the format
version and every array's shape and dtype (numpy reads them from the .npy headers), and trusts the data: opening a
graph of any size takes milliseconds. A writer fills a temporary folder beside the target and renames it into place
when it is complete, so a graph that is there is whole; one interrupted, or stopped by a full disk, leaves nothing
that opens (and says so in one line).

The sampler and the layer-wise evaluation read only the rows they touch: a batch's features, the in-edges of the
nodes it samples, one chunk of targets' edges at a time (utils/training/sampling.py).
"""

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap

from utils.datasets.download import DatasetError, sha256_of
from utils.progress import progress_bar

FORMAT = "pytorch-gat disk graph"
VERSION = 1
HEADER = "header.json"
CHUNK_ROWS = 1 << 18  # rows written, checked and hashed at a time


def is_disk_graph(path):
    """Whether a --dataset_name names a graph on disk: a folder that holds one, or any path of a folder (with a '/';
    opening it says what is wrong when it holds none). Dataset names and .npz files are not."""
    text = str(path)
    return not text.endswith(".npz") and ("/" in text or os.sep in text or
                                          Path(text).expanduser().joinpath(HEADER).is_file())


def _header_checksum(header):
    body = {key: value for key, value in header.items() if key != "header_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class DiskGraph:
    """An opened disk graph: its arrays memory-mapped (read-only; nothing is read until used) and the small splits in
    memory. Reading `rows(nodes)`, `labels_of(nodes)` or a slice of `csr()` touches only those rows' pages."""

    def __init__(self, folder, header):
        self.folder, self.header = Path(folder), header
        self.name = header["name"]
        self.num_nodes, self.num_edges = header["num_nodes"], header["num_edges"]
        self.num_classes, self.class_names = header["num_classes"], header.get("class_names")
        arrays = {name: np.load(self.folder / f"{name}.npy", mmap_mode="r") for name in header["arrays"]}
        self.indptr, self.indices, self.features, self.labels = (arrays[n] for n in ("indptr", "indices", "features",
                                                                                     "labels"))
        self.train_indices, self.val_indices, self.test_indices = (
            torch.from_numpy(np.array(arrays[name])) if name in arrays else None for name in ("train", "val", "test"))

    def rows(self, nodes):
        """The features of `nodes` (a LongTensor) as a float32 tensor [len(nodes), F]: only their rows are read."""
        nodes = nodes.numpy() if isinstance(nodes, torch.Tensor) else np.asarray(nodes)
        order = np.argsort(nodes, kind="stable")  # read in file order, put back in the order asked
        rows = np.empty((len(nodes), self.features.shape[1]), dtype=np.float32)
        rows[order] = self.features[nodes[order]]
        return torch.from_numpy(rows)

    def labels_of(self, nodes):
        nodes = nodes.numpy() if isinstance(nodes, torch.Tensor) else np.asarray(nodes)
        return torch.from_numpy(np.asarray(self.labels[nodes], dtype=np.int64))

    def csr(self):
        """(indptr, indices) as tensors over the memory maps: indexing them reads only what it touches."""
        return _tensor(self.indptr), _tensor(self.indices)

    @property
    def num_features(self):
        return self.features.shape[1]


def _tensor(array):
    """A torch tensor over a read-only memory map, without copying it (torch warns that it is not writable; it is
    only read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def open_disk_graph(folder):
    """Open a disk graph: header, format, checksum of the header, every array's shape and dtype; the data trusted."""
    folder = Path(folder).expanduser()
    try:
        header = json.loads((folder / HEADER).read_text())
    except FileNotFoundError:
        raise DatasetError(f"{folder} is not a disk graph: it has no {HEADER} (write one with python -m "
                           f"utils.datasets.convert)") from None
    except (OSError, ValueError) as error:
        raise DatasetError(f"{folder / HEADER} cannot be read ({error}); write the graph again") from None
    if header.get("format") != FORMAT or header.get("header_sha256") != _header_checksum(header):
        raise DatasetError(f"{folder / HEADER} is not the header of a disk graph of this project, or was changed "
                           f"after the graph was written (its checksum does not match); write the graph again")
    if header.get("version") != VERSION:
        raise DatasetError(f"{folder} is a disk graph of format version {header.get('version')}; this code reads "
                           f"version {VERSION}: write it again with python -m utils.datasets.convert")
    for name, spec in header["arrays"].items():
        path = folder / f"{name}.npy"
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise DatasetError(f"{path} is missing or not a .npy file ({error}); the graph is incomplete: write it "
                               f"again") from None
        if list(array.shape) != spec["shape"] or str(array.dtype) != spec["dtype"]:
            raise DatasetError(f"{path} holds {array.dtype} {list(array.shape)}, the header says {spec['dtype']} "
                               f"{spec['shape']}: the graph was changed after it was written; write it again")
    return DiskGraph(folder, header)


class DiskGraphWriter:
    """Writes a disk graph chunk by chunk into a temporary folder beside `folder`, then renames it into place.

        with DiskGraphWriter(folder, name, num_nodes, num_edges, num_features, num_classes) as writer:
            writer.write_nodes(first, features, labels)      # rows first:first + len(labels), in any chunks
            writer.write_edges(first_node, indptr_part, sources_part)   # targets in order, their sources sorted
            writer.write_split("train", node_ids)
        # complete: checked, hashed, renamed; an exception (a full disk, Ctrl-C) leaves no graph behind
    """

    def __init__(self, folder, name, num_nodes, num_edges, num_features, num_classes, class_names=None):
        self.folder = Path(folder).expanduser()
        _refuse_existing(self.folder)
        self.partial = self.folder.with_name(f"{self.folder.name}.partial-{os.getpid()}")
        self.header = dict(format=FORMAT, version=VERSION, name=name, num_nodes=int(num_nodes),
                           num_edges=int(num_edges), num_features=int(num_features), num_classes=int(num_classes),
                           class_names=class_names, self_loops=True, arrays={})
        index_dtype = np.int32 if num_nodes < 2 ** 31 else np.int64
        self.specs = {"indptr": ((num_nodes + 1,), np.int64), "indices": ((num_edges,), index_dtype),
                      "features": ((num_nodes, num_features), np.float32), "labels": ((num_nodes,), np.int64)}
        self.arrays, self.splits = {}, {}
        self._next_edge, self._next_target = 0, 0

    def __enter__(self):
        try:
            self.partial.mkdir(parents=True)
            for name, (shape, dtype) in self.specs.items():
                self.arrays[name] = self.new_array(name, dtype, shape)
            self.arrays["indptr"][0] = 0
        except OSError as error:
            self._discard()
            raise DatasetError(_disk_error(error, self.folder)) from None
        return self

    def new_array(self, name, dtype, shape):
        """A memory-mapped .npy in the folder being written, its blocks reserved now: a disk too small fails here,
        with an error that says so, not later as a crash (SIGBUS) in the middle of writing through the map."""
        path = self.partial / f"{name}.npy"
        array = open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        try:
            with open(path, "r+b") as f:
                os.posix_fallocate(f.fileno(), 0, path.stat().st_size)
        except OSError as error:
            self._discard()
            raise DatasetError(_disk_error(error, self.folder)) from None
        return array

    def write_nodes(self, first, features, labels):
        self._guarded(lambda: (self.arrays["features"].__setitem__(slice(first, first + len(labels)), features),
                               self.arrays["labels"].__setitem__(slice(first, first + len(labels)), labels)))

    def write_edges(self, first_node, counts, sources):
        """The in-edges of nodes first_node, first_node + 1, ...: counts[k] sources each, in `sources` (ascending
        within each node). Nodes must come in order, each once."""
        if first_node != self._next_target:
            raise ValueError(f"nodes must be written in order: expected node {self._next_target}, got {first_node}")
        counts = np.asarray(counts, dtype=np.int64)
        end = self._next_edge + len(sources)
        indptr = self._next_edge + np.cumsum(counts)

        def write():
            self.arrays["indptr"][first_node + 1:first_node + 1 + len(counts)] = indptr
            self.arrays["indices"][self._next_edge:end] = sources
        self._guarded(write)
        self._next_edge, self._next_target = end, first_node + len(counts)

    def set_num_edges(self, num_edges):
        """The number of edges written, where only an upper bound was known when the writer was made."""
        if num_edges > self.specs["indices"][0][0]:
            raise ValueError(f"{num_edges} edges, more than the {self.specs['indices'][0][0]} allocated")
        self.header["num_edges"] = int(num_edges)

    def write_split(self, name, nodes):
        self.splits[name] = np.asarray(nodes, dtype=np.int64)

    def _guarded(self, write):
        try:
            write()
        except OSError as error:
            self._discard()
            raise DatasetError(_disk_error(error, self.folder)) from None

    def __exit__(self, kind, error, traceback):
        if kind is not None:
            self._discard()
            return False
        try:
            self._finish()
        except BaseException:
            self._discard()
            raise
        return False

    def _finish(self):
        n, e = self.header["num_nodes"], self.header["num_edges"]
        if self._next_target != n or self._next_edge != e:
            raise DatasetError(f"the writer got the edges of {self._next_target} of {n} nodes and {self._next_edge} "
                               f"of {e} edges: nothing was written")
        try:
            allocated = self.specs["indices"][0][0]
            if e < allocated:  # (fewer edges than allocated: the indices copied, in chunks, into a file of their size)
                exact = self.new_array("indices.exact", self.specs["indices"][1], (e,))
                for start in range(0, e, CHUNK_ROWS * 16):
                    end = min(start + CHUNK_ROWS * 16, e)
                    exact[start:end] = self.arrays["indices"][start:end]
                exact.flush()
                self.arrays["indices"] = exact
                os.replace(self.partial / "indices.exact.npy", self.partial / "indices.npy")
            for name, nodes in self.splits.items():
                np.save(self.partial / f"{name}.npy", nodes)
            self._check()
            for name in [*self.specs, *self.splits]:
                array = self.arrays.get(name)
                if array is not None:
                    array.flush()
                path = self.partial / f"{name}.npy"
                stored = np.load(path, mmap_mode="r")
                self.header["arrays"][name] = dict(shape=list(stored.shape), dtype=str(stored.dtype),
                                                   sha256=sha256_of(path))
            self.header["header_sha256"] = _header_checksum(self.header)
            (self.partial / HEADER).write_text(json.dumps(self.header, indent=1) + "\n")
            for path in self.partial.iterdir():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
            self.arrays.clear()
            os.rename(self.partial, self.folder)
        except OSError as error:
            raise DatasetError(_disk_error(error, self.folder)) from None

    def _check(self):
        """The edge_index contract, in chunks of targets: sources in range, ascending (so no duplicates) and no self
        loop within each node's in-edges."""
        indptr, indices, n = self.arrays["indptr"], self.arrays["indices"], self.header["num_nodes"]
        for first in progress_bar(range(0, n, CHUNK_ROWS), desc="checking edges", unit="chunk"):
            last = min(first + CHUNK_ROWS, n)
            counts = np.diff(indptr[first:last + 1])
            if np.any(counts < 0):
                raise DatasetError("the in-edge counts went down: write the nodes' edges in order")
            start, end = int(indptr[first]), int(indptr[last])
            sources = np.asarray(indices[start:end], dtype=np.int64)
            if sources.size == 0:
                continue
            if sources.min() < 0 or sources.max() >= n:
                raise DatasetError(f"an edge's source is outside 0..{n - 1} (targets {first}-{last - 1})")
            targets = np.repeat(np.arange(first, last), counts)
            same_target = targets[1:] == targets[:-1]
            if np.any(same_target & (sources[1:] <= sources[:-1])):
                raise DatasetError(f"the sources of a node's in-edges must ascend, without duplicates (targets "
                                   f"{first}-{last - 1})")
            if np.any(sources == targets):
                raise DatasetError("a self loop was given: every node's self loop is implied, leave them out")

    def _discard(self):
        self.arrays.clear()
        shutil.rmtree(self.partial, ignore_errors=True)


def _refuse_existing(folder):
    if folder.exists():
        raise DatasetError(f"{folder} exists already; choose another --output, or delete it first")


def _disk_error(error, folder):
    free = shutil.disk_usage(folder.parent if folder.parent.exists() else Path.cwd()).free
    reason = "the disk is full" if getattr(error, "errno", None) == 28 else (error.strerror or str(error))
    free = f"{free / 2 ** 30:.1f} GiB" if free >= 2 ** 30 else f"{free / 2 ** 20:.1f} MiB"
    return (f"could not write the graph to {folder}: {reason} ({free} free); nothing was left behind: make room or "
            f"choose another --output")


def write_disk_graph(data, folder):
    """A GraphData (any dataset the scripts train on, in memory) as a disk graph. Returns the folder."""
    _refuse_existing(Path(folder).expanduser())
    edge_index = data.edge_index
    keep = edge_index[0] != edge_index[1]
    source, target = edge_index[0][keep], edge_index[1][keep]
    order = np.lexsort((source.numpy(), target.numpy()))
    source, target = source.numpy()[order], target.numpy()[order]
    counts = np.bincount(target, minlength=data.num_nodes)
    features = data.node_features.to_dense() if data.node_features.layout != torch.strided else data.node_features
    with DiskGraphWriter(folder, data.name, data.num_nodes, len(source), features.shape[1], data.num_classes,
                         data.class_names) as writer:
        for first in progress_bar(range(0, data.num_nodes, CHUNK_ROWS), desc="writing", unit="chunk"):
            last = min(first + CHUNK_ROWS, data.num_nodes)
            writer.write_nodes(first, features[first:last].numpy(), data.labels[first:last].numpy())
        writer.write_edges(0, counts, source)
        for name, nodes in (("train", data.train_indices), ("val", data.val_indices), ("test", data.test_indices)):
            if nodes is not None:
                writer.write_split(name, nodes.numpy())
    return Path(folder)
