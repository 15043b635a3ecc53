"""ogbn-papers100M (OGB): 111,059,956 papers, 1,615,685,872 citations, 128 float features per paper (57 GB), 172
arXiv subject classes on the 1.5 million arXiv papers, OGB's time split. Far larger than memory, so it is not loaded:
it is converted, streaming, into a graph on disk (utils/datasets/disk_graph.py), and trained on from there.

    # download http://snap.stanford.edu/ogb/data/nodeproppred/papers100M-bin.zip and unzip it into DIR, then
    python -m utils.datasets.convert --dataset_name ogbn-papers100M --data_dir DIR --output /data/papers100m_disk

The extracted folder (papers100M-bin/), as OGB publishes it:
    raw/data.npz         a zip of .npy files: edge_index int64 [2, E] (citing paper, cited paper), node_feat
                         [N, 128], node_year [N, 1], num_nodes_list [1], num_edges_list [1]
    raw/node-label.npz   node_label [N, 1] float: the class id, NaN for papers without one
    split/time/{train,valid,test}.csv.gz   node ids, one per line

numpy cannot memory-map an .npy inside a zip (and OGB's is compressed), so each array is read as a stream, a chunk of
rows at a time. The citations are made undirected, as ogbn-arxiv's are; duplicates and self loops are dropped (every
node's self loop is implied on disk). Three passes over the edges: count every node's in-edges, place each edge's
source in its target's slot of a scratch file, then sort and de-duplicate each chunk of targets into the graph. Memory:
about 24 bytes per node (the counts and the slots' next free places: ~2.7 GB for papers100M) plus one chunk; disk:
the graph plus a scratch file of 4 bytes per directed edge, deleted at the end.
"""

import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from utils.datasets.disk_graph import DiskGraphWriter
from utils.datasets.download import DatasetError
from utils.datasets.ogbn_arxiv import SPLIT_FILES, read_ogb_splits
from utils.progress import progress_bar

NUM_CLASSES = 172
URL = "http://snap.stanford.edu/ogb/data/nodeproppred/papers100M-bin.zip"
EDGE_CHUNK = 1 << 22  # edges read, counted or placed at a time
ROW_CHUNK = 1 << 16   # feature rows read at a time


class NpyInZip:
    """One array of an .npz (a zip of .npy files), read as a stream: its shape and dtype from the .npy header, its
    elements in chunks. Works for stored and for compressed (np.savez_compressed) members."""

    def __init__(self, archive, key):
        self.archive, self.member = archive, f"{key}.npy"
        try:
            with zipfile.ZipFile(archive) as z, z.open(self.member) as f:
                version = npy_format.read_magic(f)
                read_header = npy_format.read_array_header_1_0 if version == (1, 0) else \
                    npy_format.read_array_header_2_0
                self.shape, self.fortran_order, self.dtype = read_header(f)
                self.data_offset = f.tell()
        except KeyError:
            raise DatasetError(f"{archive} has no array {key!r}: not OGB's ogbn-papers100M file") from None
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise DatasetError(f"cannot read {self.member} in {archive} ({error}): download and unzip "
                               f"{URL} again") from None
        if self.dtype.hasobject:
            raise DatasetError(f"{self.member} in {archive} holds Python objects; it is not OGB's file")

    def flat_chunks(self, start, count, chunk):
        """Elements start..start+count-1 of the array in its storage order, `chunk` at a time."""
        size = self.dtype.itemsize
        with zipfile.ZipFile(self.archive) as z, z.open(self.member) as f:
            f.seek(self.data_offset + start * size)
            done = 0
            while done < count:
                n = min(chunk, count - done)
                data = f.read(n * size)
                if len(data) != n * size:
                    raise DatasetError(f"{self.member} in {self.archive} ends early: the download is incomplete; "
                                       f"download {URL} again")
                yield np.frombuffer(data, dtype=self.dtype)
                done += n


