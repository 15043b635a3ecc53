"""The many-graph (inductive) trainer: many graphs, whole graphs unseen in training at test time (PPI, multi-label).

`train_many_graphs` batches whole graphs, says what one pass over a split is, and hands training to `fit`
(utils/training/loop.py).
"""

import sys

import torch
import torch.nn as nn
from tqdm import tqdm

from models import Graph
from utils.datasets.names import MANY_GRAPH_DATASETS
from utils.datasets.ppi import GraphDataLoader, dataset_name_of, load_ppi
from utils.plumbing.arguments import SettingsError
from utils.runs.run import COMMON_DEFAULTS, claim_run
from utils.training import distributed
from utils.training.architecture import describe_architecture, from_checkpoint_model, recorded, resolve_architecture
from utils.training.harness import build, fit_and_finish, seed_and_place, start
from utils.training.metrics import micro_f1_counts_on_device, micro_f1_from_counts
from utils.training.setup import ATTENTION_NAMES, to_device

# The paper's inductive architecture: 3 layers, 4/4/6 heads, 256 features per hidden head,
# skip connections, no dropout; the output layer averages its 6 heads.
PPI_ARCHITECTURE = dict(num_of_layers=3, num_heads_per_layer=[4, 4, 6], hidden_features=[256, 256],
                        add_skip_connection=True, bias=True, dropout=0.0)

# num_of_layers and num_heads_per_layer are None here: PPI_ARCHITECTURE's unless given (with another number of
# layers: 4 heads per hidden layer, 6 output heads; utils/training/architecture.py).
MANY_GRAPHS_DEFAULTS = dict(COMMON_DEFAULTS, dataset_name="ppi", num_of_epochs=200, weight_decay=0.0,
                            console_log_freq=10, checkpoint_freq=50, batch_size=2, hidden_features=[256],
                            standardize=True, progress_bar=None, num_of_layers=None, num_heads_per_layer=None,
                            dropout=PPI_ARCHITECTURE["dropout"],
                            add_skip_connection=PPI_ARCHITECTURE["add_skip_connection"])

DISPLAY_NAMES = {"ppi": "PPI", "ppi-generated": "generated PPI-format data (ppi-generated)"}

OUT_OF_MEMORY_ADVICE = ("CUDA ran out of memory. Try --batch_size 1 (one graph per step) and/or fewer features "
                        "per head, e.g. --hidden_features 128, or train on the CPU with --force_cpu.")


def train_many_graphs(config=None, log=print, splits=None):
    """Train GAT on PPI with the paper's inductive setup. Returns the results dict (plus 'history',
    'model'). `config` overrides MANY_GRAPHS_DEFAULTS (with 'resume', the checkpoint's settings); `splits`
    ({split: [GraphData]}) skips loading. Raises TrainingInterrupted after saving on Ctrl-C/SIGTERM.

    Under torchrun (WORLD_SIZE > 1) the processes train one model with DistributedDataParallel: each
    step's batch_size graphs are split between them, the loss is normalised by the step's total number of
    nodes (so N processes make the same step as one process with the same batch_size), and every
    metric is summed over all of them. Only rank 0 prints and writes files."""
    config, resume, ctx, log = start(MANY_GRAPHS_DEFAULTS, config, MANY_GRAPH_DATASETS, "training_script_ppi.py", log)
    if config["batch_size"] % ctx.world_size:
        raise SettingsError(f"--batch_size {config['batch_size']} does not split evenly over {ctx.world_size} "
                            f"processes: it is the number of graphs per step over all of them; use a multiple "
                            f"of {ctx.world_size}")
    config, device = seed_and_place(config, ctx, log)
    if splits is None:
        splits = load_ppi(config["data_dir"], standardize=config["standardize"])
    config = _named_for_its_data(config, dataset_name_of(splits), resume)
    if resume is not None:
        config = from_checkpoint_model(config, resume)  # (a run older than the architecture flags)
    architecture = resolve_architecture(config, PPI_ARCHITECTURE)
    config = dict(config, **recorded(architecture))
    model, trained, optimizer, precision = build(architecture, splits["train"][0].node_features.shape[1],
                                                 splits["train"][0].num_classes, config, resume, ctx, device)
    shuffle_generator = torch.Generator().manual_seed(config["seed"])
    # Every rank draws the same shuffled order (same generator) and takes its share of each batch.
    loaders = {"train": GraphDataLoader(splits["train"], config["batch_size"], shuffle=True,
                                        generator=shuffle_generator, rank=ctx.rank, world_size=ctx.world_size),
               "val": GraphDataLoader(splits["valid"], config["batch_size"], rank=ctx.rank, world_size=ctx.world_size),
               "test": GraphDataLoader(splits["test"], config["batch_size"], rank=ctx.rank, world_size=ctx.world_size)}
    show_progress = ctx.is_main and (config["progress_bar"] if config["progress_bar"] is not None
                                     else sys.stderr.isatty())
    passes = GraphPasses(model, trained, optimizer, loaders, ctx, device, precision, show_progress, config["seed"])

    config = claim_run(config)  # (data and model are ready: the run's name and folder, right before it trains)
    layer_type = model.layer_type.name
    num_graphs = {split: len(graphs) for split, graphs in splits.items()}
    log(f"Training {ATTENTION_NAMES[config['attention_type']]} ({layer_type}) on "
        f"{DISPLAY_NAMES[config['dataset_name']]}: "
        f"{num_graphs['train']}/{num_graphs['valid']}/{num_graphs['test']} "
        f"train/valid/test graphs, batch size {config['batch_size']}; model: heads x features per hidden layer, "
        f"then output heads: {describe_architecture(config)}; precision {config['precision']}")
    results = {"dataset": config["dataset_name"], "layer_type": layer_type, "attention_type": config["attention_type"],
               "seed": config["seed"], "processes": ctx.world_size, **recorded(architecture), "lr": config["lr"],
               "weight_decay": config["weight_decay"], "batch_size": config["batch_size"],
               "precision": config["precision"]}
    try:
        return fit_and_finish(model, optimizer, passes.train, passes.evaluate, config, "micro_f1", results,
                              resume=resume, ctx=ctx, precision=precision, log=log,
                              generators={"ppi_shuffle": shuffle_generator}, epochs_can_be_abandoned=True)
    except torch.cuda.OutOfMemoryError:
        raise MemoryError(OUT_OF_MEMORY_ADVICE) from None


