"""Where a Cora epoch's time goes, phase by phase, and how far each phase is from this machine's limits.

    python -m benchmarks.phases --data_dir DIR            # IMP3, the paper's Cora model
    python -m benchmarks.phases --attention_type gatv2

Two probes first: the machine's float32 matrix-multiply rate (GFLOP/s, a 1024^3 matmul) and its memory
bandwidth (GB/s, copying a 256 MiB tensor). Then the paper's Cora model trains and evaluates, and the time of
each phase is taken by wrapping the ops of models/fast_ops.py that implement it (the layers themselves are not
changed; wall-clock time, which on the CPU is the time of the work):

    projection   W h (sparse input: a weighted gather-sum; dense: a matmul)        project
    dropout      the masks on inputs, projected features and attention              FastDropout
    softmax      the per-target softmax over edges                                  SortedEdgeSoftmax
    aggregation  the attention-weighted sum over each neighbourhood                 NeighbourhoodSum
    scores+rest  the rest of the layers' forward: per-edge scores, skip, heads, bias, ELU
    loss         loss and accuracy of the training nodes (and their .item())
    backward     loss.backward()
    optimizer    zero_grad and Adam's step
    eval         the validation pass's loss and accuracy (its forward is counted in the phases above)

The model runs as the trainer runs it: the training pass asks for the training nodes' logits and the
validation pass for the validation nodes' (a RestrictedGraph each), so the per-edge phases cover only the edges those
depend on. Each phase's work is estimated from the shapes (FLOPs for the projection and aggregation, bytes
moved for the memory-bound phases; per-edge work counted over the edges each pass keeps) and printed as
achieved GFLOP/s or GB/s next to the probes. The estimates are
lower bounds on the work (each value read or written once), so the percentages are upper bounds on how
close a phase is to the limit. The last line compares the sum of the phases with the epoch measured through
`training_script_cora.py` by `bench_speed --workloads cli`, if given with --cli_epoch_ms.
"""

import argparse
import collections
import contextlib
import statistics
import time

import torch
import torch.nn as nn

from models import Graph, autograd_functions, dropout, gat_layers
from models.layouts import receptive_field
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.plumbing.arguments import positive_int


def matmul_gflops(size=1024, repeats=10):
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


