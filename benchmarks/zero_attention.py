"""The original pytorch-GAT's open question, measured: why attention in deeper PPI layers looked "almost all 0",
and why the model still reached its micro-F1.

    python -m benchmarks.zero_attention                       # trains on generated PPI-format data
    python -m benchmarks.zero_attention --data_dir DIR --model models/binaries/<run>.pth

Trains the paper's PPI architecture (3 layers, 4/4/6 heads, 256 features, skip connections) on
generated PPI-format data, or takes a trained binary with --model (for example one trained on the
real PPI), and runs it on the validation and test graphs. Per layer it reports:

- the spread of the scores: how far each node's best incoming score lies below the layer's global
  maximum (gap d, median and max over nodes and heads);
- how many nodes' whole incoming attention vanishes if the softmax subtracts one *global* maximum
  instead of each neighbourhood's own: exactly 0 in float32 (d beyond ~87-104), and below half of
  what it should be with the original pytorch-GAT normalisation exp(e - max) / (sum + 1e-16), which
  starts to lose attention when a neighbourhood's sum falls towards 1e-16 (d beyond ~37);
- how much of the layer's output comes through the skip connection versus the attention-weighted sum
  (mean over nodes of |skip| / (|skip| + |attention part|), per-node L2 norms over all heads);

and the test micro-F1 of the model as trained, with the original global-max normalisation, and with
the attention part replaced by zeros in layers 2-3 (skip connections only) and in all layers.
None of this is in the layers' code path: the scores are recomputed here from the layers' weights,
and checked against the attention the layer itself returns.
"""

import argparse
import math
import tempfile
from pathlib import Path

import torch

from utils.plumbing.arguments import positive_int

ORIGINAL_EPSILON = 1e-16  # what the original implementation added to the softmax denominator


def edge_scores(layer, x, edge_index):
    """The layer's unnormalised scores e_ij [E, H] on input x (eval mode): GAT or GATv2."""
    source, target = edge_index
    proj = layer.linear_proj(x).view(-1, layer.num_heads, layer.num_out_features)
    if layer.attention_type == "gat":
        source_half = (proj * layer.scoring_fn_source).sum(-1)
        target_half = (proj * layer.scoring_fn_target).sum(-1)
        return layer.leaky_relu(source_half[source] + target_half[target])
    proj_target = layer.linear_proj_target(x).view(-1, layer.num_heads, layer.num_out_features)
    return (layer.leaky_relu(proj[source] + proj_target[target]) * layer.scoring_fn).sum(-1)


def per_target_sum(values, target, num_nodes):
    return values.new_zeros((num_nodes,) + values.shape[1:]).index_add_(0, target, values)


def global_max_attention(scores, target, num_nodes, epsilon):
    """Softmax normalised with one global maximum per head, as in the original implementation."""
    exp_scores = (scores - scores.max(dim=0, keepdim=True).values).exp()
    return exp_scores / (per_target_sum(exp_scores, target, num_nodes)[target] + epsilon)


def analyse_layer(layer, x, edge_index):
    """Numbers for one layer on input x; returns a dict."""
    num_nodes = x.shape[0]
    source, target = edge_index
    with torch.no_grad():
        scores = edge_scores(layer, x, edge_index)
        # Sanity check: the recomputed scores, normalised per target, give the layer's own attention.
        best_per_target = scores.new_full((num_nodes, layer.num_heads), -math.inf).scatter_reduce(
            0, target[:, None].expand_as(scores), scores, "amax")
        own = (scores - best_per_target[target]).exp()
        own = own / per_target_sum(own, target, num_nodes)[target]
        difference = (own - layer.attention_weights).abs().max().item()
        if difference > 1e-4:
            raise RuntimeError(f"recomputed attention differs from the layer's by {difference}: the analysis is wrong")

        has_edges = torch.bincount(target, minlength=num_nodes) > 0
        gap = (scores.max(dim=0).values - best_per_target)[has_edges]                      # [nodes, H]
        exact = per_target_sum(global_max_attention(scores, target, num_nodes, 0.0).nan_to_num(0.0),
                               target, num_nodes)[has_edges]
        original = per_target_sum(global_max_attention(scores, target, num_nodes, ORIGINAL_EPSILON),
                                  target, num_nodes)[has_edges]

        # The two parts of the output before heads are combined: sum_j a_ij W h_j and the skip term.
        proj = layer.linear_proj(x).view(num_nodes, layer.num_heads, layer.num_out_features)
        attended = per_target_sum(layer.attention_weights[:, :, None] * proj[source], target, num_nodes)
        if x.shape[-1] == layer.num_out_features:
            skip = x[:, None, :].expand_as(attended)
        else:
            skip = layer.skip_proj(x).view_as(attended)
        skip_norm, attended_norm = skip.flatten(1).norm(dim=1), attended.flatten(1).norm(dim=1)
        skip_share = (skip_norm / (skip_norm + attended_norm).clamp_min(1e-30))[has_edges]

    return {"gap_median": gap.median().item(), "gap_max": gap.max().item(),
            "zero_global_max": (exact == 0).float().mean().item(),
            "lost_original": (original < 0.5).float().mean().item(),
            "zero_per_target": (per_target_sum(own, target, num_nodes)[has_edges] == 0).float().mean().item(),
            "skip_share": skip_share.mean().item(), "checked_difference": difference}


def test_micro_f1(model, graphs, replace=None):
    """Micro-F1 over graphs, with replace = {layer index: function standing in for that layer's _attend}."""
    from utils.training.metrics import micro_f1
    replace = replace or {}
    try:
        for index, attend in replace.items():
            model.layers[index]._attend = attend(model.layers[index])
        model.eval()
        with torch.no_grad():
            logits = [model(g.node_features, g.edge_index) for g in graphs]
        return micro_f1(torch.cat([g.labels for g in graphs]), torch.cat(logits))
    finally:
        for index in replace:
            del model.layers[index]._attend  # back to the class's own method


