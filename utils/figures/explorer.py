"""The attention explorer: a trained model's attention on its graph as one self-contained, interactive HTML page.

    python playground.py explore --model_name RUN_OR_PATH [--output FILE.html] [--nodes 1358 306] [--graph 2]

Pick a node (by id, from the highest in-degree nodes or the misclassified test nodes, or by clicking one); its
neighbourhood up to the model's depth is drawn with every edge's attention (width and opacity) for a chosen layer and
head (or the mean over heads), each edge's value and the uniform 1/degree on hover, nodes coloured by true class,
predicted class or correctness; beside it the node's true and predicted class with probabilities, its attention
entropy per head against the uniform distribution's and its neighbours' classes (for PPI, one label at a time). A
second view draws the entropy histograms of the whole graph per layer; a click on a bar lists its nodes.

The page carries its data as base64 float32/int32 arrays (the exact values the model returned) and needs nothing
from the network: its JavaScript (explorer_page.html) is written for this project. A graph of at most
WHOLE_GRAPH_EDGES edges (Cora, Citeseer, PPI's graphs) is carried whole; a larger one carries the neighbourhoods, up
to the model's depth, of a bounded set of nodes (--nodes, or the highest in-degree and misclassified test nodes), and
says so on the page. More than MAX_NODES nodes, or neighbourhoods of more than MAX_EDGES edges, are refused.
"""

import base64
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from models import Graph
from utils import paths
from utils.datasets.catalog import load_dataset_of_run
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.figures.plots import class_names_for
from utils.figures.trained_model import display_name, find_model
from utils.plumbing.files import atomic_write, check_writable, display_path
from utils.runs import checkpoints
from utils.training.one_graph import split_of_each_node

TEMPLATE = Path(__file__).with_name("explorer_page.html")
WHOLE_GRAPH_EDGES = 200_000   # graphs up to this many edges are carried whole (Cora: 13,264; Citeseer: 12,431)
MAX_NODES = 500               # the most nodes --nodes may ask for
MAX_EDGES = 400_000           # the most edges the neighbourhoods of a page's nodes may hold
DEFAULT_NODES = 20            # of each kind (highest in-degree; misclassified test nodes) on a large graph
SPLIT_CODES = {"": 0, "train": 1, "val": 2, "test": 3}


class ExplorerError(ValueError):
    """What cannot be shown (a node out of range, too many nodes), said in one line."""


@dataclasses.dataclass
class ExplorerData:
    """Everything the page shows, for the nodes it carries (local ids 0..n-1).

    edge_index [2, E] local ids; attention: one [E, H] tensor per layer, aligned with edge_index's columns;
    probabilities [n, C] (softmax) or [n, L] (sigmoid, multilabel); labels [n] (-1: none) or [n, L] 0/1;
    splits [n] codes (SPLIT_CODES); node_ids [n]: the graph's ids of the carried nodes (None: all, in order);
    complete [n]: whether the page carries every incoming edge of the node (None: all of them)."""
    title: str
    note: str
    edge_index: torch.Tensor
    attention: list
    probabilities: torch.Tensor
    labels: torch.Tensor
    class_names: list
    splits: torch.Tensor
    multilabel: bool = False
    node_ids: torch.Tensor = None
    complete: torch.Tensor = None


def explore(model_name, output=None, data_dir=None, graph_index=0, nodes=None, readers=None, log=print):
    """Write the explorer page of a trained model (--model_name as the figures take it) and return its path.

    Everything a user can get wrong is said in one line before the slow work: a run that does not exist, an output
    that cannot be written, --nodes out of range or past MAX_NODES. readers: {checkpoint "kind": function
    (checkpoint, path, nodes) -> ExplorerData} for run files that are not GAT checkpoints (the dictionary-lookup
    benchmark's)."""
    if nodes is not None and len(nodes) > MAX_NODES:
        check_nodes(nodes, float("inf"))
    path = find_model(model_name, None, log)
    checkpoint = checkpoints.load_checkpoint(path)
    output = Path(output) if output else paths.FIGURES_DIR / f"{path.stem}_explorer.html"
    check_writable(output, is_file=True)
    reader = (readers or {}).get(checkpoint.get("kind"))
    data = reader(checkpoint, path, nodes) if reader else explorer_data_for_run(path, data_dir, graph_index, nodes,
                                                                                log)
    write_page(data, output)
    log(f"Wrote {display_path(output)} ({output.stat().st_size / 1e6:.2f} MB): open it in a browser")
    return output


