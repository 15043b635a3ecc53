"""PyTorch Geometric's GATConv trained under this repository's protocol: a fair peer for our test accuracies.

    python -m benchmarks.pyg_accuracy --datasets cora citeseer --inits 10 --num_threads 1 --output pyg_public.json
    python -m benchmarks.pyg_accuracy --datasets cora citeseer --split random --splits 10 --inits 2 --num_threads 1

The same as utils/training/one_graph.py: our loaders' data (row-normalised features, the symmetric edge_index
with one self loop per node), the public split or utils.datasets.splits.random_split (20/30 per class on the largest
connected component, every node kept for message passing), the paper's architecture (2 layers, 8 heads x 8
features with ELU, 1 averaged output head, LeakyReLU 0.2, dropout 0.6 on each layer's input and on the
attention), Adam lr 5e-3 with weight decay 5e-4 on every parameter, full-batch steps, and our EarlyStopping
(patience 100 on validation loss or accuracy, evaluated every epoch in eval mode; the kept model is the last
one at least as good as the best on both, and only it is tested, once).

Not the same, so compare the numbers in distribution (mean and interval over seeds), never seed by seed:
- random draws: PyG draws its dropout masks in its own order (input, then attention, per layer), and the
  initial weights come from other calls, so init seed s here and seed s of our trainer are unrelated runs;
- dropout: our layer also drops out the projected features W h before aggregating them, as the paper's
  TensorFlow code does; GATConv does not (PyG's examples/gat.py places dropout as here);
- initialisation: both are Glorot uniform, but PyG's glorot() takes the fans of the attention vector
  [1, H, F] as H and F, torch's xavier_uniform_ (ours) as H*F and F, so PyG's initial attention vectors
  are larger (bound sqrt(6/16) against sqrt(6/72) for 8 x 8).
GATConv is given add_self_loops=False: with True it would remove our self loops and add one per node again,
the same neighbourhoods; check_edge_index verifies the loop is there.

On CPU, two runs with the same arguments (and thread count) give the same numbers: each run seeds torch
with its init seed before building the model, and the splits come from numpy's platform-independent PCG64.
The interval over S splits x I inits treats the S*I runs as independent draws.
"""

import argparse
import datetime
import platform

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmarks.stats import format_summary, summarize
from utils.datasets.planetoid import PLANETOID_DATASETS, load_planetoid
from utils.datasets.splits import random_split, split_description
from utils.plumbing.arguments import non_negative_int, positive_int, writable_file
from utils.plumbing.files import write_json
from utils.progress import progress_bar, write
from utils.training.loop import EarlyStopping
from utils.training.metrics import accuracy

# The paper's transductive setup (utils/training/one_graph.py: CITATION_ARCHITECTURE, ONE_GRAPH_DEFAULTS).
HIDDEN_FEATURES, NUM_HEADS, DROPOUT = 8, 8, 0.6
LEARNING_RATE, WEIGHT_DECAY = 5e-3, 5e-4
PATIENCE, MAX_EPOCHS = 100, 10000
TRAIN_PER_CLASS, VAL_PER_CLASS = 20, 30


def _gat_conv():
    try:
        from torch_geometric.nn import GATConv
    except ImportError:
        raise SystemExit("PyTorch Geometric is not installed: python -m pip install -r requirements-bench.txt") \
            from None
    return GATConv


class PygGAT(nn.Module):
    """The paper's 2-layer GAT from PyG's GATConv: (x [N, F_in], edge_index [2, E]) -> logits [N, C].

    Dropout as in PyG's examples/gat.py: on the input of each layer (here) and on the attention (in GATConv)."""

    def __init__(self, num_in_features, num_classes, hidden_features=HIDDEN_FEATURES, num_heads=NUM_HEADS,
                 dropout=DROPOUT):
        super().__init__()
        GATConv = _gat_conv()
        self.dropout = dropout
        # Our edge_index already holds one self loop per node (see check_edge_index).
        self.conv1 = GATConv(num_in_features, hidden_features, heads=num_heads, dropout=dropout,
                             add_self_loops=False)
        self.conv2 = GATConv(num_heads * hidden_features, num_classes, heads=1, concat=False, dropout=dropout,
                             add_self_loops=False)

    def forward(self, node_features, edge_index):
        hidden = F.dropout(node_features, p=self.dropout, training=self.training)
        hidden = F.elu(self.conv1(hidden, edge_index))
        hidden = F.dropout(hidden, p=self.dropout, training=self.training)
        return self.conv2(hidden, edge_index)


def check_edge_index(edge_index, num_nodes):
    """Raise ValueError unless every node has exactly one self loop and no edge is repeated: then GATConv with
    add_self_loops=False attends over the same neighbourhoods (in-neighbours plus the node) as our layers."""
    sources, targets = edge_index
    is_loop = sources == targets
    loops_per_node = torch.bincount(sources[is_loop], minlength=num_nodes)
    if not bool((loops_per_node == 1).all()):
        raise ValueError(f"edge_index must hold exactly one self loop per node; "
                         f"{int((loops_per_node != 1).sum())} of {num_nodes} nodes do not")
    if torch.unique(targets * num_nodes + sources).numel() != edge_index.shape[1]:
        raise ValueError("edge_index holds repeated edges: they would be counted twice in the attention")


