"""The one-graph (transductive) trainer: some of a graph's nodes labelled for training (Cora, Citeseer, Pubmed, ...).

`train_one_graph` builds the data, the model and the optimizer, says what one epoch (full-batch, or on
neighbour-sampled mini-batches) and one evaluation are, and hands them to `fit` (utils/training/loop.py); the
steps it shares with the many-graph trainer are in utils/training/harness.py.
"""

import contextlib
import dataclasses

import torch
import torch.nn as nn

from models import Graph
from utils.datasets.catalog import load_graph
from utils.datasets.disk_graph import DiskGraph, is_disk_graph, open_disk_graph
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.datasets.names import ONE_GRAPH_DATASETS
from utils.datasets.splits import SplitError, random_split, split_description
from utils.plumbing.arguments import SettingsError
from utils.runs.run import COMMON_DEFAULTS, claim_run
from utils.training import distributed, sampling
from utils.training.architecture import (ARCHITECTURE_KEYS, describe_architecture, from_checkpoint_model, recorded,
                                         resolve_architecture)
from utils.training.harness import build, fit_and_finish, seed_and_place, start
from utils.training.metrics import accuracy_on_device, num_correct_on_device
from utils.training.sampling import InNeighbours, NeighbourSampler
from utils.training.setup import ATTENTION_NAMES, step_seed, to_device

# The paper's transductive architecture (Cora, Citeseer): 8 heads x 8 features, 1 output head.
CITATION_ARCHITECTURE = dict(num_of_layers=2, num_heads_per_layer=[8, 1], hidden_features=[8],
                             add_skip_connection=False, bias=True, dropout=0.6)

# Pubmed in the paper: 8 output heads, lr 0.01, weight decay 0.001 (the rest as Cora).
PUBMED_ARCHITECTURE = dict(CITATION_ARCHITECTURE, num_heads_per_layer=[8, 8])

# lr, weight_decay and the architecture settings (ARCHITECTURE_KEYS) are None here: each dataset's own
# (OPTIMIZER_SETTINGS, architecture_for) unless given.
ONE_GRAPH_DEFAULTS = dict(COMMON_DEFAULTS, dataset_name="cora", num_of_epochs=10000, lr=None, weight_decay=None,
                          console_log_freq=100, checkpoint_freq=1000, fanouts=None, batch_size=256,
                          eval_chunk_size=None, split=None, train_per_class=20, val_per_class=30, split_seed=0,
                          largest_component=True, **dict.fromkeys(ARCHITECTURE_KEYS))

# The paper's Adam settings: Cora's and Citeseer's for every dataset but Pubmed.
CITATION_OPTIMIZER = dict(lr=5e-3, weight_decay=5e-4)
OPTIMIZER_SETTINGS = {"pubmed": dict(lr=1e-2, weight_decay=1e-3)}

# Without --eval_chunk_size: graphs up to this many nodes are evaluated in one forward pass, larger ones
# layer by layer over chunks of EVAL_CHUNK_SIZE target nodes.
EVAL_ONE_PASS_NODES = 500_000
EVAL_CHUNK_SIZE = 100_000

# ogbn-arxiv: 3 layers of 3 heads x 250 features with skip connections, the shape of the GAT that DGL's
# ogbn-arxiv example trains (without its batch norm and label-reuse tricks); dropout 0.5. Not measured here.
ARXIV_ARCHITECTURE = dict(num_of_layers=3, num_heads_per_layer=[3, 3, 3], hidden_features=[250, 250],
                          add_skip_connection=True, bias=True, dropout=0.5)


def architecture_for(dataset_name):
    """The dataset's default architecture (the paper's for Cora, Citeseer and Pubmed)."""
    return {"ogbn-arxiv": ARXIV_ARCHITECTURE, "pubmed": PUBMED_ARCHITECTURE}.get(dataset_name, CITATION_ARCHITECTURE)