def zero_attention(layer):
    """_attend without attention: the layer's output is its skip connection (and bias) only."""
    def attend(nodes_features_proj, source_terms, target_terms, graph, **_):
        return torch.zeros_like(nodes_features_proj), nodes_features_proj.new_zeros(graph.num_edges, layer.num_heads)
    return attend


def original_normalisation(layer):
    """_attend with the softmax normalised by one global maximum and 1e-16 added to the denominator."""
    def attend(nodes_features_proj, source_terms, target_terms, graph, **_):
        source_ids, target_ids = graph.edge_index
        scores = layer.leaky_relu(source_terms[source_ids] + target_terms[target_ids])
        if layer.attention_type == "gatv2":
            scores = (scores * layer.scoring_fn).sum(-1)
        num_nodes = nodes_features_proj.shape[0]
        attention = global_max_attention(scores, target_ids, num_nodes, ORIGINAL_EPSILON)
        return per_target_sum(attention[:, :, None] * nodes_features_proj[source_ids], target_ids, num_nodes), attention
    return attend


def main(argv=None):
    from utils.datasets.ppi import load_ppi
    from utils.datasets.ppi_synthetic import write_synthetic_ppi

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_dir", default=None,
                        help="PPI-format data (DIR/ppi); without it, generated data in a temporary folder")
    parser.add_argument("--model", default=None, help="a trained PPI binary; without it, train one here")
    parser.add_argument("--epochs", type=positive_int, default=60, help="training epochs when training here")
    parser.add_argument("--nodes", type=positive_int, nargs=2, default=(400, 600), metavar=("MIN", "MAX"),
                        help="nodes per generated graph")
    parser.add_argument("--attention_type", choices=("gat", "gatv2"), default="gat", help="when training here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = scratch
            write_synthetic_ppi(Path(scratch) / "ppi", nodes_per_graph=tuple(args.nodes), seed=args.seed)
            print(f"Generated PPI-format data (neighbour_mean labels, {args.nodes[0]}-{args.nodes[1]} nodes per graph)")
        splits = load_ppi(data_dir, download=False)
        if args.model:
            from utils.runs.checkpoints import model_from_checkpoint
            model, _ = model_from_checkpoint(args.model, log_attention_weights=True)
        else:
            from utils.training.many_graphs import train_many_graphs
            config = dict(num_of_epochs=args.epochs, patience_period=args.epochs, data_dir=data_dir, seed=args.seed,
                          attention_type=args.attention_type, console_log_freq=10, checkpoint_freq=0,
                          save_binary=False, last_checkpoint_seconds=None, enable_tensorboard=False)
            model = train_many_graphs(config, splits=splits)["model"]
            for layer in model.layers:
                layer.log_attention_weights = True
        model = model.cpu().eval()

    graphs = splits["valid"] + splits["test"]
    # Feed every layer its real input on each graph, and analyse.
    inputs = {}
    hooks = [layer.register_forward_pre_hook(lambda layer, args, i=i: inputs.__setitem__(i, args[0]))
             for i, layer in enumerate(model.layers)]
    per_layer = [[] for _ in model.layers]
    with torch.no_grad():
        for graph in graphs:
            model(graph.node_features, graph.edge_index)
            for i, layer in enumerate(model.layers):
                # Re-run this layer alone so attention_weights belongs to this input.
                layer(inputs[i], graph.edge_index)
                per_layer[i].append((analyse_layer(layer, inputs[i], graph.edge_index), graph.num_nodes))
    for hook in hooks:
        hook.remove()

    print(f"\n{model.config.attention_type.upper()} ({model.config.num_of_layers} layers, heads "
          f"{model.config.num_heads_per_layer}), {len(graphs)} validation + test graphs, "
          f"{sum(g.num_nodes for g in graphs)} nodes\n")
    print("| layer | score gap to global max: median / max | attention exactly 0 with one global max "
          "| attention lost (< 1/2) with the original global max + 1e-16 | exactly 0 with per-target max "
          "| output through the skip connection |\n|---|---|---|---|---|---|")
    for i, results in enumerate(per_layer):
        weights = [n for _, n in results]
        total = sum(weights)

        def mean(key):
            return sum(r[key] * n for r, n in results) / total
        print(f"| {i + 1} | {sum(r['gap_median'] * n for r, n in results) / total:.1f} / "
              f"{max(r['gap_max'] for r, _ in results):.1f} | {100 * mean('zero_global_max'):.1f} % | "
              f"{100 * mean('lost_original'):.1f} % | {100 * mean('zero_per_target'):.1f} % | "
              f"{100 * mean('skip_share'):.0f} % |")

    # Micro-F1 on the test graphs under each variant of the attention.
    test, layers = splits["test"], range(len(model.layers))
    variants = {
        "as trained (softmax with each target's own max)": test_micro_f1(model, test),
        "original normalisation (one global max + 1e-16) in every layer": test_micro_f1(
            model, test, {i: original_normalisation for i in layers}),
        "attention part zeroed in layers 2-3 (skip connection only there)": test_micro_f1(
            model, test, {i: zero_attention for i in layers if i >= 1}),
        "attention part zeroed in every layer (skip connections only)": test_micro_f1(
            model, test, {i: zero_attention for i in layers}),
    }
    print("\n| model | test micro-F1 |\n|---|---|")
    for name, value in variants.items():
        print(f"| {name} | {value:.3f} |")


if __name__ == "__main__":
    main()