def check_nodes(nodes, num_nodes):
    """--nodes, checked before any slow work: ids in range, at most MAX_NODES."""
    if nodes is None:
        return None
    if len(nodes) > MAX_NODES:
        raise ExplorerError(f"--nodes asks for {len(nodes)} nodes; a page carries at most {MAX_NODES} (their "
                            f"neighbourhoods up to the model's depth): ask for fewer")
    wrong = [node for node in nodes if not 0 <= node < num_nodes]
    if wrong:
        raise ExplorerError(f"--nodes: node {wrong[0]} is not in the graph (ids 0 to {num_nodes - 1})")
    return sorted(set(nodes))


@torch.no_grad()
def explorer_data_for_run(path, data_dir=None, graph_index=0, nodes=None, log=print):
    """The page's data for a run the training scripts trained: its model on its own data (a PPI model on test graph
    graph_index), attention of every layer and head."""
    model, checkpoint = checkpoints.model_from_checkpoint(path)
    state = checkpoint.get("training_state", {})
    dataset_name = state.get("dataset", "cora")
    data = load_dataset_of_run(state, data_dir)
    if "graph" in data:
        graph, multilabel = data["graph"], False
        graph_name = graph.name
        splits = torch.tensor([SPLIT_CODES[name] for name in split_of_each_node(graph, state.get("settings") or {})])
        class_names = class_names_for(graph)
    else:
        if not 0 <= graph_index < len(data["test"]):
            raise ExplorerError(f"--graph {graph_index}: the run's data has {len(data['test'])} test graphs "
                                f"(0 to {len(data['test']) - 1})")
        graph, multilabel = data["test"][graph_index], True
        graph_name = f"{display_name(dataset_name)} test graph {graph_index + 1}"
        splits = torch.full((graph.num_nodes,), SPLIT_CODES["test"])
        class_names = [f"label {label}" for label in range(graph.labels.shape[1])]
    nodes = check_nodes(nodes, graph.num_nodes)
    if graph.node_features.shape[1] != model.config.num_features_per_layer[0]:
        raise ExplorerError(f"{Path(path).name} expects {model.config.num_features_per_layer[0]} input features, "
                            f"but {graph_name} has {graph.node_features.shape[1]}")
    log(f"Running {Path(path).name} on {graph_name} ({graph.num_nodes} nodes, {graph.edge_index.shape[1]} edges) ...")
    model.eval()
    logits, attention = model(sparsify_if_mostly_zero(graph.node_features), Graph(graph.edge_index, graph.num_nodes),
                              return_attention_weights=True)
    probabilities = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
    labels = graph.labels.long()
    kind = f"{model.config.attention_type.upper()}, {model.layer_type.name}"
    data = ExplorerData(title=f"{graph_name}: attention of {Path(path).name} ({kind})",
                        note=f"{graph.num_nodes} nodes, {graph.edge_index.shape[1]} edges (self loops included), "
                             f"{len(attention)} layers; every layer and head is on this page.",
                        edge_index=graph.edge_index, attention=list(attention), probabilities=probabilities,
                        labels=labels, class_names=class_names, splits=splits, multilabel=multilabel)
    if nodes is None and graph.edge_index.shape[1] <= WHOLE_GRAPH_EDGES:
        return data
    return restricted(data, nodes if nodes is not None else default_nodes(data), len(attention))


def default_nodes(data):
    """The DEFAULT_NODES highest in-degree nodes and as many misclassified test nodes."""
    degree = torch.bincount(data.edge_index[1], minlength=data.labels.shape[0])
    chosen = set(degree.argsort(descending=True)[:DEFAULT_NODES].tolist())
    if not data.multilabel:
        wrong = (data.splits == SPLIT_CODES["test"]) & (data.labels >= 0) & (
            data.probabilities.argmax(dim=1) != data.labels)
        chosen |= set(wrong.nonzero().flatten()[:DEFAULT_NODES].tolist())
    return sorted(chosen)


