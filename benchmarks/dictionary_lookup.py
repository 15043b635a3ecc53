"""Dictionary lookup: a task that static attention (GAT) cannot solve and dynamic attention (GATv2) can.

    python -m benchmarks.dictionary_lookup --k 5 10 20 --seeds 0 1 2
    python -m benchmarks.dictionary_lookup --k 10 --seeds 0 --save_runs DIR   # then, for each model it trained:
    python playground.py explore --model_name DIR/dictionary_lookup_k10_gatv2_seed0.pth

After Brody, Alon & Yahav, "How Attentive are Graph Attention Networks?" (ICLR 2022), section 4.1.
Each graph is a complete bipartite graph: k "key" nodes and k "query" nodes, an edge from every key to
every query (and a self loop on every key: each node needs an incoming edge; only the queries' outputs are read). Key j carries an attribute (one of k, each used once) and a value (a random permutation
of the k attributes); query i carries an attribute only. A query must output the value of the key
whose attribute equals its own, so each query has to put its attention on a different key.

Why GAT fails: its score is e_ij = LeakyReLU(a_t . W h_i + a_s . W h_j). For a fixed head, the
keys j are ranked by a_s . W h_j whatever the query i is (LeakyReLU is monotonic), so every query
ranks the keys in the same order and the same key gets the most attention everywhere. GATv2's
e_ij = a . LeakyReLU(W_s h_j + W_t h_i) applies the non-linearity before a, so the ranking can
depend on the query.

The model is one attention layer (the repository's IMP3, either attention type) followed by a
linear read-out on the query nodes. Both attention types get the same width, steps and learning
rate. Training and test graphs are disjoint random draws of the value permutation; "train" is the
accuracy on the training graphs (can the model fit?), "test" on graphs it never saw.

--save_runs DIR saves every trained model as a run file (RUN_KIND, with one test graph) that the attention explorer
opens (`explorer_data`): GAT gives every query the same ranking of the keys, GATv2 a ranking of its own.
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn

from models.gat_layers import ATTENTION_TYPES, LAYER_CLASSES, LayerType
from utils.figures.explorer import SPLIT_CODES, ExplorerData
from utils.plumbing.arguments import positive_int, writable_file
from utils.plumbing.files import check_writable, write_json
from utils.runs.checkpoints import save

RUN_KIND = "dictionary_lookup"  # what a run file saved by --save_runs says it is


def make_graphs(k, num_graphs, generator):
    """A batch of num_graphs dictionary-lookup graphs as one disjoint union.

    Returns (features [G*2k, 2k+1], edge_index [2, G*(k*k + k)], labels [G*k], query_index [G*k]).
    Nodes of graph g: keys g*2k .. g*2k+k-1, then queries. Features: one-hot attribute (k), one-hot
    value (k, zero for queries), and a flag that is 1 on queries. labels[q] is the value that query
    query_index[q] must output.
    """
    values = torch.stack([torch.randperm(k, generator=generator) for _ in range(num_graphs)])  # [G, k]
    attributes = torch.arange(k)
    eye = torch.eye(k)

    keys = torch.cat([eye[attributes].expand(num_graphs, k, k), eye[values], torch.zeros(num_graphs, k, 1)], dim=-1)
    queries = torch.cat([eye[attributes].expand(num_graphs, k, k), torch.zeros(num_graphs, k, k),
                         torch.ones(num_graphs, k, 1)], dim=-1)
    features = torch.cat([keys, queries], dim=1).reshape(num_graphs * 2 * k, 2 * k + 1)

    offsets = torch.arange(num_graphs) * 2 * k                                 # first node of each graph
    key_ids = offsets[:, None] + attributes                                    # [G, k]
    query_ids = key_ids + k
    source = key_ids[:, None, :].expand(num_graphs, k, k)                      # [G, query, key]
    target = query_ids[:, :, None].expand(num_graphs, k, k)
    # Per graph: the keys' self loops, then the key -> query edges (columns sorted by target).
    source = torch.cat([key_ids, source.reshape(num_graphs, k * k)], dim=1)   # [G, k + k*k]
    target = torch.cat([key_ids, target.reshape(num_graphs, k * k)], dim=1)
    edge_index = torch.stack([source.reshape(-1), target.reshape(-1)])

    # Query i asks for attribute i, held by key i: its answer is values[g, i].
    return features, edge_index, values.reshape(-1), query_ids.reshape(-1)


class LookupModel(nn.Module):
    """One attention layer (heads concatenated, ELU) and a linear read-out to k classes."""

    def __init__(self, k, attention_type, hidden=64, num_heads=1, layer_type=LayerType.IMP3):
        super().__init__()
        layer_class = LAYER_CLASSES[LayerType.parse(layer_type)]
        self.attention = layer_class(2 * k + 1, hidden, num_heads, concat=True, activation=nn.ELU(),
                                     dropout_prob=0.0, add_skip_connection=False, attention_type=attention_type)
        self.readout = nn.Linear(hidden * num_heads, k)

    def forward(self, features, edge_index, query_index):
        return self.readout(self.attention(features, edge_index)[query_index])


@torch.no_grad()
def accuracy(model, graphs):
    features, edge_index, labels, query_index = graphs
    model.eval()
    return (model(features, edge_index, query_index).argmax(-1) == labels).float().mean().item()


def train_and_evaluate(k, attention_type, seed=0, steps=1000, batch_graphs=32, num_train_graphs=1000,
                       num_test_graphs=200, hidden=64, num_heads=1, lr=3e-3, layer_type=LayerType.IMP3):
    """Train one model on k; returns {"train_acc", "test_acc", "seconds", "model", "test_graph": the first test graph
    as (features, edge_index, labels, query_index)}."""
    torch.manual_seed(seed)
    data_generator = torch.Generator().manual_seed(seed)
    train = make_graphs(k, num_train_graphs, data_generator)
    test = make_graphs(k, num_test_graphs, data_generator)
    model = LookupModel(k, attention_type, hidden, num_heads, layer_type)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()

    # Every graph has the same structure, so a batch of batch_graphs graphs always has the same
    # edge_index (that of the first batch_graphs graphs); only the features and labels change.
    nodes_per_graph = 2 * k
    features, edge_index, labels, query_index = train
    features = features.view(num_train_graphs, nodes_per_graph, -1)
    labels = labels.view(num_train_graphs, k)
    batch_edge_index = edge_index[:, :batch_graphs * (k * k + k)]
    batch_query_index = query_index[:batch_graphs * k]
    batches_per_epoch = num_train_graphs // batch_graphs
    start = time.perf_counter()
    for step in range(steps):
        if step % batches_per_epoch == 0:
            order = torch.randperm(num_train_graphs, generator=data_generator)
        graphs = order[(step % batches_per_epoch) * batch_graphs:][:batch_graphs]
        model.train()
        optimizer.zero_grad()
        logits = model(features[graphs].flatten(0, 1), batch_edge_index, batch_query_index)
        loss_fn(logits, labels[graphs].reshape(-1)).backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    return {"train_acc": accuracy(model, train), "test_acc": accuracy(model, test), "seconds": seconds,
            "model": model, "test_graph": tuple(part.clone() for part in (test[0][:2 * k], test[1][:, :k * k + k],
                                                                    test[2][:k], test[3][:k]))}


def save_run(path, result, k, attention_type, seed, hidden, num_heads, layer_type=LayerType.IMP3):
    """A run file (torch.save of tensors and plain values: it loads with weights_only=True) with the trained model,
    its settings and one test graph, for the attention explorer."""
    features, edge_index, labels, query_index = result["test_graph"]
    save({"kind": RUN_KIND, "format_version": 1, "model_state": result["model"].state_dict(),
          "config": dict(k=k, attention_type=attention_type, hidden=hidden, num_heads=num_heads,
                         layer_type=LayerType.parse(layer_type).name, seed=seed),
          "graph": dict(features=features, edge_index=edge_index, labels=labels, query_index=query_index),
          "results": {key: result[key] for key in ("train_acc", "test_acc")}}, path)


@torch.no_grad()
def explorer_data(checkpoint, path, nodes=None):
    """The explorer page's data for a run saved by save_run: the model's one attention layer on its test graph."""
    config, graph = checkpoint["config"], checkpoint["graph"]
    k = config["k"]
    model = LookupModel(k, config["attention_type"], config["hidden"], config["num_heads"], config["layer_type"])
    model.load_state_dict(checkpoint["model_state"])
    model.eval()
    hidden, attention = model.attention(graph["features"], graph["edge_index"], return_attention_weights=True)
    probabilities = torch.softmax(model.readout(hidden), dim=1)   # (the keys' rows mean nothing: they have no label)
    labels = torch.full((2 * k,), -1, dtype=torch.long)
    labels[graph["query_index"]] = graph["labels"]
    splits = torch.zeros(2 * k, dtype=torch.long)
    splits[graph["query_index"]] = SPLIT_CODES["test"]
    name = config["attention_type"].upper()
    return ExplorerData(
        title=f"Dictionary lookup, k = {k}: attention of {name} ({path.name}; test accuracy "
              f"{checkpoint['results']['test_acc']:.2f})",
        note=f"Keys 0-{k - 1} send an edge to every query {k}-{2 * k - 1}; query {k} + i must attend to key i (its "
             f"attribute) and output that key's value (the classes). {name}: "
             + ("its score ranks the keys in one order for every query (static attention)." if name == "GAT" else
                "its score can rank the keys differently for each query (dynamic attention)."),
        edge_index=graph["edge_index"], attention=[attention], probabilities=probabilities, labels=labels,
        class_names=[f"value {v}" for v in range(k)], splits=splits)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--k", type=positive_int, nargs="+", default=[5, 10, 20], help="dictionary sizes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one model per seed, k and type")
    parser.add_argument("--attention_types", nargs="+", choices=ATTENTION_TYPES, default=list(ATTENTION_TYPES))
    parser.add_argument("--steps", type=positive_int, default=1000, help="optimizer steps per model")
    parser.add_argument("--batch_graphs", type=positive_int, default=32, help="graphs per step")
    parser.add_argument("--hidden", type=positive_int, default=64, help="features per head")
    parser.add_argument("--num_heads", type=positive_int, default=1)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--output", type=writable_file, default=None, help="write every run as JSON here")
    parser.add_argument("--save_runs", default=None, metavar="DIR",
                        help="save every trained model, with one test graph, as DIR/dictionary_lookup_k<k>_<attention>"
                             "_seed<seed>.pth, for python playground.py explore --model_name FILE")
    args = parser.parse_args(argv)
    if args.save_runs:
        check_writable(args.save_runs)

    runs, rows = [], []
    for k in args.k:
        for attention_type in args.attention_types:
            results = []
            for seed in args.seeds:
                result = train_and_evaluate(k, attention_type, seed, args.steps, args.batch_graphs,
                                            hidden=args.hidden, num_heads=args.num_heads, lr=args.lr)
                if args.save_runs:
                    save_run(f"{args.save_runs}/dictionary_lookup_k{k}_{attention_type}_seed{seed}.pth", result, k,
                             attention_type, seed, args.hidden, args.num_heads)
                del result["model"], result["test_graph"]
                results.append(result)
                runs.append({"k": k, "attention_type": attention_type, "seed": seed, **result})
                print(f"k={k:3d} {attention_type:5s} seed {seed}: train {result['train_acc']:.3f}  "
                      f"test {result['test_acc']:.3f}  ({result['seconds']:.0f}s)", flush=True)
            rows.append((k, attention_type, [r["train_acc"] for r in results], [r["test_acc"] for r in results]))

    def mean_std(values):
        values = [100 * v for v in values]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.1f} ± {std:.1f}"

    print("\n| k | attention | train accuracy (%) | test accuracy (%) | chance (%) |\n|---|---|---|---|---|")
    for k, attention_type, train, test in rows:
        print(f"| {k} | {attention_type} | {mean_std(train)} | {mean_std(test)} | {100 / k:.1f} |")
    if args.output:
        write_json(args.output, {"settings": vars(args), "runs": runs})


if __name__ == "__main__":
    main()
