"""GAT vs GATv2 on PPI-format data whose labels come from one matching neighbour: accuracy and attention.

    python -m benchmarks.matching_neighbour                     # generate data, train both, report, draw
    python -m benchmarks.matching_neighbour --data_dir DIR --models gat.pth gatv2.pth   # report on trained binaries

The data (`python -m utils.datasets.ppi_synthetic --labels matching_neighbour`) give every node an identity code
and a query code; its labels are copied from the neighbour whose identity equals its query. Which
neighbour matters depends on the node asking: static attention (GAT) cannot rank neighbours that way,
dynamic attention (GATv2) can. Both are trained with the paper's PPI architecture and the same budget.

Reported per model: test micro-F1, and per layer (heads averaged, on the first test graph) the share of
attention that lands on matching neighbours, how often the most-attended neighbour is a matching one
(self loops left out; chance is the mean fraction of a node's neighbours that match), and mean
entropy relative to uniform. Figures (of the first test graph): the entropy of both models side by side,
and the neighbourhood of its highest-degree node in layer 2 of 3 (layers are counted from 1, as everywhere), its
matching neighbours marked.
"""

import argparse
import tempfile
from pathlib import Path

import torch

from utils.datasets.ppi_synthetic import NUM_CODES, write_synthetic_ppi
from utils.plumbing.arguments import positive_int


def attention_on_matching(edge_index, attention, identity, query):
    """(share of attention on matching neighbours, fraction of nodes whose most-attended neighbour
    matches, chance of that) averaged over nodes with neighbours; attention [E, H] is head-averaged."""
    source, target = edge_index
    num_nodes = identity.numel()
    neighbour = source != target
    weights = attention.double().mean(1)
    match = neighbour & (identity[source] == query[target])
    has_neighbours = torch.bincount(target[neighbour], minlength=num_nodes) > 0
    share = torch.zeros(num_nodes, dtype=torch.float64).index_add_(0, target[match], weights[match])
    candidate = torch.where(neighbour, weights, torch.full_like(weights, -1.0))
    best = torch.full((num_nodes,), -1.0, dtype=torch.float64).scatter_reduce(0, target, candidate, "amax")
    is_best = neighbour & (candidate == best[target])
    best_matches = torch.zeros(num_nodes).index_add_(0, target[is_best], match[is_best].float()) > 0
    chance = (torch.bincount(target[match], minlength=num_nodes).double()
              / torch.bincount(target[neighbour], minlength=num_nodes).clamp_min(1))
    return (share[has_neighbours].mean().item(), best_matches[has_neighbours].float().mean().item(),
            chance[has_neighbours].mean().item())


def main(argv=None):
    from utils.datasets.ppi import load_ppi
    from utils.figures.plots import (degree_statistics, describe_layer, entropy_summary,
                                     plot_attention_entropy_comparison, plot_neighbourhood_attention)
    from utils.figures.trained_model import run_on_its_graph
    from utils.paths import FIGURES_DIR
    from utils.runs.checkpoints import make_checkpoint, save_binary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_dir", default=None, help="matching_neighbour data (DIR/ppi); default: generate it")
    parser.add_argument("--models", nargs=2, default=None, metavar=("GAT", "GATV2"),
                        help="trained binaries to report on instead of training here")
    parser.add_argument("--nodes", type=positive_int, nargs=2, default=(400, 600), metavar=("MIN", "MAX"),
                        help="nodes per generated graph")
    parser.add_argument("--epochs", type=positive_int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default=str(FIGURES_DIR), help="where the figures go")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = scratch
            write_synthetic_ppi(Path(scratch) / "ppi", nodes_per_graph=tuple(args.nodes), seed=args.seed,
                                label_rule="matching_neighbour")
        paths, test_f1 = args.models, {}
        if paths is None:
            from utils.training.many_graphs import train_many_graphs
            paths = []
            for attention_type in ("gat", "gatv2"):
                result = train_many_graphs(dict(num_of_epochs=args.epochs, patience_period=args.epochs, seed=args.seed,
                                            attention_type=attention_type, data_dir=data_dir, console_log_freq=10,
                                            checkpoint_freq=0, save_binary=False, last_checkpoint_seconds=None,
                                            progress_bar=False))
                test_f1[attention_type] = result["test_micro_f1"]
                checkpoint = make_checkpoint(result["model"], training_state={"dataset": "ppi"})
                paths.append(save_binary(checkpoint, f"ppi_{attention_type}", Path(scratch) / "binaries"))

        raw = load_ppi(data_dir, download=False, standardize=False)["test"][0]
        identity = raw.node_features[:, :NUM_CODES].argmax(1)
        query = raw.node_features[:, NUM_CODES:2 * NUM_CODES].argmax(1)
        runs = {}
        for path in paths:
            run = run_on_its_graph(path, data_dir)
            runs[run["model"].config.attention_type] = run
        graph = next(iter(runs.values()))["graph"]
        graph_name = "matching-neighbour test graph 1"

        print("\n| model | test micro-F1 | layer | attention on matching neighbours | most-attended neighbour "
              "matches | (chance) | entropy / uniform |\n|---|---|---|---|---|---|---|")
        for attention_type, run in runs.items():
            ratios = entropy_summary(graph.edge_index, run["attention"], graph.num_nodes)
            f1 = f"{test_f1[attention_type]:.3f}" if attention_type in test_f1 else "(trained elsewhere)"
            for layer, attention in enumerate(run["attention"]):
                share, best, chance = attention_on_matching(graph.edge_index, attention, identity, query)
                print(f"| {attention_type if layer == 0 else ''} | {f1 if layer == 0 else ''} | {layer + 1} | "
                      f"{100 * share:.1f} % | {100 * best:.1f} % | {100 * chance:.1f} % | {ratios[layer]:.3f} |")

        output_dir = Path(args.output_dir)
        entropy_png = plot_attention_entropy_comparison(
            graph.edge_index, {f"{name.upper()}": run["attention"] for name, run in runs.items()}, graph.num_nodes,
            output_dir / "matching_neighbour_entropy_gat_vs_gatv2.png",
            title=f"{graph_name} (PPI format, labels copied from one matching neighbour):\nentropy of each node's "
                  f"incoming attention")
        node = degree_statistics(graph.edge_index, graph.num_nodes)["max_degree_node"]
        # Nodes coloured by what matters here: the neighbours holding the identity code `node` asks for.
        source, target = graph.edge_index
        matching = source[(target == node) & (source != node) & (identity[source] == query[node])]
        roles = torch.zeros(graph.num_nodes, dtype=torch.long)
        roles[matching], roles[node] = 1, 2
        role_names = ["another neighbour", "a matching neighbour", f"node {node}, asking"]
        figures = [entropy_png]
        for name, run in runs.items():
            figures.append(plot_neighbourhood_attention(
                graph.edge_index, run["attention"][1], roles.numpy(), node,
                output_dir / f"matching_neighbour_{name}_attention_node{node}_layer2.png", head=0,
                layer_name=f"{describe_layer(1, len(run['attention']))} ({name})", class_names=role_names,
                graph_name=graph_name, legend_title="node"))
        print("\nFigures: " + ", ".join(str(f) for f in figures))


if __name__ == "__main__":
    main()