def with_dataset_defaults(config, resume=None):
    """`config` with every setting left to the dataset (None) filled in: Adam's lr and weight decay and the
    architecture (a resumed run older than the architecture flags: the shape its checkpoint holds). Returns
    (settings, architecture for build_model); the settings record the architecture as it is built."""
    optimizer = OPTIMIZER_SETTINGS.get(config["dataset_name"], CITATION_OPTIMIZER)
    config = dict(config, **{key: value for key, value in optimizer.items() if config[key] is None})
    if resume is not None:
        config = from_checkpoint_model(config, resume)
    architecture = resolve_architecture(config, architecture_for(config["dataset_name"]))
    return dict(config, **recorded(architecture)), architecture


def choose_split(data, config, check_flags=True):
    """(graph with the run's train/val/test nodes, what the split is): the graph's public split, or a random one
    drawn per class (utils/datasets/splits.py). --split's default: public where the graph has one, random elsewhere.
    check_flags: refuse random-split flags given with a public split (a new run's; a run saved before they were
    refused keeps them, and they mean nothing there)."""
    split = config["split"] or ("public" if data.train_indices is not None else "random")
    if split == "public":
        if data.train_indices is None:
            raise SettingsError(f"{data.name} has no public split; train it with --split random")
        given = [key for key in ("split_seed", "train_per_class", "val_per_class", "largest_component")
                 if config[key] != ONE_GRAPH_DEFAULTS[key]]
        if check_flags and given:
            key = given[0]
            flag = f"--{key} {config[key]}" if key != "largest_component" else "--no_largest_component"
            raise SettingsError(f"{flag} shapes a random split, but {data.name} trains on its public split; "
                                f"add --split random, or leave {flag.split()[0]} out")
        return data, {"split": "public"}
    try:
        nodes = random_split(data.labels, data.edge_index, data.num_nodes, config["train_per_class"],
                             config["val_per_class"], config["split_seed"], config["largest_component"])
    except SplitError as error:
        raise SettingsError(f"{data.name}: {error}") from None
    described = split_description(nodes, config["split_seed"], config["train_per_class"], config["val_per_class"],
                                  config["largest_component"])
    return dataclasses.replace(data, train_indices=nodes["train"], val_indices=nodes["val"],
                               test_indices=nodes["test"]), described


def split_of_each_node(graph, settings):
    """'train', 'val', 'test' or '' for every node: the split the run's settings choose on this graph (all '' for a
    model saved without its settings on a graph without a public split: its split is not known)."""
    if not settings and graph.train_indices is None:
        return [""] * graph.num_nodes
    config = dict(ONE_GRAPH_DEFAULTS, **{key: value for key, value in settings.items() if key in ONE_GRAPH_DEFAULTS})
    split_graph, _ = choose_split(graph, config, check_flags=False)
    names = [""] * graph.num_nodes
    for name, nodes in (("train", split_graph.train_indices), ("val", split_graph.val_indices),
                        ("test", split_graph.test_indices)):
        for node in nodes.tolist():
            names[node] = name
    return names


