"""Write a small PPI-like dataset in exactly the on-disk format of the real ppi.zip.

The real PPI cannot be downloaded everywhere (not in this project's CI). This generator writes the
same four files per split, same names, JSON layout, dtypes and widths (50 features, 121 labels),
with labels that depend mostly on each node's *neighbours*: a GAT that uses the edges can learn them,
a model that sees only a node's own features cannot do much better than chance.

    python -m utils.ppi_synthetic --output /tmp/ppi_data/ppi --graphs 20 2 2 --nodes 80 120
    python training_script_ppi.py --data_dir /tmp/ppi_data
"""

import json
from pathlib import Path

import numpy as np

from utils.ppi import NUM_FEATURES, NUM_LABELS, SPLITS, ppi_files


def write_synthetic_ppi(folder, graphs_per_split=(20, 2, 2), nodes_per_graph=(80, 120), avg_degree=6, seed=0,
                        self_weight=0.3):
    """Write <split>_{graph.json,feats.npy,labels.npy,graph_id.npy} for train/valid/test into folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
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
            degree = adjacency.sum(axis=1, keepdims=True)
            neighbour_mean = np.divide(adjacency @ x, degree, out=np.zeros_like(x, dtype=np.float64), where=degree > 0)
            logits = np.sqrt(np.maximum(degree, 1)) * neighbour_mean @ neighbour_weights + self_weight * x @ self_weights
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


def _random_edges(rng, num_nodes, avg_degree):
    """Undirected random edges (source < target, no duplicates), ~avg_degree per node."""
    num_edges = num_nodes * avg_degree // 2
    pairs = rng.integers(0, num_nodes, size=(num_edges * 2, 2))
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    return np.unique(pairs, axis=0)[:num_edges]


def get_parser():
    from utils.flags import new_parser, non_negative_int, positive_int

    parser = new_parser("Write a PPI-format dataset whose labels depend on the graph.")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder for the files; write to DIR/ppi to train with --data_dir DIR")
    parser.add_argument("--graphs", type=positive_int, nargs=3, default=(20, 2, 2), metavar=("TRAIN", "VALID", "TEST"),
                        help="number of graphs in each split")
    parser.add_argument("--nodes", type=positive_int, nargs=2, default=(80, 120), metavar=("MIN", "MAX"),
                        help="nodes per graph, drawn uniformly between MIN and MAX")
    parser.add_argument("--avg_degree", type=positive_int, default=6, help="average number of neighbours per node")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (same seed, same files)")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.nodes[0] > args.nodes[1]:
        get_parser().error(f"--nodes MIN MAX needs MIN <= MAX, got {args.nodes[0]} {args.nodes[1]}")
    folder = write_synthetic_ppi(args.output, args.graphs, args.nodes, args.avg_degree, args.seed)
    print(f"Wrote a synthetic PPI-format dataset to {folder}; train on it with: "
          f"python training_script_ppi.py --data_dir {Path(folder).parent}")


if __name__ == "__main__":
    main()
