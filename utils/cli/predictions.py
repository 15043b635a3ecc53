"""A trained model's predictions for every node of the data it trained on, written as one CSV file.

    python playground.py predict --model_name RUN_OR_PATH --output predictions.csv

One graph (Cora, an .npz graph of your own, ...): node, split (train, val or test: the split the run trained
with, a random one drawn again from its seed; empty for a node in none), label (the known class, empty for an
unlabelled node), predicted_class, predicted_name (where the data names its classes: Cora's and Citeseer's
topics, an .npz file's class_names), then p_<class> for every class (softmax probabilities). PPI (121 labels per
node, each its own yes/no): split, graph, node, predicted_labels (those with probability >= 0.5,
space-separated), then p_label_<l> for every label (sigmoid probabilities).
"""

import csv

import torch

from models import Graph
from utils.datasets.catalog import load_dataset_of_run
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.plumbing.files import atomic_write, display_path
from utils.runs import checkpoints
from utils.training.one_graph import EVAL_CHUNK_SIZE, EVAL_ONE_PASS_NODES, split_of_each_node
from utils.training.sampling import layerwise_inference


def write_predictions(model_path, output, data_dir=None, log=print):
    """Run the model saved at `model_path` on its data and write the CSV to `output` (atomically: a reader
    sees no file or the whole one). Returns the number of rows."""
    model, checkpoint = checkpoints.model_from_checkpoint(model_path)
    state = checkpoint.get("training_state") or {}
    data = load_dataset_of_run(state, data_dir)
    if "graph" in data:
        header, rows, confidence = _one_graph_rows(model, data["graph"], model_path, state.get("settings") or {})
    else:
        (header, rows), confidence = _many_graph_rows(model, data, model_path), None
    with atomic_write(output, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    log(f"Wrote the predictions of {display_path(model_path)} ({state.get('dataset', 'cora')}, {len(rows)} nodes) "
        f"to {display_path(output)}")
    log(describe_kept_model(state, confidence))
    return len(rows)


def describe_kept_model(state, confidence=None):
    """Which epoch's model predicted, and why its probabilities may be soft (confidence: the mean probability of
    each node's top class)."""
    kept, trained = state.get("best_epoch"), state.get("epoch")
    which = (f"The model kept at epoch {kept} of the {trained} trained predicted them" if kept and trained
             else "The saved model predicted them")
    line = (f"{which}: the paper's early stopping keeps the last epoch that was at its best on validation loss and "
            f"accuracy at once, often an early one.")
    if confidence is not None:
        line += (f" Its mean top-class probability is {confidence:.2f}: soft probabilities, whose ranking (the "
                 f"predicted class) is what it was kept for.")
    return line


def _one_graph_rows(model, graph, model_path, settings):
    logits = _logits(model, graph, model_path)
    probabilities = torch.softmax(logits, dim=1)
    names = graph.class_names if graph.class_names and len(graph.class_names) == probabilities.shape[1] else None
    header = ["node", "split", "label", "predicted_class", *(["predicted_name"] if names else []),
              *(f"p_{c}" for c in range(probabilities.shape[1]))]
    labels, splits = graph.labels.tolist(), split_of_each_node(graph, settings)
    predicted = probabilities.argmax(dim=1).tolist()
    rows = [[node, splits[node], "" if labels[node] < 0 else labels[node], predicted[node],
             *([names[predicted[node]]] if names else []), *map(_number, row.tolist())]
            for node, row in enumerate(probabilities)]
    return header, rows, probabilities.max(dim=1).values.mean().item()


def _many_graph_rows(model, splits, model_path):
    header, rows = None, []
    for split, graphs in splits.items():
        for index, graph in enumerate(graphs):
            probabilities = torch.sigmoid(_logits(model, graph, model_path))
            if header is None:
                header = ["split", "graph", "node", "predicted_labels",
                          *(f"p_label_{label}" for label in range(probabilities.shape[1]))]
            for node, row in enumerate(probabilities.tolist()):
                predicted = " ".join(str(label) for label, p in enumerate(row) if p >= 0.5)
                rows.append([split, index, node, predicted, *map(_number, row)])
    return header, rows


@torch.no_grad()
def _logits(model, graph, model_path):
    expected = model.config.num_features_per_layer[0]
    if graph.node_features.shape[1] != expected:
        raise checkpoints.CheckpointError(f"{display_path(model_path)} expects {expected} input features per node, "
                                          f"but {graph.name} has {graph.node_features.shape[1]}")
    chunk_size = EVAL_CHUNK_SIZE if graph.num_nodes > EVAL_ONE_PASS_NODES else None
    return layerwise_inference(model, sparsify_if_mostly_zero(graph.node_features),
                               Graph(graph.edge_index, graph.num_nodes), chunk_size)


def _number(value):
    return f"{value:.6g}"
