"""The transductive trainer: one graph, some of its nodes labelled for training (Cora, Citeseer, Pubmed, ...).

`train_gat_cora` builds the data, the model and the optimizer, says what one epoch (full-batch, or on
neighbour-sampled mini-batches) and one evaluation are, and hands them to `fit` (utils/training/loop.py).
"""

import dataclasses

import torch
import torch.nn as nn

from utils.runs import checkpoints
from utils.training import distributed
from utils.runs.flags import SettingsError
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.training.metrics import accuracy, num_correct
from utils.datasets.npz_graph import NPZ_DATASETS
from utils.runs.run import COMMON_DEFAULTS, claim_run, finish, prepare_run
from utils.training.loop import fit
from utils.training.setup import ATTENTION_NAMES, build_model, make_optimizer, set_seed, silent, step_seed

# The paper's transductive architecture (Cora, Citeseer): 8 heads x 8 features, 1 output head.
CORA_ARCHITECTURE = dict(num_of_layers=2, num_heads_per_layer=[8, 1], hidden_features=[8],
                         add_skip_connection=False, bias=True, dropout=0.6)

CORA_DEFAULTS = dict(COMMON_DEFAULTS, dataset_name="cora", num_of_epochs=10000, weight_decay=5e-4,
                     console_log_freq=100, checkpoint_freq=1000, fanouts=None, batch_size=256, eval_chunk_size=None,
                     split=None, train_per_class=20, val_per_class=30, split_seed=0, largest_component=True)

# Planetoid (with a public split), the graphs of Shchur et al. in their .npz layout (no public split; Planetoid's
# cora is "cora", their cora.npz is read by path), ogbn-arxiv, a generated graph. Any .npz path works too.
NPZ_GRAPHS = tuple(name for name in NPZ_DATASETS if name != "cora")
TRANSDUCTIVE_DATASETS = ("cora", "citeseer", "pubmed", *NPZ_GRAPHS, "ogbn-arxiv", "sbm")

# Without --eval_chunk_size: graphs up to this many nodes are evaluated in one forward pass, larger ones
# layer by layer over chunks of EVAL_CHUNK_SIZE target nodes.
EVAL_ONE_PASS_NODES = 500_000
EVAL_CHUNK_SIZE = 100_000

# ogbn-arxiv: 3 layers of 3 heads x 250 features with skip connections, the shape of the GAT that DGL's
# ogbn-arxiv example trains (without its batch norm and label-reuse tricks); dropout 0.5. Not measured here.
ARXIV_ARCHITECTURE = dict(num_of_layers=3, num_heads_per_layer=[3, 3, 3], hidden_features=[250, 250],
                          add_skip_connection=True, bias=True, dropout=0.5)


def architecture_for(dataset_name):
    return ARXIV_ARCHITECTURE if dataset_name == "ogbn-arxiv" else CORA_ARCHITECTURE


def load_transductive(dataset_name, data_dir=None):
    """A Planetoid graph, an npz graph (a name of NPZ_GRAPHS or a path to a .npz file), ogbn-arxiv, or a generated
    graph (`sbm`: a folder written by `python -m utils.datasets.sbm_graph`)."""
    if dataset_name in NPZ_GRAPHS or str(dataset_name).endswith(".npz"):
        from utils.datasets.npz_graph import load_npz_graph
        return load_npz_graph(dataset_name, data_dir)
    if dataset_name == "sbm":
        from utils.datasets.sbm_graph import load_sbm_graph
        from utils.datasets.download import resolve_data_dir
        return load_sbm_graph(resolve_data_dir(data_dir))
    if dataset_name == "ogbn-arxiv":
        from utils.datasets.ogbn_arxiv import load_arxiv
        return load_arxiv(data_dir)
    from utils.datasets.planetoid import load_planetoid
    return load_planetoid(dataset_name, data_dir)