def restricted(data, nodes, depth):
    """The page's data for `nodes` and their neighbourhoods up to `depth` hops, in local ids: every edge into a node
    within depth - 1 hops (all the attention the page draws around them), and the nodes those edges come from."""
    num_nodes = data.labels.shape[0]
    source, target = data.edge_index
    reached = torch.zeros(num_nodes, dtype=torch.bool)
    reached[torch.tensor(nodes, dtype=torch.long)] = True
    for _ in range(depth - 1):
        reached = reached.clone()
        reached[source[reached[target]]] = True
    complete, kept_edges = reached, reached[target]  # (nodes whose every incoming edge the page carries)
    if int(kept_edges.sum()) > MAX_EDGES:
        raise ExplorerError(f"the neighbourhoods of these {len(nodes)} nodes hold {int(kept_edges.sum())} edges, more "
                            f"than a page carries ({MAX_EDGES}); ask for fewer nodes with --nodes")
    carried_mask = complete.clone()
    carried_mask[source[kept_edges]] = True
    carried = carried_mask.nonzero().flatten()
    local = torch.full((num_nodes,), -1, dtype=torch.long)
    local[carried] = torch.arange(carried.numel())
    edge_index = torch.stack([local[source[kept_edges]], local[target[kept_edges]]])
    return dataclasses.replace(
        data, edge_index=edge_index, attention=[a[kept_edges] for a in data.attention],
        probabilities=data.probabilities[carried], labels=data.labels[carried], splits=data.splits[carried],
        node_ids=carried, complete=complete[carried],
        note=f"The graph has {num_nodes} nodes and {data.edge_index.shape[1]} edges; this page carries {len(nodes)} "
             f"of its nodes ({', '.join(map(str, nodes[:12]))}{', ...' if len(nodes) > 12 else ''}) and their "
             f"neighbourhoods up to {depth} hops: {carried.numel()} nodes, {edge_index.shape[1]} edges (the lists and "
             f"histograms count the {int(complete.sum())} nodes whose every incoming edge is here). Choose others "
             f"with --nodes.")


def _base64(tensor, dtype):
    return base64.b64encode(np.ascontiguousarray(tensor.detach().cpu().numpy().astype(dtype)).tobytes()).decode()


def page(data):
    """The HTML page (a string) for `data`."""
    num_nodes, num_edges = data.labels.shape[0], data.edge_index.shape[1]
    payload = {
        "title": data.title, "note": data.note, "num_nodes": num_nodes, "num_edges": num_edges,
        "heads": [int(a.shape[1]) for a in data.attention], "multilabel": data.multilabel,
        "num_outputs": int(data.probabilities.shape[1]), "class_names": [str(name) for name in data.class_names],
        "edges": _base64(torch.cat([data.edge_index[0], data.edge_index[1]]), "<i4"),
        "attention": [_base64(a.reshape(-1), "<f4") for a in data.attention],
        "probabilities": _base64(data.probabilities.reshape(-1), "<f4"),
        "labels": _base64(data.labels.reshape(-1), "<i4"), "splits": _base64(data.splits, "i1"),
        "node_ids": None if data.node_ids is None else _base64(data.node_ids, "<i4"),
        "complete": None if data.complete is None else _base64(data.complete, "i1"),
    }
    text = json.dumps(payload).replace("</", "<\\/")  # (inside a <script> element)
    template = TEMPLATE.read_text()
    title = data.title.replace("&", "&amp;").replace("<", "&lt;")
    return template.replace("<title>TITLE</title>", f"<title>{title}</title>").replace(
        '<script id="data" type="application/json">DATA</script>',
        f'<script id="data" type="application/json">{text}</script>')


def write_page(data, output):
    """Write the page to `output` atomically (a reader sees no file or the whole one); returns its path."""
    output = Path(output)
    with atomic_write(output, "w") as f:
        f.write(page(data))
    return output