def train_pyg_gat(data, train_idx, val_idx, test_idx, seed, *, patience=PATIENCE, max_epochs=MAX_EPOCHS,
                  device="cpu"):
    """Train PygGAT on `data` (a GraphData) with our protocol; test the kept model on test_idx once.

    Returns {test_acc, best_val_acc, best_epoch, epochs}: best_val_acc and best_epoch are the kept model's
    (as in our trainer's results), epochs how many were run (counted from 1)."""
    check_edge_index(data.edge_index, data.num_nodes)
    data = data.to(device)
    train_idx, val_idx, test_idx = train_idx.to(device), val_idx.to(device), test_idx.to(device)
    node_features, edge_index, labels = data.node_features, data.edge_index, data.labels
    torch.manual_seed(seed)
    model = PygGAT(node_features.shape[1], data.num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    stopper = EarlyStopping(patience)

    epoch = 0
    while epoch < max_epochs:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(node_features, edge_index)[train_idx], labels[train_idx])
        loss.backward()
        optimizer.step()
        epoch += 1

        model.eval()
        with torch.no_grad():
            val_logits = model(node_features, edge_index)[val_idx]
        val_loss = F.cross_entropy(val_logits, labels[val_idx]).item()
        if stopper.step(epoch, val_loss, accuracy(val_logits, labels[val_idx]), model):
            break

    model.load_state_dict(stopper.best_state)
    model.eval()
    with torch.no_grad():
        test_acc = accuracy(model(node_features, edge_index)[test_idx], labels[test_idx])
    return dict(test_acc=test_acc, best_val_acc=stopper.best_model_val_metric, best_epoch=stopper.best_epoch,
                epochs=epoch)


def splits_to_run(data, split, num_splits, first_split_seed):
    """[(split_seed or None, {train, val, test} indices)]: the public split once, or num_splits random ones."""
    if split == "public":
        return [(None, {"train": data.train_indices, "val": data.val_indices, "test": data.test_indices})]
    return [(seed, random_split(data.labels, data.edge_index, data.num_nodes, TRAIN_PER_CLASS, VAL_PER_CLASS, seed))
            for seed in range(first_split_seed, first_split_seed + num_splits)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=PLANETOID_DATASETS, default=["cora"])
    parser.add_argument("--split", choices=("public", "random"), default="public",
                        help="public: the Planetoid split; random: 20/30 per class on the largest component")
    parser.add_argument("--splits", type=positive_int, default=10, help="with --split random: how many splits")
    parser.add_argument("--inits", type=positive_int, default=10, help="initialisation seeds per split")
    parser.add_argument("--first_seed", type=non_negative_int, default=0, help="the first initialisation seed")
    parser.add_argument("--first_split_seed", type=non_negative_int, default=0,
                        help="with --split random: the first split seed")
    parser.add_argument("--patience", type=positive_int, default=PATIENCE)
    parser.add_argument("--max_epochs", type=positive_int, default=MAX_EPOCHS)
    parser.add_argument("--num_threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where every run trains (default: cuda when there is a GPU); recorded in the JSON")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--output", type=writable_file, default=None,
                        help="write every run and the summaries as JSON here")
    args = parser.parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    _gat_conv()  # fail now, not after loading the data

    graphs = {name: load_planetoid(name, args.data_dir) for name in args.datasets}
    runs, summaries, split_descriptions = [], {}, {}
    total = len(graphs) * (1 if args.split == "public" else args.splits) * args.inits
    bar = progress_bar(total=total, desc="runs", unit="run")
    for name, data in graphs.items():
        test_accuracies = []
        for split_seed, split in splits_to_run(data, args.split, args.splits, args.first_split_seed):
            if split_seed is not None:
                split_descriptions.setdefault(name, []).append(
                    split_description(split, split_seed, TRAIN_PER_CLASS, VAL_PER_CLASS))
            for init_seed in range(args.first_seed, args.first_seed + args.inits):
                result = train_pyg_gat(data, split["train"], split["val"], split["test"], init_seed,
                                       patience=args.patience, max_epochs=args.max_epochs, device=args.device)
                runs.append(dict(dataset=name, split=args.split, split_seed=split_seed, init_seed=init_seed, **result))
                test_accuracies.append(result["test_acc"])
                where = "public split" if split_seed is None else f"split seed {split_seed}"
                bar.update()
                write(f"[{len(runs)}/{total}] {name} {where}, init seed {init_seed}: test acc "
                      f"{result['test_acc']:.4f} (kept epoch {result['best_epoch']}, val acc "
                      f"{result['best_val_acc']:.4f}, {result['epochs']} epochs)")
        summaries[name] = summarize(test_accuracies)
    bar.close()
    print()
    for name, summary in summaries.items():
        print(f"{name} ({args.split} split): PyG GATConv test accuracy {format_summary(summary)}")

    if args.output:
        import torch_geometric
        write_json(args.output, {
            "date": datetime.date.today().isoformat(), "machine": platform.platform(), "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__, "num_threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
            "settings": dict(vars(args), hidden_features=HIDDEN_FEATURES, num_heads=NUM_HEADS, dropout=DROPOUT,
                             lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY),
            "split_descriptions": split_descriptions, "summaries": summaries, "runs": runs})
        print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
