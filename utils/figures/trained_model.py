"""A trained model, found and run on the graph it trained on, for the figures to draw.

    path = find_model("cora_gat_seed0_20261202-013000")   # a run's name, a file in models/binaries/, or a path
    run = run_on_its_graph(path)                          # model, graph, labels, attention per layer, hidden
"""

from pathlib import Path

import torch

from models import Graph
from utils import paths
from utils.datasets.catalog import load_dataset_of_run
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.figures.plots import class_names_for
from utils.plumbing.files import display_path
from utils.runs import checkpoints
from utils.runs.pretrained import describe


def find_model(model_name, dataset_name, log):
    """--model_name as a path, a file in models/binaries/ or a run's name; without it, the newest binary,
    and where models/binaries/ has none (of Cora, or of any dataset), the committed Cora model."""
    if model_name is None:
        try:
            path = checkpoints.newest_binary(dataset_name)
        except checkpoints.CheckpointError:
            if dataset_name not in (None, "cora") or not paths.PRETRAINED_CORA.is_file():
                raise
            path = paths.PRETRAINED_CORA
            log(f"No trained {dataset_name + ' ' if dataset_name else ''}model in "
                f"{display_path(paths.BINARIES_DIR)} yet: using the committed one, "
                f"{display_path(path)} ({describe(path)}). Train your own with python training_script_cora.py")
            return path
        log(f"Using the newest {dataset_name + ' ' if dataset_name else ''}model: {path} (pick another with "
            f"--model_name RUN; python -m utils.runs lists the runs)")
        return path
    for candidate in (Path(model_name), paths.BINARIES_DIR / model_name, checkpoints.binary_path(model_name)):
        if candidate.is_file():
            return candidate
    return paths.BINARIES_DIR / model_name  # (missing: load_checkpoint says what there is)


def run_on_its_graph(path, data_dir=None, label=0):
    """Load a trained binary and run it once on the graph it is shown on, keeping its attention.

    The data is the run's own, as its checkpoint recorded it (utils/datasets/catalog.py: load_dataset_of_run):
    one-graph runs (Planetoid, an .npz graph, sbm, ogbn-arxiv) are shown on their whole graph; PPI models on the
    first test graph, nodes coloured by PPI label `label`. Returns a dict: model, dataset_name, graph, graph_name
    (what figures call the graph: 'cora', 'PPI test graph 1'), labels, class_names, legend_title (what the
    node colours are: 'class', 'PPI label 0'), attention (one [E, H] tensor
    per layer, aligned with graph.edge_index) and hidden (every layer's output).
    """
    model, checkpoint = checkpoints.model_from_checkpoint(path)
    state = checkpoint.get("training_state", {})
    dataset_name = state.get("dataset", "cora")
    data = load_dataset_of_run(state, data_dir)
    if "graph" not in data:
        graph, graph_name = data["test"][0], f"{display_name(dataset_name)} test graph 1"
        if not 0 <= label < graph.labels.shape[1]:
            raise ValueError(f"--label must be in [0, {graph.labels.shape[1] - 1}], got {label}")
        labels = graph.labels[:, label].long().numpy()
        class_names, legend_title = ["absent (0)", "present (1)"], f"PPI label {label}"
    else:
        graph = data["graph"]
        graph_name = graph.name
        labels, class_names, legend_title = graph.labels.numpy(), class_names_for(graph), "class"
    if graph.node_features.shape[1] != model.config.num_features_per_layer[0]:
        raise ValueError(f"{Path(path).name} expects {model.config.num_features_per_layer[0]} input features, but "
                         f"{graph_name} has {graph.node_features.shape[1]}")
    model.eval()
    with torch.no_grad():
        _, hidden, attention = model.forward_with_hidden(sparsify_if_mostly_zero(graph.node_features),
                                                         Graph(graph.edge_index, graph.num_nodes),
                                                         return_attention_weights=True)
    return {"model": model, "dataset_name": dataset_name, "graph": graph, "graph_name": graph_name, "labels": labels,
            "class_names": class_names, "legend_title": legend_title, "attention": attention, "hidden": hidden}


def display_name(dataset_name):
    """How figure titles name a many-graph dataset: 'PPI', and generated data as generated ('ppi-generated')."""
    return "PPI" if dataset_name == "ppi" else dataset_name