def copy_gbs(mebibytes=256, repeats=5):
    source = torch.randn(mebibytes * 2 ** 20 // 4)
    target = torch.empty_like(source)
    target.copy_(source)
    start = time.perf_counter()
    for _ in range(repeats):
        target.copy_(source)
    return 2 * source.numel() * 4 * repeats / (time.perf_counter() - start) / 1e9  # read + write


class PhaseClock:
    """Accumulates wall-clock seconds per phase name. `measure(name)` times a block, `wrap(name, f)` a
    function; time spent in a phase nested inside another is taken off the outer one."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.stack = []

    @contextlib.contextmanager
    def measure(self, name):
        self.stack.append(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.stack.pop()
            self.seconds[name] += elapsed
            if self.stack:
                self.seconds[self.stack[-1]] -= elapsed

    def wrap(self, name, function):
        def timed(*args, **kwargs):
            with self.measure(name):
                return function(*args, **kwargs)
        return timed


def main(argv=None):
    from utils.datasets.planetoid import load_planetoid
    from utils.training.one_graph import CITATION_ARCHITECTURE
    from utils.training.setup import build_model, make_optimizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--attention_type", choices=gat_layers.ATTENTION_TYPES, default="gat")
    parser.add_argument("--epochs", type=positive_int, default=200, help="measured epochs (after --warmup)")
    parser.add_argument("--warmup", type=positive_int, default=20)
    parser.add_argument("--cli_epoch_ms", type=float, default=None,
                        help="the script's epoch from bench_speed --workloads cli, to show the bookkeeping around it")
    args = parser.parse_args(argv)

    peak_gflops, peak_gbs = matmul_gflops(), copy_gbs()
    print(f"machine: {torch.get_num_threads()} threads; float32 matmul {peak_gflops:.0f} GFLOP/s; "
          f"memory copy {peak_gbs:.1f} GB/s")

    data = load_planetoid("cora", args.data_dir)
    features, edge_index, labels = sparsify_if_mostly_zero(data.node_features), data.edge_index, data.labels
    torch.manual_seed(0)
    model = build_model(CITATION_ARCHITECTURE, data.node_features.shape[1], data.num_classes, "IMP3",
                        attention_type=args.attention_type)
    optimizer = make_optimizer(model, 5e-3, 5e-4)
    loss_fn = nn.CrossEntropyLoss()
    # As the trainer does: the graph built once, restricted to the training and to the validation nodes.
    graph = Graph(edge_index, data.num_nodes)
    train_graph, val_graph = graph.restricted_to(data.train_indices, 2), graph.restricted_to(data.val_indices, 2)

    clock = PhaseClock()
    linear = gat_layers.project
    gat_layers.project = clock.wrap("projection", linear)
    # The Functions' forward passes (autograd's apply calls them in training; evaluation calls them directly).
    functions = {"softmax": autograd_functions.SortedEdgeSoftmax, "aggregation": autograd_functions.NeighbourhoodSum}
    forwards = {name: function.__dict__["forward"] for name, function in functions.items()}
    for name, function in functions.items():
        function.forward = clock.wrap(name, function.forward)
    layer_class = gat_layers.GATLayerImp3
    dropout_forward = dropout.FastDropout.forward  # the input's dropout too, dense or sparse
    dropout.FastDropout.forward = clock.wrap("dropout", dropout_forward)
    layer_forward = layer_class.forward
    layer_class.forward = clock.wrap("scores+rest", layer_forward)
    try:
        epoch_seconds = []
        for epoch in range(args.warmup + args.epochs):
            if epoch == args.warmup:
                clock.seconds.clear()
            start = time.perf_counter()
            model.train()
            with clock.measure("optimizer"):
                optimizer.zero_grad(set_to_none=True)
            # As the trainer does: only the training nodes' logits (the layers skip the other edges).
            logits = model(features, train_graph)
            with clock.measure("loss"):
                loss = loss_fn(logits, labels[data.train_indices])
                (logits.argmax(-1) == labels[data.train_indices]).float().mean().item()
            with clock.measure("backward"):
                loss.backward()
            with clock.measure("optimizer"):
                optimizer.step()
            loss.item()
            with clock.measure("eval (loss, metrics)"), torch.no_grad():
                model.eval()
                out = model(features, val_graph)
                loss_fn(out, labels[data.val_indices]).item()
                (out.argmax(-1) == labels[data.val_indices]).float().mean().item()
            if epoch >= args.warmup:
                epoch_seconds.append(time.perf_counter() - start)
    finally:
        gat_layers.project = linear
        for name, function in functions.items():
            function.forward = forwards[name]
        dropout.FastDropout.forward = dropout_forward
        layer_class.forward = layer_forward

    # Work of the forward passes of one epoch (training + validation; dropout only in training). Backward
    # and the rest are reported as time only.
    num_edges, heads = edge_index.shape[1], model.config.num_heads_per_layer
    widths = model.config.num_features_per_layer
    # Edges each layer works on: those into the nodes the training (validation) pass's logits depend on.
    kept = [[num_edges] * len(heads) for _ in range(2)]
    if args.attention_type == "gat":
        for kept_in_pass, split in zip(kept, (data.train_indices, data.val_indices)):
            for layer, needed in enumerate(receptive_field(edge_index, split, data.num_nodes, len(heads))):
                if needed is not None:
                    kept_in_pass[layer] = int(needed[edge_index[1]].sum())
    nnz = int(features.values().numel()) if features.layout != torch.strided else features.numel()
    projection_flops = 2 * nnz * heads[0] * widths[1] + 2 * data.num_nodes * heads[0] * widths[1] * heads[1] * widths[2]
    if args.attention_type == "gatv2":
        projection_flops *= 2  # W_s and W_t
    aggregation_flops = sum(2 * edges * h * f for kept_in_pass in kept for edges, h, f in zip(kept_in_pass, heads, widths[1:]))
    # read scores, max, exp, sum, divide: ~5 passes
    softmax_bytes = sum(4 * edges * h * 5 for kept_in_pass in kept for edges, h in zip(kept_in_pass, heads))
    dropout_bytes = 4 * 2 * (nnz + num_edges * sum(heads) + data.num_nodes * sum(h * f for h, f in zip(heads, widths[1:]))
                             + data.num_nodes * heads[0] * widths[1])
    work = {"projection": (2 * projection_flops, "flop"), "aggregation": (aggregation_flops, "flop"),
            "softmax": (softmax_bytes, "byte"), "dropout": (dropout_bytes, "byte")}

    epochs = args.epochs
    ms = {name: 1000 * seconds / epochs for name, seconds in clock.seconds.items()}
    epoch_ms = 1000 * statistics.median(epoch_seconds)
    print(f"\nCora, {args.attention_type.upper()} IMP3, {epochs} epochs after {args.warmup} warm-up; epoch "
          f"(train step + validation) median {epoch_ms:.1f} ms, mean {1000 * sum(epoch_seconds) / epochs:.1f} ms\n")
    print("Forward phases (projection to aggregation) add up the training and the validation pass.\n")
    print("| phase | ms per epoch | share | work per epoch | achieved | of the probe |\n|---|---|---|---|---|---|")
    total = sum(ms.values())
    order = ["projection", "dropout", "scores+rest", "softmax", "aggregation", "loss", "backward", "optimizer",
             "eval (loss, metrics)"]
    for name in order:
        value = ms.get(name, 0.0)
        line = f"| {name} | {value:.2f} | {100 * value / total:.0f} % |"
        if name in work and value > 0:
            amount, unit = work[name]
            rate = amount / (value / 1000) / 1e9
            peak = peak_gflops if unit == "flop" else peak_gbs
            label = "GFLOP/s" if unit == "flop" else "GB/s"
            line += f" {amount / 1e6:.1f} M{unit}s | {rate:.1f} {label} | {100 * rate / peak:.1f} % |"
        else:
            line += " | | |"
        print(line)
    print(f"| **sum of phases** | **{total:.2f}** | | | | |")
    if args.cli_epoch_ms:
        print(f"| the script's epoch (bench_speed cli) | {args.cli_epoch_ms:.2f} | | bookkeeping around the "
              f"phases: {args.cli_epoch_ms - total:.2f} ms | | |")


if __name__ == "__main__":
    main()
