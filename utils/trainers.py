"""The training loops: transductive (Cora and the other Planetoid graphs) and inductive (PPI).

Both scripts and the notebook call these. `fit` is the loop they share: train an epoch, validate,
log, early-stop, checkpoint; the two `train_gat_*` functions only say what one epoch and one
evaluation are.
"""

import time

import torch
import torch.nn as nn

from models import GAT, LayerType
from utils.data_loading import sparsify_if_mostly_zero
from utils.training import (EarlyStopping, make_checkpoint, make_summary_writer, save_binary,
                            save_checkpoint, select_device, set_seed, write_json)

# The paper's transductive architecture (Cora, Citeseer): 8 heads x 8 features, 1 output head.
CORA_ARCHITECTURE = dict(num_of_layers=2, num_heads_per_layer=[8, 1], hidden_features=[8],
                         add_skip_connection=False, bias=True, dropout=0.6)

CORA_DEFAULTS = dict(dataset_name="cora", num_of_epochs=10000, patience_period=100, lr=5e-3, weight_decay=5e-4,
                     should_test=True, should_visualize=False, enable_tensorboard=False, console_log_freq=100,
                     checkpoint_freq=1000, layer_type=LayerType.IMP3, seed=0, force_cpu=False, data_dir=None,
                     results_json=None, save_binary=True)


def build_model(architecture, num_in_features, num_out_features, layer_type, log_attention_weights=False):
    features = [num_in_features] + list(architecture["hidden_features"]) + [num_out_features]
    return GAT(num_of_layers=architecture["num_of_layers"], num_heads_per_layer=architecture["num_heads_per_layer"],
               num_features_per_layer=features, add_skip_connection=architecture["add_skip_connection"],
               bias=architecture["bias"], dropout=architecture["dropout"], layer_type=layer_type,
               log_attention_weights=log_attention_weights)


def fit(model, optimizer, train_one_epoch, evaluate, config, metric_name, run_name, log=print):
    """Train until num_of_epochs or early stopping; leave the model at its best-validation weights.

    train_one_epoch(epoch) -> (loss, metric) on the training data; evaluate(split) -> (loss, metric).
    Returns (EarlyStopping state, history: one dict per epoch, epochs run, training seconds).
    """
    writer = make_summary_writer(config["enable_tensorboard"], run_name)
    stopper = EarlyStopping(config["patience_period"])
    history = []
    start = time.perf_counter()
    epoch = -1
    try:
        for epoch in range(config["num_of_epochs"]):
            train_loss, train_metric = train_one_epoch(epoch)
            val_loss, val_metric = evaluate("val")
            history.append(dict(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                                **{f"train_{metric_name}": train_metric, f"val_{metric_name}": val_metric}))
            for name, value in history[-1].items():
                if name != "epoch":
                    writer.add_scalar(name, value, epoch)

            freq = config["console_log_freq"]
            if freq and (epoch == 0 or (epoch + 1) % freq == 0):
                log(f"epoch {epoch + 1:5d} | {time.perf_counter() - start:7.1f}s | train loss {train_loss:.4f} "
                    f"{metric_name} {train_metric:.4f} | val loss {val_loss:.4f} {metric_name} {val_metric:.4f}")

            should_stop = stopper.step(epoch, val_loss, val_metric, model)
            if config["checkpoint_freq"] and (epoch + 1) % config["checkpoint_freq"] == 0:
                checkpoint = make_checkpoint(model, optimizer, _training_state(config, epoch, stopper))
                save_checkpoint(checkpoint, run_name, epoch + 1)
            if should_stop:
                log(f"Early stopping at epoch {epoch + 1}: no validation improvement for "
                    f"{config['patience_period']} epochs (best model from epoch {stopper.best_epoch + 1}).")
                break
    finally:
        writer.close()
    train_seconds = time.perf_counter() - start
    model.load_state_dict(stopper.best_state)
    return stopper, history, epoch + 1, train_seconds


def _training_state(config, epoch, stopper):
    state = {"epoch": epoch + 1, "dataset": config["dataset_name"], "seed": config["seed"],
             "lr": config["lr"], "weight_decay": config["weight_decay"]}
    state.update(stopper.state())
    return state