def train_one_graph(config=None, log=print, data=None):
    """Train GAT on one graph (Cora by default) with the paper's setup. Returns the results dict (plus 'history'
    and 'model'). `config` overrides ONE_GRAPH_DEFAULTS (with 'resume', the checkpoint's settings); `data`
    skips loading. Raises TrainingInterrupted after saving when stopped by Ctrl-C or SIGTERM.

    With `fanouts`, training runs on neighbour-sampled mini-batches of `batch_size` training nodes
    (utils/training/sampling.py); under torchrun, each process takes its share of every batch's nodes."""
    config, resume, ctx, log = start(ONE_GRAPH_DEFAULTS, config, ONE_GRAPH_DATASETS, "training_script_cora.py", log)
    config, architecture = with_dataset_defaults(config, resume)
    _check_settings(config, ctx, architecture, resume)
    config, device = seed_and_place(config, ctx, log)
    if data is None:
        data = (open_disk_graph(config["dataset_name"]) if is_disk_graph(config["dataset_name"]) else
                load_graph(config["dataset_name"], config["data_dir"]))
    on_disk = isinstance(data, DiskGraph)
    if on_disk:
        _check_disk_settings(config, data)
    data, split = choose_split(data, config, check_flags=resume is None)
    config = dict(config, split=split["split"])  # (saved with the run: --resume draws the same split)
    graph = DiskLabelledGraph(data, device) if on_disk else LabelledGraph(data.to(device))
    host_graph = data  # (on the CPU: the sampler draws there)

    model, trained, optimizer, precision = build(architecture, graph.num_features, data.num_classes, config,
                                                 resume, ctx, device)
    if config["fanouts"]:
        epochs = SampledEpochs(model, trained, optimizer, graph, host_graph, config, ctx, precision)
    else:
        epochs = FullBatchEpochs(model, optimizer, graph, precision)
    chunk_size = config["eval_chunk_size"] or (EVAL_CHUNK_SIZE if data.num_nodes > EVAL_ONE_PASS_NODES or on_disk
                                               else None)

    def evaluate(split):
        return graph.evaluate(model, split, chunk_size, precision)

    config = claim_run(config)  # (data and model are ready: the run's name and folder, right before it trains)
    layer_type = model.layer_type.name
    for line in _describe_training(config, data, graph, split, layer_type):
        log(line)
    results = {"dataset": data.name, "layer_type": layer_type, "attention_type": config["attention_type"],
               "seed": config["seed"], "processes": ctx.world_size, "split": split, **recorded(architecture),
               "lr": config["lr"], "weight_decay": config["weight_decay"], "precision": config["precision"],
               "fanouts": config["fanouts"], "batch_size": config["batch_size"] if config["fanouts"] else None}
    return fit_and_finish(model, optimizer, epochs.train, evaluate, config, "acc", results, resume=resume, ctx=ctx,
                          precision=precision, log=log, generators=epochs.generators,
                          epochs_can_be_abandoned=config["fanouts"] is not None)


def _check_settings(config, ctx, architecture, resume):
    if ctx.is_distributed and not config["fanouts"]:
        raise SettingsError("full-batch training of one graph cannot be split between processes; under torchrun "
                            "train on sampled mini-batches (--fanouts 10 10 --batch_size 256, say), or run "
                            "with plain python")
    if resume is None and not config["fanouts"] and config["batch_size"] != ONE_GRAPH_DEFAULTS["batch_size"]:
        raise SettingsError(f"--batch_size {config['batch_size']} sizes sampled mini-batches, but without --fanouts "
                            f"training is full-batch; add --fanouts (one number per layer), or leave --batch_size out")
    if config["fanouts"] and len(config["fanouts"]) != architecture["num_of_layers"]:
        raise SettingsError(f"--fanouts needs one number per GAT layer ({architecture['num_of_layers']} for "
                            f"{config['dataset_name']}), got {config['fanouts']}")


def _check_disk_settings(config, disk):
    if not config["fanouts"]:
        raise SettingsError(f"{disk.folder} is a graph on disk: it trains on sampled mini-batches, which read only the "
                            f"rows they need; add --fanouts (one number per layer, e.g. --fanouts 10 10)")
    if config["split"] == "random" or disk.train_indices is None:
        raise SettingsError(f"{disk.folder} trains on the split written with it (train.npy, val.npy, test.npy); a "
                            f"random split would read the whole graph: write the graph with the split you want")


def _describe_training(config, data, graph, split, layer_type):
    attention = ATTENTION_NAMES[config["attention_type"]]
    lines = [f"Training {attention} ({layer_type}) on {data.name}: {data.num_nodes} nodes, "
             f"{graph.num_edges} edges, "
             f"{len(data.train_indices)}/{len(data.val_indices)}/{len(data.test_indices)} train/val/test"
             + (" (public split)" if split["split"] == "public" else
                f" (random split {config['split_seed']}: {config['train_per_class']} + {config['val_per_class']} "
                f"per class{', largest connected component' if config['largest_component'] else ''})")]
    lines.append(f"Model: heads x features per hidden layer, then output heads: {describe_architecture(config)}; "
                 f"Adam lr {config['lr']:g}, weight decay {config['weight_decay']:g}; precision {config['precision']}")
    if config["fanouts"]:
        lines.append(f"Sampled mini-batches: {config['batch_size']} target nodes per step, fanouts {config['fanouts']}")
    return lines


