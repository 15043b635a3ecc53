"""Write a small PPI-like dataset in exactly the on-disk format of the real ppi.zip.

The real PPI cannot be downloaded everywhere (not in this project's CI). This generator writes the
same four files per split, same names, JSON layout, dtypes and widths (50 features, 121 labels),
with labels that need the graph. Two rules make the labels:

- neighbour_mean (the default): labels from the *average* of a node's neighbours' features (plus a
  little of its own). A GAT that uses the edges learns them, a model that sees only a node's own
  features cannot do much better than chance; but uniform attention is all it takes, so the
  learnt attention stays close to uniform.
- matching_neighbour: labels copied from *one* neighbour. Every node has an identity code and a
  query code (one-hot, the first 2 x NUM_CODES features); its labels come from the payload (the
  remaining features) of the neighbour whose identity code equals its query code. To learn them,
  a node must attend to that neighbour and not the others: a ranking of neighbours that depends
  on the target node, which GATv2's dynamic attention can express and GAT's static attention cannot.

    python -m utils.datasets.ppi_synthetic --output /tmp/ppi_data/ppi --graphs 20 2 2 --nodes 80 120
    python training_script_ppi.py --data_dir /tmp/ppi_data

Next to the files it writes GENERATED_MARKER (utils/datasets/ppi.py), a small JSON of its settings, so that the
loader names the data ppi-generated, and so do the runs trained on it. It never writes where the real PPI goes:
the default data folder's ppi/, or a folder that holds real PPI files.
"""

import json
from pathlib import Path

import numpy as np

from utils.datasets.download import DatasetError, resolve_data_dir
from utils.datasets.ppi import GENERATED_MARKER, NUM_FEATURES, NUM_LABELS, SPLITS, ppi_files
from utils.plumbing.arguments import new_parser, non_negative_int, positive_int

LABEL_RULES = ("neighbour_mean", "matching_neighbour")
NUM_CODES = 16  # matching_neighbour: identity and query codes, one-hot in features 0-15 and 16-31