def choose_split(data, config):
    """(graph with the run's train/val/test nodes, what the split is): the graph's public split, or a random one
    drawn per class (utils/datasets/splits.py). --split's default: public where the graph has one, random elsewhere."""
    from utils.datasets.splits import SplitError, random_split, split_description
    split = config["split"] or ("public" if data.train_indices is not None else "random")
    if split == "public":
        if data.train_indices is None:
            raise SettingsError(f"{data.name} has no public split; train it with --split random")
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


def train_gat_cora(config=None, log=print, data=None):
    """Train GAT on a Planetoid graph with the paper's setup. Returns the results dict (plus 'history'
    and 'model'). `config` overrides CORA_DEFAULTS (with 'resume', the checkpoint's settings); `data`
    skips loading. Raises TrainingInterrupted after saving when stopped by Ctrl-C or SIGTERM.

    With `fanouts`, training runs on neighbour-sampled mini-batches of `batch_size` training nodes
    (utils/training/sampling.py); under torchrun, each process takes its share of every batch's nodes."""
    is_main = distributed.launched_rank() == 0  # (under torchrun only rank 0 prints and writes)
    log = log if is_main else silent
    config, resume = prepare_run(CORA_DEFAULTS, config, TRANSDUCTIVE_DATASETS, "training_script_cora.py", log,
                                 writes=is_main)
    ctx = distributed.setup(force_cpu=config["force_cpu"])  # after resuming: the run's own settings decide
    if ctx.is_distributed and not config["fanouts"]:
        raise SettingsError("full-batch training of one graph cannot be split between processes; under torchrun "
                            "train on sampled mini-batches (--fanouts 10 10 --batch_size 256, say), or run "
                            "with plain python")
    architecture = architecture_for(config["dataset_name"])
    if config["fanouts"] and len(config["fanouts"]) != architecture["num_of_layers"]:
        raise SettingsError(f"--fanouts needs one number per GAT layer ({architecture['num_of_layers']} for "
                            f"{config['dataset_name']}), got {config['fanouts']}")
    config = distributed.config_for_rank(config, ctx)
    set_seed(config["seed"])
    device = distributed.device_for(ctx, config, log)
    if data is None:
        data = load_transductive(config["dataset_name"], config["data_dir"])
    data, split = choose_split(data, config)
    config = dict(config, split=split["split"])  # (saved with the run: --resume draws the same split)
    data = data.to(device)
    node_features, edge_index, labels = sparsify_if_mostly_zero(data.node_features), data.edge_index, data.labels

    model = build_model(architecture, data.node_features.shape[1], data.num_classes,
                        config["layer_type"], attention_type=config["attention_type"]).to(device)
    if resume is not None:
        checkpoints.check_model_matches(resume, model, config["resume"])
    trained = distributed.data_parallel(model, ctx, device)
    optimizer = make_optimizer(model, config["lr"], config["weight_decay"])
    loss_fn = nn.CrossEntropyLoss()
    splits = {"train": data.train_indices, "val": data.val_indices, "test": data.test_indices}

    def loss_and_accuracy(logits, split):
        """logits: of the split's nodes, in the split's order."""
        split_labels = labels[splits[split]]
        return loss_fn(logits, split_labels), accuracy(logits, split_labels)

    def train_full_batch(epoch, check_stop):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        # Only the training nodes' logits: the layers skip the edges the loss does not depend on (bit-identical).
        loss, train_accuracy = loss_and_accuracy(model(node_features, edge_index, output_nodes=splits["train"]),
                                                 "train")
        loss.backward()
        optimizer.step()
        return loss.item(), train_accuracy

    generators, sampler = None, None
    if config["fanouts"]:
        # Neighbour-sampled mini-batches: batch_size training nodes per step (all processes together),
        # each step on the subgraph sampled around them; the loss is taken on those nodes only.
        from utils.training.sampling import NeighbourSampler
        sampler = NeighbourSampler(data.edge_index, data.num_nodes, config["fanouts"], seed=config["seed"])
        order_generator = torch.Generator().manual_seed(config["seed"])
        generators = {"batch_order": order_generator}  # the sampler is reseeded per step (below)
        dense_features = data.node_features.to(device)
        loss_sum = nn.CrossEntropyLoss(reduction="sum")

        def train_sampled(epoch, check_stop):
            model.train()
            train_nodes = splits["train"].cpu()
            train_nodes = train_nodes[torch.randperm(train_nodes.numel(), generator=order_generator)]
            total_loss = total_correct = 0.0
            for step, first in enumerate(range(0, train_nodes.numel(), config["batch_size"])):
                check_stop()
                step_nodes = train_nodes[first:first + config["batch_size"]]
                share = torch.tensor_split(step_nodes, ctx.world_size)[ctx.rank]
                optimizer.zero_grad(set_to_none=True)
                if share.numel() == 0:
                    distributed.join_step_without_data(trained, dense_features.shape[1], device)
                else:
                    # The draws of a step depend only on (seed, epoch, step): exact on resume, on any rank.
                    sampler.generator.manual_seed(step_seed(config["seed"], epoch, step, ctx.rank))
                    batch = sampler.sample(share)
                    targets = batch.nodes[:batch.num_targets].to(device)
                    logits = trained(dense_features.index_select(0, batch.nodes.to(device)),
                                     batch.edge_index.to(device))[:batch.num_targets]
                    loss = loss_sum(logits, labels[targets])
                    # Mean over the step's nodes on all processes (DDP averages gradients over them).
                    (loss * (ctx.world_size / step_nodes.numel())).backward()
                    total_loss += loss.item()
                    total_correct += num_correct(logits, labels[targets])
                optimizer.step()
            total_loss, total_correct = ctx.sum([total_loss, total_correct])
            return total_loss / train_nodes.numel(), total_correct / train_nodes.numel()

    train_one_epoch = train_full_batch if sampler is None else train_sampled

    @torch.no_grad()
    def evaluate(split):
        from utils.training.sampling import layerwise_inference
        # Every process evaluates the whole graph (the same numbers on each): nothing to combine.
        chunk_size = config["eval_chunk_size"] or (EVAL_CHUNK_SIZE if data.num_nodes > EVAL_ONE_PASS_NODES else None)
        logits = layerwise_inference(model, node_features, edge_index, chunk_size, output_nodes=splits[split])
        loss, accuracy = loss_and_accuracy(logits, split)
        return loss.item(), accuracy

    config = claim_run(config)  # (data and model are ready: the run's name and folder, right before it trains)
    layer_type = model.layer_type.name
    log(f"Training {ATTENTION_NAMES[config['attention_type']]} ({layer_type}) on {data.name}: {data.num_nodes} nodes, "
        f"{edge_index.shape[1]} edges, "
        f"{len(data.train_indices)}/{len(data.val_indices)}/{len(data.test_indices)} train/val/test"
        + (" (public split)" if split["split"] == "public" else
           f" (random split {config['split_seed']}: {config['train_per_class']} + {config['val_per_class']} per "
           f"class{', largest connected component' if config['largest_component'] else ''})"))
    if sampler is not None:
        log(f"Sampled mini-batches: {config['batch_size']} target nodes per step, fanouts {config['fanouts']}")
    outcome = fit(model, optimizer, train_one_epoch, evaluate, config, "acc", resume=resume, generators=generators,
                  epochs_can_be_abandoned=sampler is not None, agree_on_stop=distributed.agreement(ctx), log=log)
    results = {"dataset": data.name, "layer_type": layer_type, "attention_type": config["attention_type"],
               "seed": config["seed"], "processes": ctx.world_size, "split": split}
    finish(model, config, outcome, results, "acc", lambda: evaluate("test")[1], log=log)
    if results["test_acc"] is not None:
        log(f"Test accuracy = {results['test_acc']:.4f}")
    return dict(results, history=outcome.history, model=model)