class LabelledGraph:
    """The graph on the run's device, its labels and its train/val/test nodes; the loss and accuracy of a split."""

    def __init__(self, data):
        self.data, self.num_features = data, data.node_features.shape[1]
        # What the model reads: sparse features on the CPU where they are mostly zeros (Cora: 1.3 %), dense on a GPU,
        # where a dense matrix product beats the sparse projection's backward pass.
        features = data.node_features
        self.node_features = sparsify_if_mostly_zero(features) if features.device.type == "cpu" else features
        self.graph = Graph(data.edge_index, data.num_nodes)  # checked once; the layers' layouts built once
        self.edge_index, self.labels = self.graph.edge_index, data.labels
        self.nodes = {"train": data.train_indices, "val": data.val_indices, "test": data.test_indices}
        self.loss_fn = nn.CrossEntropyLoss()
        self._restricted = {}

    @property
    def num_edges(self):
        return self.edge_index.shape[1]

    def features_of(self, host_nodes, nodes):
        """The features of a batch's nodes (host_nodes on the CPU, nodes the same on the run's device)."""
        return self.data.node_features.index_select(0, nodes)

    def labels_of(self, host_nodes, nodes):
        return self.labels[nodes]

    def restricted(self, split, num_layers):
        """The graph as num_layers layers need it for the split's nodes only (models.RestrictedGraph), built on
        first use: the training step computes only what the training nodes' loss depends on."""
        if (split, num_layers) not in self._restricted:
            self._restricted[split, num_layers] = self.graph.restricted_to(self.nodes[split], num_layers)
        return self._restricted[split, num_layers]

    def loss_and_accuracy(self, logits, split):
        """(loss, accuracy) as tensors on the graph's device; logits: of the split's nodes, in the split's order.
        The loss is taken in float32 whatever the logits' precision."""
        split_labels = self.labels[self.nodes[split]]
        return self.loss_fn(logits.float(), split_labels), accuracy_on_device(logits, split_labels)

    @torch.no_grad()
    def evaluate(self, model, split, chunk_size=None, precision=None):
        """(loss, accuracy) of a split, read from the device at once. Every process evaluates the whole graph
        (the same numbers on each)."""
        with precision.autocast() if precision is not None else contextlib.nullcontext():
            logits = sampling.layerwise_inference(model, self.node_features,
                                                  self.restricted(split, len(model.layers)), chunk_size)
        loss, split_accuracy = self.loss_and_accuracy(logits, split)
        return tuple(torch.stack([loss, split_accuracy]).tolist())


class DiskLabelledGraph:
    """A graph on disk (utils/datasets/disk_graph.py) as the trainer uses it: features and labels read a batch's rows
    at a time, evaluation layer by layer over chunks (sampling.layerwise_inference_on_disk); its splits in memory."""

    def __init__(self, disk, device):
        self.data, self.device, self.num_features = disk, device, disk.num_features
        self.num_edges = disk.num_edges + disk.num_nodes  # (with the self loops the disk graph implies)
        self.nodes = {"train": disk.train_indices, "val": disk.val_indices, "test": disk.test_indices}
        self.loss_fn = nn.CrossEntropyLoss()

    def features_of(self, host_nodes, nodes):
        return to_device(self.data.rows(host_nodes), self.device)

    def labels_of(self, host_nodes, nodes):
        return to_device(self.data.labels_of(host_nodes), self.device)

    @torch.no_grad()
    def evaluate(self, model, split, chunk_size=None, precision=None):
        nodes = self.nodes[split]
        logits = sampling.layerwise_inference_on_disk(model, self.data, chunk_size or EVAL_CHUNK_SIZE, nodes,
                                                      self.device, precision.autocast if precision else None)
        labels = self.labels_of(nodes, None)
        loss, split_accuracy = self.loss_fn(logits.float(), labels), accuracy_on_device(logits, labels)
        return tuple(torch.stack([loss, split_accuracy]).tolist())


