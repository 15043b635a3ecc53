"""Generate large graphs with a planted, learnable signal (a stochastic block model), and load them.

    python -m utils.datasets.sbm_graph --output data/sbm_1m --num_nodes 1000000
    python training_script_cora.py --dataset_name sbm --data_dir data/sbm_1m --fanouts 10 10
    python -m utils.datasets.sbm_graph --output data/sbm_100m --num_nodes 100000000 --disk   # a graph on disk:
    python training_script_cora.py --dataset_name data/sbm_100m --fanouts 10 10             # never read whole

The classes are the blocks. Each node draws its class uniformly; each undirected edge starts at a uniform
random node and ends, with probability `homophily`, at a node of the same class, otherwise at any node.
Features are the class's mean vector (scaled by `signal`) plus unit Gaussian noise: one node's own
features say little about its class, the average over its neighbours (mostly of its class) says more,
so a model that uses the graph must beat one that does not (docs/larger_graphs.md has the measured gap).

On-disk format, one folder (all arrays in numpy's .npy format, read without pickle):
    meta.json      {"format": "sbm-graph-1", "num_nodes", "num_undirected_edges", "num_features",
                    "num_classes", "split": [train, val, test fractions], and the generator settings}
    edges.npy      int64 [E, 2] undirected edges (each once, either direction; a rare duplicate or self
                   loop is possible and removed by the loader)
    features.npy   float32 [N, F]
    labels.npy     int64 [N] class ids
    split.npy      int8 [N]: 0 train, 1 validation, 2 test
Everything is generated and written in chunks (arrays are memory-mapped .npy files), so 10^7 nodes and
edges fit in a few GB of memory.

--disk writes a graph on disk instead (utils/datasets/disk_graph.py, `write_sbm_disk_graph`), generated target by
target in chunks of nodes, so that any size fits in the memory of one chunk: node i's class is i % num_classes, and
each node draws avg_degree in-neighbours, each of its own class with probability `homophily` (duplicates and self
loops dropped); the split puts each node in train, validation or test with the given probabilities (in none with
the rest, if they sum to less than 1).
"""

import json
from pathlib import Path

import numpy as np
import torch

from utils.datasets.disk_graph import DiskGraphWriter
from utils.datasets.download import DatasetError
from utils.datasets.graph import GraphData, build_edge_index
from utils.plumbing.arguments import OnOffFlag, new_parser, non_negative_int, positive_float, positive_int
from utils.progress import progress_bar

FORMAT = "sbm-graph-1"
FILES = ("meta.json", "edges.npy", "features.npy", "labels.npy", "split.npy")
CHUNK = 1 << 20


