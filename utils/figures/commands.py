"""What `playground.py visualize_dataset` and `visualize_gat` draw: load the data or the trained model, pick the
figure, name its file, and say where it went. The drawing itself is in utils/figures/plots.py."""

from pathlib import Path

import torch

from utils import paths
from utils.datasets.catalog import load_graph
from utils.datasets.ppi import dataset_name_of, load_ppi
from utils.figures import plots
from utils.figures.trained_model import display_name, find_model, run_on_its_graph
from utils.plumbing.files import check_writable


def visualize_dataset(dataset_name, data_dir=None, output_dir=None, layout="kk", show=False, log=print):
    """Draw the graph and its degree statistics: any dataset the training scripts take (a name, or the path of an
    .npz graph). For PPI: the first training graph, coloured by label 0."""
    output_dir = Path(output_dir or paths.FIGURES_DIR)
    check_writable(output_dir)  # before the data and the layout, which take a while
    if dataset_name.lower() == "ppi":
        splits = load_ppi(data_dir)
        data, file_stem = splits["train"][0], dataset_name_of(splits)
        graph_name = f"{display_name(file_stem)} train graph 1"
        labels, class_names = data.labels[:, 0].long().numpy(), ["absent (0)", "present (1)"]
        legend_title = "PPI label 0"
    else:
        data = load_graph(dataset_name if dataset_name.endswith(".npz") else dataset_name.lower(), data_dir)
        graph_name = file_stem = data.name
        labels, class_names, legend_title = data.labels.numpy(), plots.class_names_for(data), "class"
    log(f"Laying out {graph_name}'s {data.num_nodes} nodes and computing edge betweenness ...")
    graph_path = plots.plot_graph(data.edge_index, labels, data.num_nodes,
                                  output_dir / f"{file_stem}_graph_{layout}.png", layout=layout,
                                  class_names=class_names, legend_title=legend_title, show=show,
                                  title=f"{graph_name}: {data.num_nodes} nodes ({layout} layout). Node size: degree, "
                                        f"edge width: edge betweenness")
    degrees_path, stats = plots.plot_degree_statistics(data.edge_index, data.num_nodes,
                                                       output_dir / f"{file_stem}_degrees.png", graph_name, show=show)
    log(f"{graph_name}: node {stats['max_degree_node']} has the most neighbours: {stats['max_neighbours']} "
        f"(+ self loop). Figures: {graph_path}, {degrees_path}")
    return [graph_path, degrees_path]


def visualize_gat(model_name=None, visualization_type="attention", data_dir=None, output_dir=None, layer=1, head=0,
                  node=None, layout="tree", label=0, show=False, dataset_name=None, compare_with=None, log=print):
    """Load a trained binary (any layer type) and draw its attention, attention entropy or embeddings.

    model_name: a file in models/binaries/ (or a path); None: the newest binary (of `dataset_name`, if
    given), or the committed Cora model when there is none. Cora-like models are shown on their whole
    graph; PPI models on the first test graph, nodes coloured by PPI label `label`. layer (attention only)
    counts from 1 (1 = the first layer), head from 0. compare_with (entropy only): a second binary of the
    same dataset, drawn side by side with the first (for example GAT next to GATv2).
    """
    output_dir = Path(output_dir or paths.FIGURES_DIR)
    check_writable(output_dir)  # before the model runs and the layout or t-SNE, which take a while
    path = find_model(model_name, dataset_name, log)
    run = run_on_its_graph(path, data_dir, label)
    model, dataset_name, graph, graph_name = run["model"], run["dataset_name"], run["graph"], run["graph_name"]
    labels, class_names, attention_per_layer = run["labels"], run["class_names"], run["attention"]
    hidden, num_layers = run["hidden"], len(model.layers)
    stem = f"{path.stem}_{model.layer_type.name}"
    if compare_with is not None and visualization_type != "entropy":
        raise ValueError("--compare_with works with --visualization_type entropy only")

    if visualization_type == "attention":
        heads = [gat_layer.num_heads for gat_layer in model.layers]
        if not 1 <= layer <= num_layers or not 0 <= head < heads[layer - 1]:
            raise ValueError(f"the model has {num_layers} layers (--layer 1 to {num_layers}, 1 = the first layer) "
                             f"with {heads} heads (--head from 0); got layer {layer}, head {head}")
        if node is None:
            node = plots.degree_statistics(graph.edge_index, graph.num_nodes)["max_degree_node"]
        if not 0 <= node < graph.num_nodes:
            raise ValueError(f"--node must be in [0, {graph.num_nodes - 1}], got {node}")
        output = plots.plot_neighbourhood_attention(
            graph.edge_index, attention_per_layer[layer - 1], labels, node,
            output_dir / f"{stem}_attention_node{node}_layer{layer}_head{head}.png", head=head,
            layer_name=f"{plots.describe_layer(layer - 1, num_layers)} ({model.config.attention_type})", layout=layout,
            class_names=class_names, legend_title=run["legend_title"], show=show,
            graph_name=graph_name)
    elif visualization_type == "entropy" and compare_with is not None:
        other_path = find_model(compare_with, None, log)
        other = run_on_its_graph(other_path, data_dir, label)
        if other["dataset_name"] != dataset_name or not torch.equal(other["graph"].edge_index, graph.edge_index):
            raise ValueError(f"--compare_with needs a model of the same dataset: {path.name} is {dataset_name}, "
                             f"{other_path.name} is {other['dataset_name']}")
        attention_by_model = {f"{path.stem} ({model.config.attention_type})": attention_per_layer,
                              f"{other_path.stem} ({other['model'].config.attention_type})": other["attention"]}
        output = plots.plot_attention_entropy_comparison(
            graph.edge_index, attention_by_model, graph.num_nodes,
            output_dir / f"{path.stem}_vs_{other_path.stem}_attention_entropy.png", show=show,
            title=f"{graph_name}: entropy of each node's incoming attention, learned vs uniform")
        for name, attention in attention_by_model.items():
            ratios = plots.entropy_summary(graph.edge_index, attention, graph.num_nodes)
            log(f"{name}: mean entropy, learned / uniform, per layer (from 1): "
                + ", ".join(f"{r:.3f}" for r in ratios))
    elif visualization_type == "entropy":
        output = plots.plot_attention_entropy(graph.edge_index, attention_per_layer, graph.num_nodes,
                                        output_dir / f"{stem}_attention_entropy.png", show=show,
                                        title=f"{graph_name} ({path.name}, {model.config.attention_type}): "
                                              f"entropy of each node's incoming attention, learned vs uniform")
        ratios = plots.entropy_summary(graph.edge_index, attention_per_layer, graph.num_nodes)
        log("mean entropy, learned / uniform, per layer (from 1): " + ", ".join(f"{r:.3f}" for r in ratios))
    elif visualization_type == "embeddings":
        # The output layer: what the classes (Cora) or the 121 labels (PPI) are read from.
        log(f"Computing the t-SNE of {graph.num_nodes} nodes' embeddings ...")
        output = plots.plot_embeddings_tsne(hidden[-1], labels, output_dir / f"{stem}_tsne_layer{num_layers}.png",
                                      class_names=class_names, legend_title=run["legend_title"], show=show,
                                      title=f"{graph_name}: t-SNE of the output layer's output "
                                            f"({plots.describe_layer(num_layers - 1, num_layers)}, {path.name})")
    else:
        raise ValueError(f"unknown visualization type {visualization_type!r}; use attention, entropy or embeddings")
    log(f"Wrote {output}")
    return output