def _named_for_its_data(config, data_name, resume):
    """The run is named and recorded by the data it trains on: 'ppi', or 'ppi-generated' for generated data. A
    resumed run must train on the same kind it started on."""
    if resume is not None and config["dataset_name"] != data_name:
        raise SettingsError(f"the run trained on {DISPLAY_NAMES[config['dataset_name']]}, but --data_dir holds "
                            f"{DISPLAY_NAMES[data_name]}; resume it with the data it started on")
    return dict(config, dataset_name=data_name)


class GraphPasses:
    """One pass over a split's batches of whole graphs: training steps, or an evaluation. Each returns (mean loss
    per node and label, micro-F1 over all the split's nodes), summed over every process."""

    def __init__(self, model, trained, optimizer, loaders, ctx, device, precision, show_progress=False, seed=0):
        self.model, self.trained, self.optimizer, self.loaders, self.seed = model, trained, optimizer, loaders, seed
        self.precision = precision
        self.ctx, self.device, self.show_progress = ctx, device, show_progress
        self.loss_sum = nn.BCEWithLogitsLoss(reduction="sum")

    def train(self, epoch, check_stop):
        return self._run("train", True, epoch, check_stop)

    def evaluate(self, split):
        return self._run(split, False)

    def _run(self, split, train, epoch=None, check_stop=None):
        self.model.train(train)
        # Summed on the device in float64 (exactly as Python floats would), read once at the end of the pass:
        # loss, true positives, false positives, false negatives; the number of values is known on the host.
        totals = torch.zeros(4, dtype=torch.float64, device=self.device)
        num_values = 0
        loader = self.loaders[split]
        with torch.set_grad_enabled(train), tqdm(loader, desc=f"epoch {epoch}" if train else split,
                                                 leave=False, disable=not self.show_progress) as batches:
            for step, batch in enumerate(batches):
                if check_stop is not None:
                    check_stop()
                if train:
                    distributed.seed_dropout_for_step(self.ctx, self.seed, epoch, step)
                if batch is None:  # a short last batch left this rank without a graph
                    if train:
                        self.optimizer.zero_grad(set_to_none=True)
                        distributed.join_step_without_data(self.trained, self.model.config.num_features_per_layer[0],
                                                           self.device)
                        self.precision.step(self.optimizer)
                    continue
                # The batch's graph is checked and laid out on the CPU, then copied: the device only receives it.
                graph = to_device(self.model.build_layouts(Graph(batch.edge_index, batch.num_nodes, copy=False)),
                                  self.device)
                batch = batch.to(self.device)
                with self.precision.autocast():
                    logits = (self.trained if train else self.model)(batch.node_features, graph)
                loss = self.loss_sum(logits.float(), batch.labels)
                if train:
                    # Mean over the step's nodes and labels on all ranks; DDP averages gradients over
                    # ranks, hence the world_size.
                    step_values = loader.step_num_nodes * batch.labels.shape[1]
                    self.optimizer.zero_grad(set_to_none=True)
                    self.precision.backward(loss * (self.ctx.world_size / step_values))
                    self.precision.step(self.optimizer)
                totals += torch.cat([loss.detach().double().view(1),
                                     micro_f1_counts_on_device(batch.labels, logits).double()])
                num_values += batch.labels.numel()
        total_loss, *counts = totals.tolist()
        total_loss, values, *counts = self.ctx.sum([total_loss, num_values, *counts])
        return total_loss / values, micro_f1_from_counts(*counts)