class FullBatchEpochs:
    """An epoch is one step on the whole graph; the loss is the training nodes'."""

    generators = None

    def __init__(self, model, optimizer, graph, precision):
        self.model, self.optimizer, self.graph, self.precision = model, optimizer, graph, precision

    def train(self, epoch, check_stop):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        # Only the training nodes' logits: the layers skip the edges the loss does not depend on (bit-identical).
        with self.precision.autocast():
            logits = self.model(self.graph.node_features, self.graph.restricted("train", len(self.model.layers)))
        loss, train_accuracy = self.graph.loss_and_accuracy(logits, "train")
        self.precision.backward(loss)
        self.precision.step(self.optimizer)
        return tuple(torch.stack([loss.detach(), train_accuracy]).tolist())  # (the epoch's one read from the device)


class SampledEpochs:
    """Neighbour-sampled mini-batches: batch_size training nodes per step (all processes together), each step on
    the subgraph sampled around them; the loss is taken on those nodes only."""

    def __init__(self, model, trained, optimizer, graph, host_graph, config, ctx, precision):
        """graph: the LabelledGraph on the run's device; host_graph: the same GraphData on the CPU, where the
        sampler draws each step's subgraph (data-dependent work that a GPU would have to report back)."""
        self.model, self.trained, self.optimizer, self.graph, self.ctx = model, trained, optimizer, graph, ctx
        self.precision = precision
        self.seed, self.batch_size = config["seed"], config["batch_size"]
        self.train_nodes = host_graph.train_indices
        if isinstance(host_graph, DiskGraph):  # (its CSR index, memory-mapped: a step reads the nodes it visits)
            neighbours = InNeighbours.from_csr(*host_graph.csr())
            self.sampler = NeighbourSampler(None, host_graph.num_nodes, config["fanouts"], seed=self.seed,
                                            neighbours=neighbours)
            self.device = graph.device
        else:
            self.sampler = NeighbourSampler(host_graph.edge_index, host_graph.num_nodes, config["fanouts"],
                                            seed=self.seed)
            self.device = graph.data.node_features.device
        self.order_generator = torch.Generator().manual_seed(self.seed)
        self.generators = {"batch_order": self.order_generator}  # the sampler is reseeded per step (below)
        self.num_features = graph.num_features
        self.loss_sum = nn.CrossEntropyLoss(reduction="sum")

    def train(self, epoch, check_stop):
        self.model.train()
        ctx = self.ctx
        train_nodes = self.train_nodes[torch.randperm(self.train_nodes.numel(), generator=self.order_generator)]
        # Summed on the device in float64 (exactly as Python floats would), read once at the end of the epoch.
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss, correctly classified nodes
        for step, first in enumerate(range(0, train_nodes.numel(), self.batch_size)):
            check_stop()
            step_nodes = train_nodes[first:first + self.batch_size]
            share = torch.tensor_split(step_nodes, ctx.world_size)[ctx.rank]
            self.optimizer.zero_grad(set_to_none=True)
            if share.numel() == 0:
                distributed.join_step_without_data(self.trained, self.num_features, self.device)
            else:
                # The draws of a step depend only on (seed, epoch, step, rank): exact on resume, on any rank.
                self.sampler.generator.manual_seed(step_seed(self.seed, epoch, step, ctx.rank))
                distributed.seed_dropout_for_step(ctx, self.seed, epoch, step)
                batch = self.sampler.sample(share)
                # The subgraph is checked and laid out on the CPU, then copied: the device only receives it.
                graph = to_device(self.model.build_layouts(batch.graph()), self.device)
                nodes = to_device(batch.nodes, self.device)
                features = self.graph.features_of(batch.nodes, nodes)
                targets = self.graph.labels_of(batch.nodes[:batch.num_targets], nodes[:batch.num_targets])
                with self.precision.autocast():
                    logits = self.trained(features, graph)[:batch.num_targets]
                loss = self.loss_sum(logits.float(), targets)
                # Mean over the step's nodes on all processes (DDP averages gradients over them).
                self.precision.backward(loss * (ctx.world_size / step_nodes.numel()))
                totals += torch.stack([loss.detach().double(), num_correct_on_device(logits, targets).double()])
            self.precision.step(self.optimizer)
        total_loss, total_correct = ctx.sum(totals.tolist())
        return total_loss / train_nodes.numel(), total_correct / train_nodes.numel()