def _edge_chunks(edge_index):
    """(sources, targets) of the citations, a chunk at a time, in the file's order."""
    if len(edge_index.shape) != 2 or edge_index.shape[0] != 2:
        raise DatasetError(f"edge_index has shape {edge_index.shape}, expected [2, E]")
    num_edges = edge_index.shape[1]
    if edge_index.fortran_order:  # pairs stored together
        for pairs in edge_index.flat_chunks(0, 2 * num_edges, 2 * EDGE_CHUNK):
            pairs = pairs.reshape(-1, 2)
            yield pairs[:, 0], pairs[:, 1]
    else:  # every source, then every target: two streams side by side
        yield from zip(edge_index.flat_chunks(0, num_edges, EDGE_CHUNK),
                       edge_index.flat_chunks(num_edges, num_edges, EDGE_CHUNK))


def _undirected_chunks(edge_index, num_nodes, desc):
    """(sources, targets) of both directions of every citation but self loops, ids checked, with a progress bar."""
    bar = progress_bar(total=edge_index.shape[1], desc=desc, unit="edge")
    for sources, targets in _edge_chunks(edge_index):
        bar.update(len(sources))
        sources, targets = sources.astype(np.int64), targets.astype(np.int64)
        if sources.size and (min(sources.min(), targets.min()) < 0 or max(sources.max(), targets.max()) >= num_nodes):
            raise DatasetError(f"a citation names a paper outside 0..{num_nodes - 1}: not OGB's file, or damaged")
        keep = sources != targets
        sources, targets = sources[keep], targets[keep]
        yield np.concatenate([sources, targets]), np.concatenate([targets, sources])
    bar.close()


def find_papers100m(data_dir):
    """The extracted papers100M-bin folder: DIR itself or DIR/papers100M-bin."""
    data_dir = Path(data_dir).expanduser()
    for folder in (data_dir, data_dir / "papers100M-bin"):
        if (folder / "raw" / "data.npz").is_file():
            return folder
    raise DatasetError(f"no ogbn-papers100M files in {data_dir} (expected raw/data.npz, raw/node-label.npz and "
                       f"split/time/ there or in {data_dir / 'papers100M-bin'}): download {URL} (57 GB) and unzip it "
                       f"into {data_dir}")