def write_sbm_graph(folder, num_nodes, avg_degree=10, num_classes=10, num_features=32, homophily=0.8, signal=0.5,
                    split=(0.1, 0.1, 0.8), seed=0):
    """Generate and write one graph into `folder` (created; existing files are replaced atomically per file)."""
    from numpy.lib.format import open_memmap

    if not 0 <= homophily <= 1:
        raise ValueError(f"homophily must be in [0, 1], got {homophily}")
    if len(split) != 3 or abs(sum(split) - 1) > 1e-6 or min(split) < 0:
        raise ValueError(f"split needs three fractions that sum to 1, got {split}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    num_edges = num_nodes * avg_degree // 2

    labels = rng.integers(0, num_classes, size=num_nodes)
    # Nodes grouped by class, to draw "a node of class c" as by_class[start[c] + uniform(count[c])].
    by_class = np.argsort(labels, kind="stable")
    count = np.bincount(labels, minlength=num_classes)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    means = rng.standard_normal((num_classes, num_features)).astype(np.float32) * signal

    def write(name, shape, dtype, fill):
        temporary = folder / f".{name}.partial"
        array = open_memmap(temporary, mode="w+", dtype=dtype, shape=shape)
        for first in range(0, shape[0], CHUNK):
            last = min(first + CHUNK, shape[0])
            array[first:last] = fill(first, last)
        array.flush()
        del array
        temporary.replace(folder / name)

    def edges(first, last):
        sources = rng.integers(0, num_nodes, size=last - first)
        same_class = rng.random(last - first) < homophily
        cls = labels[sources]
        within = by_class[start[cls] + (rng.random(last - first) * np.maximum(count[cls], 1)).astype(np.int64)]
        return np.stack([sources, np.where(same_class, within, rng.integers(0, num_nodes, size=last - first))], 1)

    write("edges.npy", (num_edges, 2), np.int64, edges)
    write("features.npy", (num_nodes, num_features), np.float32,
          lambda first, last: means[labels[first:last]]
          + rng.standard_normal((last - first, num_features), dtype=np.float32))
    write("labels.npy", (num_nodes,), np.int64, lambda first, last: labels[first:last])
    split_ids = rng.choice(3, size=num_nodes, p=list(split)).astype(np.int8)
    write("split.npy", (num_nodes,), np.int8, lambda first, last: split_ids[first:last])
    meta = dict(format=FORMAT, num_nodes=num_nodes, num_undirected_edges=num_edges, num_features=num_features,
                num_classes=num_classes, split=list(split), avg_degree=avg_degree, homophily=homophily,
                signal=signal, seed=seed)
    temporary = folder / ".meta.json.partial"
    temporary.write_text(json.dumps(meta, indent=1))
    temporary.replace(folder / "meta.json")  # written last: a folder with meta.json is complete
    return folder


def write_sbm_disk_graph(folder, num_nodes, avg_degree=10, num_classes=10, num_features=32, homophily=0.8,
                         signal=0.5, split=(0.1, 0.1, 0.8), seed=0, chunk_nodes=1 << 18, log=print):
    """Generate a graph on disk, chunk by chunk of target nodes (bounded memory at any size). Returns its folder."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((num_classes, num_features)).astype(np.float32) * signal
    # In-edges per chunk are counted after dropping duplicates and self loops, so the total is known only at the end:
    # the writer gets an upper bound, and is told the number written (set_num_edges) before it finishes.
    total = 0
    with DiskGraphWriter(folder, "sbm-generated", num_nodes, num_nodes * avg_degree, num_features, num_classes,
                         [f"block {c}" for c in range(num_classes)]) as writer:
        splits = {"train": [], "val": [], "test": []}
        for first in progress_bar(range(0, num_nodes, chunk_nodes), desc="generating", unit="chunk"):
            last = min(first + chunk_nodes, num_nodes)
            nodes = np.arange(first, last)
            labels = nodes % num_classes
            writer.write_nodes(first, means[labels] + rng.standard_normal((last - first, num_features),
                                                                          dtype=np.float32), labels)
            targets = np.repeat(nodes, avg_degree)
            same = rng.random(targets.size) < homophily
            own = labels.repeat(avg_degree)  # a node of class c: c + num_classes * k
            within = own + num_classes * (rng.random(targets.size) * ((num_nodes - own - 1) // num_classes + 1)
                                          ).astype(np.int64)
            sources = np.where(same, within, rng.integers(0, num_nodes, targets.size))
            pairs = np.unique(targets * num_nodes + sources)       # sorted by target, then source; no duplicates
            pairs = pairs[pairs // num_nodes != pairs % num_nodes]  # no self loops (implied)
            counts = np.bincount(pairs // num_nodes - first, minlength=last - first)
            writer.write_edges(first, counts, pairs % num_nodes)
            total += pairs.size
            # Each node is a training, validation or test node with the split's probabilities (in none, if they sum
            # to less than 1: a graph larger than its labelled part).
            which = np.searchsorted(np.cumsum(split), rng.random(last - first), side="right")
            for code, name in enumerate(("train", "val", "test")):
                splits[name].append(nodes[which == code])
        writer.set_num_edges(total)
        for name, parts in splits.items():
            writer.write_split(name, np.concatenate(parts))
    return Path(folder)


def load_sbm_graph(folder):
    """Read a folder written by write_sbm_graph as a GraphData (symmetrised edges, one self loop per node)."""
    folder = Path(folder)
    if (folder / "sbm").is_dir() and not (folder / "meta.json").exists():
        folder = folder / "sbm"  # --data_dir DIR with the graph in DIR/sbm
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetError(f"{folder} is not a generated graph: missing {', '.join(missing)}. Generate one with: "
                           f"python -m utils.datasets.sbm_graph --output {folder} --num_nodes 100000")
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            raise DatasetError(f"{folder}/meta.json has format {meta.get('format')!r}, expected {FORMAT!r}")
        edges = np.load(folder / "edges.npy", mmap_mode="r", allow_pickle=False)
        features = np.load(folder / "features.npy", allow_pickle=False)
        labels = np.load(folder / "labels.npy", allow_pickle=False)
        split = np.load(folder / "split.npy", allow_pickle=False)
    except (ValueError, OSError, json.JSONDecodeError) as error:
        raise DatasetError(f"cannot read the generated graph in {folder}: {error}") from None
    n = meta["num_nodes"]
    if features.shape != (n, meta["num_features"]) or labels.shape != (n,) or split.shape != (n,) \
            or edges.ndim != 2 or edges.shape[1] != 2:
        raise DatasetError(f"{folder}: array shapes do not match meta.json (a partial or mixed copy?); "
                           f"generate the graph again")
    edge_index = build_edge_index(edges[:, 0], edges[:, 1], n)
    return GraphData(name="sbm-generated", node_features=torch.from_numpy(features), labels=torch.from_numpy(labels),
                     edge_index=edge_index, num_classes=meta["num_classes"],
                     train_indices=torch.from_numpy(np.flatnonzero(split == 0)),
                     val_indices=torch.from_numpy(np.flatnonzero(split == 1)),
                     test_indices=torch.from_numpy(np.flatnonzero(split == 2)))


def get_parser():

    parser = new_parser("Write a stochastic-block-model graph whose classes need the edges.",
                        prog="python -m utils.datasets.sbm_graph")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the files")
    parser.add_argument("--num_nodes", type=positive_int, required=True, help="number of nodes")
    parser.add_argument("--avg_degree", type=positive_int, default=10, help="average number of neighbours per node")
    parser.add_argument("--num_classes", type=positive_int, default=10, help="classes (= blocks)")
    parser.add_argument("--num_features", type=positive_int, default=32, help="features per node")
    parser.add_argument("--homophily", type=float, default=0.8,
                        help="probability that an edge joins two nodes of the same class")
    parser.add_argument("--signal", type=positive_float, default=0.5,
                        help="scale of the class means in the features (noise has unit variance)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (same seed, same files)")
    parser.add_argument("--disk", action=OnOffFlag, default=False,
                        help="write a graph on disk (utils/datasets/disk_graph.py; train with --dataset_name DIR "
                             "--fanouts ...), generated in chunks: any size, in the memory of one chunk")
    parser.add_argument("--split", type=float, nargs=3, default=[0.1, 0.1, 0.8], metavar=("TRAIN", "VAL", "TEST"),
                        help="--disk: the probability of each node to be a training, validation or test node (summing "
                             "to less than 1 leaves the other nodes in no split)")
    return parser


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.homophily <= 1:
        parser.error(f"--homophily must be in [0, 1], got {args.homophily}")
    if args.disk:
        if len(args.split) != 3 or sum(args.split) > 1 + 1e-6 or min(args.split) < 0:
            parser.error(f"--split needs three probabilities that sum to at most 1, got {args.split}")
        try:
            folder = write_sbm_disk_graph(args.output, args.num_nodes, args.avg_degree, args.num_classes,
                                          args.num_features, args.homophily, args.signal, args.split, args.seed)
        except DatasetError as error:
            raise SystemExit(f"error: {error}") from None
        print(f"Wrote a {args.num_nodes}-node graph on disk to {folder}; train on it with: python "
              f"training_script_cora.py --dataset_name {folder} --fanouts 10 10")
        return
    folder = write_sbm_graph(args.output, args.num_nodes, args.avg_degree, args.num_classes, args.num_features,
                             args.homophily, args.signal, seed=args.seed)
    print(f"Wrote a {args.num_nodes}-node graph to {folder}; train on it with: python training_script_cora.py "
          f"--dataset_name sbm --data_dir {folder} --fanouts 10 10")


if __name__ == "__main__":
    main()
