"""Marked edge: a task whose labels only the edge features reveal, learned with edge_dim and not without.

    python -m benchmarks.edge_features --k 4 8 16 --seeds 0 1 2

Each graph is a star: k "candidate" nodes, each with an edge to one "query" node. Candidate j carries a value
(one-hot, one of k, each used once per graph); the query carries a flag only. One of the k edges is marked: its
edge features are [1, noise...], the others' [0, noise...] (edge_dim = 1 + --noise_features; the noise is
standard normal). The query must output the value of the candidate behind the marked edge.

Nothing but the edge features says which edge is marked: node features and structure are the same whichever
it is, so a model without edge features can only guess (chance 1/k). With edge_dim, GAT's score gains
a_edge . W_e e_ij, so the query can put its attention on the marked edge (static attention is enough: the mark
raises one edge's score whoever asks).

Self loops come from models.gat_edge_index, which gives each one the mean of its node's incoming edges'
features (PyG's fill_value="mean"): the query's loop gets [1/k, mean noise], the candidates' (no incoming
edge) zeros. The model is one attention layer (1 head, ELU, no skip connection) and a linear read-out on the
query nodes, the same with and without edge_dim (without it, the edge features are simply not passed).
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn

from models import LayerType, gat_edge_index
from models.gat_layers import LAYER_CLASSES
from utils.cli.flags import layer_type_arg
from utils.plumbing.arguments import non_negative_int, positive_int, writable_file
from utils.plumbing.files import write_json


def make_graphs(k, num_graphs, generator, noise_features=3):
    """A batch of num_graphs marked-edge stars as one disjoint union.

    Returns (features [G*(k+1), k+1], edge_index [2, G*(2k+1)], edge_attr [G*(2k+1), 1+noise_features],
    labels [G], query_index [G]). Nodes of graph g: candidates g*(k+1) .. g*(k+1)+k-1, then the query.
    Features: the candidate's one-hot value (k, zero for the query) and a flag that is 1 on the query.
    """
    values = torch.stack([torch.randperm(k, generator=generator) for _ in range(num_graphs)])  # [G, k]
    marked = torch.randint(0, k, (num_graphs,), generator=generator)                          # [G]
    eye = torch.eye(k)
    candidates = torch.cat([eye[values], torch.zeros(num_graphs, k, 1)], dim=-1)             # [G, k, k+1]
    queries = torch.cat([torch.zeros(num_graphs, 1, k), torch.ones(num_graphs, 1, 1)], dim=-1)
    features = torch.cat([candidates, queries], dim=1).reshape(num_graphs * (k + 1), k + 1)

    first = torch.arange(num_graphs) * (k + 1)
    query_index = first + k
    source = (first[:, None] + torch.arange(k)).reshape(-1)                                   # candidate -> query
    target = query_index.repeat_interleave(k)
    mark = torch.zeros(num_graphs, k)
    mark[torch.arange(num_graphs), marked] = 1.0
    edge_attr = torch.cat([mark.reshape(-1, 1), torch.randn(num_graphs * k, noise_features, generator=generator)],
                          dim=1)
    edge_index, edge_attr = gat_edge_index(torch.stack([source, target]), num_graphs * (k + 1), edge_attr=edge_attr)
    labels = values[torch.arange(num_graphs), marked]
    return features, edge_index, edge_attr, labels, query_index


class MarkedEdgeModel(nn.Module):
    """One attention layer (edge features in its scores when edge_dim is given) and a linear read-out to k classes."""

    def __init__(self, k, edge_dim=None, hidden=32, num_heads=1, layer_type=LayerType.IMP3):
        super().__init__()
        layer_class = LAYER_CLASSES[LayerType.parse(layer_type)]
        self.uses_edge_features = edge_dim is not None
        self.attention = layer_class(k + 1, hidden, num_heads, concat=True, activation=nn.ELU(), dropout_prob=0.0,
                                     add_skip_connection=False, edge_dim=edge_dim)
        self.readout = nn.Linear(hidden * num_heads, k)

    def forward(self, features, edge_index, edge_attr, query_index):
        hidden = self.attention(features, edge_index, edge_attr if self.uses_edge_features else None)
        return self.readout(hidden[query_index])


@torch.no_grad()
def accuracy(model, graphs):
    features, edge_index, edge_attr, labels, query_index = graphs
    model.eval()
    return (model(features, edge_index, edge_attr, query_index).argmax(-1) == labels).float().mean().item()


def train_and_evaluate(k, use_edge_features, seed=0, steps=500, batch_graphs=32, num_train_graphs=1000,
                       num_test_graphs=500, hidden=32, noise_features=3, lr=3e-3, layer_type=LayerType.IMP3):
    """Train one model; returns {"train_acc", "test_acc", "seconds"}."""
    torch.manual_seed(seed)
    data_generator = torch.Generator().manual_seed(seed)
    train = make_graphs(k, num_train_graphs, data_generator, noise_features)
    test = make_graphs(k, num_test_graphs, data_generator, noise_features)
    edge_dim = 1 + noise_features if use_edge_features else None
    model = MarkedEdgeModel(k, edge_dim, hidden, layer_type=layer_type)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()

    # Every graph has the same structure (2k + 1 edges), so one batch's edge_index serves every batch; the
    # features, edge features and labels are those of the graphs drawn.
    features, edge_index, edge_attr, labels, query_index = train
    nodes_per_graph, edges_per_graph = k + 1, 2 * k + 1
    features = features.view(num_train_graphs, nodes_per_graph, -1)
    edge_attr = edge_attr.view(num_train_graphs, edges_per_graph, -1)
    batch_edge_index = edge_index[:, :batch_graphs * edges_per_graph]
    batch_query_index = query_index[:batch_graphs]
    batches_per_epoch = num_train_graphs // batch_graphs
    start = time.perf_counter()
    for step in range(steps):
        if step % batches_per_epoch == 0:
            order = torch.randperm(num_train_graphs, generator=data_generator)
        graphs = order[(step % batches_per_epoch) * batch_graphs:][:batch_graphs]
        model.train()
        optimizer.zero_grad()
        logits = model(features[graphs].flatten(0, 1), batch_edge_index, edge_attr[graphs].flatten(0, 1),
                       batch_query_index)
        loss_fn(logits, labels[graphs]).backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    return {"train_acc": accuracy(model, train), "test_acc": accuracy(model, test), "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--k", type=positive_int, nargs="+", default=[4, 8, 16], help="candidates per query")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one model per seed, k and setting")
    parser.add_argument("--steps", type=positive_int, default=500, help="optimizer steps per model")
    parser.add_argument("--batch_graphs", type=positive_int, default=32, help="graphs per step")
    parser.add_argument("--hidden", type=positive_int, default=32, help="features of the attention layer")
    parser.add_argument("--noise_features", type=non_negative_int, default=3,
                        help="edge features besides the mark, standard normal noise")
    parser.add_argument("--layer_type", type=layer_type_arg, default=LayerType.IMP3, help="GAT implementation")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--output", type=writable_file, default=None, help="write every run as JSON here")
    args = parser.parse_args(argv)

    runs, rows = [], []
    for k in args.k:
        for use_edge_features in (False, True):
            setting = f"edge_dim={1 + args.noise_features}" if use_edge_features else "no edge features"
            results = []
            for seed in args.seeds:
                result = train_and_evaluate(k, use_edge_features, seed, args.steps, args.batch_graphs,
                                            hidden=args.hidden, noise_features=args.noise_features, lr=args.lr,
                                            layer_type=args.layer_type)
                results.append(result)
                runs.append({"k": k, "edge_features": use_edge_features, "seed": seed, **result})
                print(f"k={k:3d} {setting:17s} seed {seed}: train {result['train_acc']:.3f}  "
                      f"test {result['test_acc']:.3f}  ({result['seconds']:.0f}s)", flush=True)
            rows.append((k, setting, [r["train_acc"] for r in results], [r["test_acc"] for r in results]))

    def mean_std(values):
        values = [100 * v for v in values]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.1f} ± {std:.1f}"

    print("\n| k | model | train accuracy (%) | test accuracy (%) | chance (%) |\n|---|---|---|---|---|")
    for k, setting, train, test in rows:
        print(f"| {k} | {setting} | {mean_std(train)} | {mean_std(test)} | {100 / k:.1f} |")
    if args.output:
        write_json(args.output, {"settings": {**vars(args), "layer_type": args.layer_type.name}, "runs": runs})


if __name__ == "__main__":
    main()