def convert_papers100m(data_dir, output):
    """Write ogbn-papers100M's files (found by find_papers100m) as a disk graph in `output`. Returns the folder."""
    folder = find_papers100m(data_dir)
    data = folder / "raw" / "data.npz"
    labels_file = folder / "raw" / "node-label.npz"
    missing = [str(p) for p in (labels_file, *(folder / s for s in SPLIT_FILES.values())) if not p.is_file()]
    if missing:
        raise DatasetError(f"{', '.join(missing)} missing: unzip {URL} again")
    num_nodes_list = np.concatenate(list(NpyInZip(data, "num_nodes_list").flat_chunks(0, 1, 1)))
    edge_index = NpyInZip(data, "edge_index")
    features = NpyInZip(data, "node_feat")
    labels = NpyInZip(labels_file, "node_label")
    n = int(num_nodes_list[0])
    if features.shape[0] != n or len(features.shape) != 2 or labels.shape[0] != n:
        raise DatasetError(f"{data} has {n} nodes but node_feat {features.shape} and node_label {labels.shape}: "
                           f"the files do not belong together; unzip {URL} again")
    splits = read_ogb_splits(folder)
    for name, ids in splits.items():
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise DatasetError(f"the {name} split names a paper outside 0..{n - 1}")

    # Pass 1: every node's number of in-edges (both directions, self loops dropped; duplicates still counted).
    counts = np.zeros(n, dtype=np.int64)
    for sources, targets in _undirected_chunks(edge_index, n, "counting edges"):
        counts += np.bincount(targets, minlength=n)
    slots = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=slots[1:])
    del counts
    upper_bound = int(slots[-1])

    with DiskGraphWriter(output, "ogbn-papers100m", n, upper_bound, features.shape[1], NUM_CLASSES) as writer:
        # Pass 2: each edge's source into its target's slot of a scratch file (in the writer's folder: an interrupted
        # conversion leaves nothing).
        scratch = writer.new_array("scratch", writer.specs["indices"][1], (max(upper_bound, 1),))
        next_free = slots[:-1].copy()
        for sources, targets in _undirected_chunks(edge_index, n, "placing edges"):
            order = np.argsort(targets, kind="stable")
            sources, targets = sources[order], targets[order]
            run_start = np.flatnonzero(np.r_[True, targets[1:] != targets[:-1]])
            run_length = np.diff(np.r_[run_start, targets.size])
            rank = np.arange(targets.size) - np.repeat(run_start, run_length)  # place within the chunk's run
            scratch[next_free[targets] + rank] = sources
            next_free[targets[run_start]] += run_length
        del next_free
        # Pass 3: a chunk of targets at a time, their sources sorted and de-duplicated into the graph.
        written, first = 0, 0
        bar = progress_bar(total=n, desc="sorting edges", unit="node")
        while first < n:
            last = max(first + 1, min(n, int(np.searchsorted(slots, slots[first] + EDGE_CHUNK, side="right")) - 1))
            part = np.asarray(scratch[slots[first]:slots[last]], dtype=np.int64)
            local = np.repeat(np.arange(last - first, dtype=np.int64), np.diff(slots[first:last + 1]))
            pairs = np.unique(local * n + part)
            writer.write_edges(first, np.bincount(pairs // n, minlength=last - first), pairs % n)
            written += pairs.size
            bar.update(last - first)
            first = last
        bar.close()
        del scratch
        (writer.partial / "scratch.npy").unlink()
        writer.set_num_edges(written)
        # Features and labels, streamed row chunk by row chunk.
        num_features = features.shape[1]
        rows = zip(features.flat_chunks(0, n * num_features, ROW_CHUNK * num_features),
                   labels.flat_chunks(0, n, ROW_CHUNK))
        first = 0
        for block, label in progress_bar(rows, total=-(-n // ROW_CHUNK), desc="writing features", unit="chunk"):
            block = block.reshape(-1, num_features)
            if features.fortran_order:
                raise DatasetError("node_feat is stored column by column; OGB's is row by row: unzip it again")
            label = np.where(np.isnan(label), -1, label).astype(np.int64) if label.dtype.kind == "f" else \
                label.astype(np.int64)
            if label.size and (label.min() < -1 or label.max() >= NUM_CLASSES):
                raise DatasetError(f"node_label holds a class outside 0..{NUM_CLASSES - 1}: not OGB's file")
            writer.write_nodes(first, block.astype(np.float32), label)
            first += len(label)
        for name, ids in splits.items():
            writer.write_split(name, ids)
    return Path(output)


def write_papers100m_format(folder, num_nodes=50, num_edges=300, num_features=8, seed=0, compressed=True):
    """A small ogbn-papers100M folder in exactly OGB's layout (for tests: the real one is 57 GB). Returns the
    arrays it wrote: (edge_index [2, E], node_feat [N, F], node_label [N, 1] with NaN, {split: ids})."""
    import gzip
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    (folder / "raw").mkdir(parents=True)
    (folder / "split" / "time").mkdir(parents=True)
    edge_index = rng.integers(0, num_nodes, size=(2, num_edges), dtype=np.int64)
    node_feat = rng.standard_normal((num_nodes, num_features)).astype(np.float32)
    node_label = rng.integers(0, NUM_CLASSES, size=(num_nodes, 1)).astype(np.float32)
    node_label[rng.random(num_nodes) < 0.5] = np.nan
    save = np.savez_compressed if compressed else np.savez
    save(folder / "raw" / "data.npz", edge_index=edge_index, node_feat=node_feat,
         node_year=rng.integers(1900, 2021, size=(num_nodes, 1)), num_nodes_list=np.array([num_nodes]),
         num_edges_list=np.array([num_edges]))
    save(folder / "raw" / "node-label.npz", node_label=node_label)
    labelled = np.flatnonzero(~np.isnan(node_label[:, 0]))
    parts = np.split(rng.permutation(labelled), [len(labelled) * 3 // 5, len(labelled) * 4 // 5])
    splits = dict(zip(SPLIT_FILES, parts))
    for name, ids in splits.items():
        with gzip.open(folder / SPLIT_FILES[name], "wt") as f:
            f.write("".join(f"{i}\n" for i in ids))
    return edge_index, node_feat, node_label, splits