def finish(model, optimizer, config, stopper, epochs, train_seconds, results, log=print):
    """Save the final binary and the results JSON, as the flags ask."""
    if config.get("save_binary", True):
        state = _training_state(config, epochs - 1, stopper)
        path = save_binary(make_checkpoint(model, optimizer, state), config["dataset_name"])
        log(f"Saved the best-validation model to {path}")
    results.update(epochs=epochs, train_seconds=round(train_seconds, 3))
    if config.get("results_json"):
        write_json(config["results_json"], results)
    return results


# ----------------------------------------------------------------------------- transductive (Cora)

def train_gat_cora(config=None, log=print, data=None):
    """Train GAT on a Planetoid graph with the paper's setup. Returns the results dict
    (plus 'history' and 'model'). `config` overrides CORA_DEFAULTS; `data` skips loading."""
    from utils.planetoid import load_planetoid

    config = dict(CORA_DEFAULTS, **(config or {}))
    set_seed(config["seed"])
    device = select_device(config["force_cpu"], log=log)
    if data is None:
        data = load_planetoid(config["dataset_name"], config["data_dir"])
    data = data.to(device)
    node_features, edge_index, labels = sparsify_if_mostly_zero(data.node_features), data.edge_index, data.labels

    model = build_model(CORA_ARCHITECTURE, data.node_features.shape[1], data.num_classes,
                        config["layer_type"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    loss_fn = nn.CrossEntropyLoss()
    splits = {"train": data.train_indices, "val": data.val_indices, "test": data.test_indices}

    def loss_and_accuracy(logits, split):
        indices = splits[split]
        loss = loss_fn(logits[indices], labels[indices])
        accuracy = (logits[indices].argmax(dim=-1) == labels[indices]).float().mean()
        return loss, accuracy.item()

    def train_one_epoch(epoch):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss, accuracy = loss_and_accuracy(model(node_features, edge_index), "train")
        loss.backward()
        optimizer.step()
        return loss.item(), accuracy

    @torch.no_grad()
    def evaluate(split):
        model.eval()
        loss, accuracy = loss_and_accuracy(model(node_features, edge_index), split)
        return loss.item(), accuracy

    layer_type = model.layer_type.name
    log(f"Training GAT ({layer_type}) on {data.name}: {data.num_nodes} nodes, {edge_index.shape[1]} edges, "
        f"{len(data.train_indices)}/{len(data.val_indices)}/{len(data.test_indices)} train/val/test")
    stopper, history, epochs, train_seconds = fit(model, optimizer, train_one_epoch, evaluate, config, "acc",
                                                  run_name=data.name, log=log)
    results = {"dataset": data.name, "layer_type": layer_type, "seed": config["seed"], "test_acc": None,
               "best_val_acc": stopper.best_val_metric, "best_val_loss": stopper.best_val_loss,
               "best_epoch": stopper.best_epoch + 1}
    if config["should_test"]:
        results["test_acc"] = evaluate("test")[1]
    finish(model, optimizer, config, stopper, epochs, train_seconds, results, log=log)
    if results["test_acc"] is not None:
        log(f"Test accuracy = {results['test_acc']:.4f}")
    return dict(results, history=history, model=model)


# ----------------------------------------------------------------------------- inductive (PPI)

# The paper's inductive architecture: 3 layers, 4/4/6 heads, 256 features per hidden head,
# skip connections, no dropout; the output layer averages its 6 heads.
PPI_ARCHITECTURE = dict(num_of_layers=3, num_heads_per_layer=[4, 4, 6], hidden_features=[256, 256],
                        add_skip_connection=True, bias=True, dropout=0.0)

PPI_DEFAULTS = dict(dataset_name="ppi", num_of_epochs=200, patience_period=100, lr=5e-3, weight_decay=0.0,
                    should_test=True, should_visualize=False, enable_tensorboard=False, console_log_freq=10,
                    checkpoint_freq=50, layer_type=LayerType.IMP3, seed=0, force_cpu=False, data_dir=None,
                    results_json=None, save_binary=True, batch_size=2, hidden_features=256, standardize=True,
                    progress_bar=None)

OUT_OF_MEMORY_ADVICE = ("CUDA ran out of memory. Try --batch_size 1 (one graph per step) and/or fewer features "
                        "per head, e.g. --hidden_features 128, or train on the CPU with --force_cpu.")


def micro_f1(labels, logits):
    """Micro-averaged F1 over every (node, label) pair, as in the paper (scikit-learn's definition)."""
    from sklearn.metrics import f1_score
    return float(f1_score(labels.cpu().numpy(), (logits > 0).cpu().numpy(), average="micro", zero_division=0))


def train_gat_ppi(config=None, log=print, splits=None):
    """Train GAT on PPI with the paper's inductive setup. Returns the results dict (plus 'history',
    'model'). `config` overrides PPI_DEFAULTS; `splits` ({split: [GraphData]}) skips loading."""
    from tqdm import tqdm

    from utils.ppi import GraphDataLoader, load_ppi

    config = dict(PPI_DEFAULTS, **(config or {}))
    set_seed(config["seed"])
    device = select_device(config["force_cpu"], log=log)
    if splits is None:
        splits = load_ppi(config["data_dir"], standardize=config["standardize"])
    architecture = dict(PPI_ARCHITECTURE, hidden_features=[config["hidden_features"]] * 2)
    model = build_model(architecture, splits["train"][0].node_features.shape[1], splits["train"][0].num_classes,
                        config["layer_type"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    loss_fn = nn.BCEWithLogitsLoss()
    shuffle_generator = torch.Generator().manual_seed(config["seed"])
    loaders = {"train": GraphDataLoader(splits["train"], config["batch_size"], shuffle=True,
                                        generator=shuffle_generator),
               "val": GraphDataLoader(splits["valid"], config["batch_size"]),
               "test": GraphDataLoader(splits["test"], config["batch_size"])}
    show_progress = config["progress_bar"] if config["progress_bar"] is not None else _is_interactive()

    def run_epoch(split, train, epoch=None):
        """One pass over a split; returns (mean loss per node, micro-F1 over all its nodes)."""
        model.train(train)
        all_logits, all_labels, total_loss, total_nodes = [], [], 0.0, 0
        batches = tqdm(loaders[split], desc=f"epoch {epoch + 1}" if train else split, leave=False,
                       disable=not show_progress)
        with torch.set_grad_enabled(train):
            for batch in batches:
                batch = batch.to(device)
                logits = model(batch.node_features, batch.edge_index)
                loss = loss_fn(logits, batch.labels)
                if train:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                total_loss += loss.item() * batch.num_nodes
                total_nodes += batch.num_nodes
                all_logits.append(logits.detach())
                all_labels.append(batch.labels)
        return total_loss / total_nodes, micro_f1(torch.cat(all_labels), torch.cat(all_logits))

    layer_type = model.layer_type.name
    num_graphs = {split: len(graphs) for split, graphs in splits.items()}
    log(f"Training GAT ({layer_type}) on PPI: {num_graphs['train']}/{num_graphs['valid']}/{num_graphs['test']} "
        f"train/valid/test graphs, batch size {config['batch_size']}")
    try:
        stopper, history, epochs, train_seconds = fit(
            model, optimizer, lambda epoch: run_epoch("train", True, epoch), lambda split: run_epoch(split, False),
            config, "micro_f1", run_name="ppi", log=log)
        results = {"dataset": "ppi", "layer_type": layer_type, "seed": config["seed"], "test_micro_f1": None,
                   "best_val_micro_f1": stopper.best_val_metric, "best_val_loss": stopper.best_val_loss,
                   "best_epoch": stopper.best_epoch + 1}
        if config["should_test"]:
            results["test_micro_f1"] = run_epoch("test", False)[1]
    except torch.cuda.OutOfMemoryError:
        raise MemoryError(OUT_OF_MEMORY_ADVICE) from None
    finish(model, optimizer, config, stopper, epochs, train_seconds, results, log=log)
    if results["test_micro_f1"] is not None:
        log(f"Test micro-F1 = {results['test_micro_f1']:.4f}")
    return dict(results, history=history, model=model)


def _is_interactive():
    import sys
    return sys.stderr.isatty()