def write_synthetic_ppi(folder, graphs_per_split=(20, 2, 2), nodes_per_graph=(80, 120), avg_degree=6, seed=0,
                        self_weight=0.3, label_rule="neighbour_mean"):
    """Write <split>_{graph.json,feats.npy,labels.npy,graph_id.npy} for train/valid/test into folder."""
    if label_rule not in LABEL_RULES:
        raise ValueError(f"label_rule must be one of {', '.join(LABEL_RULES)}, got {label_rule!r}")
    folder = Path(folder)
    _refuse_real_ppi_location(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = dict(generator="utils.datasets.ppi_synthetic", graphs_per_split=list(graphs_per_split),
                    nodes_per_graph=list(nodes_per_graph), avg_degree=avg_degree, seed=seed, self_weight=self_weight,
                    label_rule=label_rule)
    (folder / GENERATED_MARKER).write_text(json.dumps(settings, indent=2) + "\n")
    rng = np.random.default_rng(seed)
    # Shared across all graphs, so what is learnt on training graphs transfers to unseen ones.
    neighbour_weights = rng.standard_normal((NUM_FEATURES, NUM_LABELS)) / np.sqrt(NUM_FEATURES)
    self_weights = rng.standard_normal((NUM_FEATURES, NUM_LABELS)) / np.sqrt(NUM_FEATURES)
    graph_id = 0
    for split, num_graphs in zip(SPLITS, graphs_per_split):
        features, labels, graph_ids, links = [], [], [], []
        offset = 0
        for _ in range(num_graphs):
            graph_id += 1
            n = int(rng.integers(nodes_per_graph[0], nodes_per_graph[1] + 1))
            edges = _random_edges(rng, n, avg_degree)
            x = rng.standard_normal((n, NUM_FEATURES)).astype(np.float32)
            adjacency = np.zeros((n, n))
            adjacency[edges[:, 0], edges[:, 1]] = adjacency[edges[:, 1], edges[:, 0]] = 1
            if label_rule == "neighbour_mean":
                degree = adjacency.sum(axis=1, keepdims=True)
                neighbour_mean = np.divide(adjacency @ x, degree, out=np.zeros_like(x, dtype=np.float64),
                                           where=degree > 0)
                logits = (np.sqrt(np.maximum(degree, 1)) * neighbour_mean @ neighbour_weights
                          + self_weight * x @ self_weights)
            else:
                logits = _matching_neighbour_logits(rng, x, adjacency, neighbour_weights)
            features.append(x)
            labels.append((logits > 0).astype(np.int64))
            graph_ids.append(np.full(n, graph_id, dtype=np.int64))
            links.extend({"source": int(s + offset), "target": int(t + offset)} for s, t in edges)
            offset += n
        nodes = [{"id": i, "val": split == "valid", "test": split == "test"} for i in range(offset)]
        graph_file, feats_file, labels_file, ids_file = ppi_files(split)
        (folder / graph_file).write_text(json.dumps({"directed": False, "multigraph": False, "graph": {},
                                                     "nodes": nodes, "links": links}))
        np.save(folder / feats_file, np.concatenate(features))
        np.save(folder / labels_file, np.concatenate(labels))
        np.save(folder / ids_file, np.concatenate(graph_ids))
    return folder


def _refuse_real_ppi_location(folder):
    """DatasetError for the folder the real PPI goes in (the default data folder's ppi/), or one holding real PPI."""
    real = resolve_data_dir(None, must_exist=False) / "ppi"
    if folder.resolve() == real.resolve():
        raise DatasetError(f"{folder} is where the real PPI goes; write generated data elsewhere, e.g. --output "
                           f"{real.parent / 'ppi-generated' / 'ppi'}")
    if (folder / ppi_files("train")[0]).exists() and not (folder / GENERATED_MARKER).exists():
        raise DatasetError(f"{folder} holds PPI data that was not generated; write generated data elsewhere")


def _matching_neighbour_logits(rng, x, adjacency, weights):
    """Overwrite x's first 2 * NUM_CODES features with one-hot identity and query codes (in place) and
    return label logits copied from the payload of the neighbour(s) whose identity matches the query.

    Each node's query is the identity of one of its neighbours, drawn at random, so at least one
    neighbour matches; when several share that identity, their payloads are averaged. A node
    without neighbours takes its own payload.
    """
    n = x.shape[0]
    identity = rng.integers(0, NUM_CODES, size=n)
    has_neighbours = adjacency.sum(axis=1) > 0
    chosen = np.argmax(adjacency * rng.random((n, n)), axis=1)    # a random neighbour of each node
    query = np.where(has_neighbours, identity[chosen], identity)
    x[:, :2 * NUM_CODES] = 0
    x[np.arange(n), identity] = 1
    x[np.arange(n), NUM_CODES + query] = 1

    payload = x[:, 2 * NUM_CODES:]
    match = adjacency * (identity[None, :] == query[:, None])
    lonely = ~has_neighbours
    match[lonely, lonely] = 1  # pairs (i, i): an isolated node is its own source
    source = match @ payload / match.sum(axis=1, keepdims=True)
    return source @ weights[2 * NUM_CODES:]


def _random_edges(rng, num_nodes, avg_degree):
    """Undirected random edges (source < target, no duplicates), ~avg_degree per node."""
    num_edges = num_nodes * avg_degree // 2
    pairs = rng.integers(0, num_nodes, size=(num_edges * 2, 2))
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    return np.unique(pairs, axis=0)[:num_edges]


def get_parser():

    parser = new_parser("Write a PPI-format dataset whose labels depend on the graph.",
                        prog="python -m utils.datasets.ppi_synthetic")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder for the files; write to DIR/ppi to train with --data_dir DIR")
    parser.add_argument("--graphs", type=positive_int, nargs=3, default=(20, 2, 2), metavar=("TRAIN", "VALID", "TEST"),
                        help="number of graphs in each split")
    parser.add_argument("--nodes", type=positive_int, nargs=2, default=(80, 120), metavar=("MIN", "MAX"),
                        help="nodes per graph, drawn uniformly between MIN and MAX")
    parser.add_argument("--avg_degree", type=positive_int, default=6, help="average number of neighbours per node")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (same seed, same files)")
    parser.add_argument("--labels", choices=LABEL_RULES, default="neighbour_mean",
                        help="neighbour_mean: labels from the neighbours' average features (uniform attention "
                             "suffices); matching_neighbour: labels copied from the one neighbour whose identity "
                             "code matches the node's query code (needs selective, dynamic attention)")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.nodes[0] > args.nodes[1]:
        get_parser().error(f"--nodes MIN MAX needs MIN <= MAX, got {args.nodes[0]} {args.nodes[1]}")
    try:
        folder = write_synthetic_ppi(args.output, args.graphs, args.nodes, args.avg_degree, args.seed,
                                     label_rule=args.labels)
    except DatasetError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"Wrote a generated PPI-format dataset to {folder} (not PPI: runs on it are named ppi-generated); train "
          f"on it with: python training_script_ppi.py --data_dir {Path(folder).parent}")


if __name__ == "__main__":
    main()
