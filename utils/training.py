"""Training: the loop both datasets share, early stopping, stopping on Ctrl-C, and the two trainers.

Read a run top to bottom: `train_gat_cora` (transductive: Cora, Citeseer, Pubmed) or `train_gat_ppi`
(inductive: PPI) builds the data, the model and the optimizer and says what one epoch and one
evaluation are; `fit` trains, validates, logs, early-stops and checkpoints; `finish` tests and saves.
What a checkpoint holds is in utils/checkpoints.py, the command-line flags in utils/flags.py.

Stopping: while `fit` runs, Ctrl-C (SIGINT) and SIGTERM only set a flag. The loop stops at the next safe
point (the end of an epoch; between PPI batches, going back to the last completed epoch), saves
gat_<dataset>_last.pth, and the trainer raises TrainingInterrupted, which the scripts turn into one
message with the command that resumes the run. Nothing is left half-written.

Nothing here writes a file at import time.
"""

import copy
import dataclasses
import datetime
import os
import random
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from models import GAT, LayerType
from utils import checkpoints
from utils.checkpoints import CheckpointError
from utils.data_loading import PROJECT_ROOT, DatasetError
from utils.files import display_path, write_json
from utils.flags import explicit_settings
from utils.graph import sparsify_if_mostly_zero

RUNS_DIR = PROJECT_ROOT / "runs"

# Settings every run has; each trainer adds its own. The scripts' flags take their defaults from here.
_COMMON_DEFAULTS = dict(attention_type="gat", patience_period=100, lr=5e-3, should_test=True, should_visualize=False,
                        enable_tensorboard=False, layer_type=LayerType.IMP3, seed=0, force_cpu=False, data_dir=None,
                        results_json=None, save_binary=True, keep_checkpoints=5, last_checkpoint_seconds=5.0,
                        resume=None)


# ----------------------------------------------------------------------------- device, seed

def select_device(force_cpu=False, log=print):
    if not force_cpu and torch.cuda.is_available():
        device = torch.device("cuda")
        log(f"Using device: cuda ({torch.cuda.get_device_name(0)})")
    else:
        device = torch.device("cpu")
        reason = " (--force_cpu)" if force_cpu else "" if torch.cuda.is_available() else " (no CUDA device found)"
        log(f"Using device: cpu{reason}")
    return device


def set_seed(seed):
    """Seed Python, numpy and torch. Together with the deterministic CPU kernels used by the layers
    (index_add_, scatter_reduce), this makes CPU runs repeatable (with the same thread count)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(architecture, num_in_features, num_out_features, layer_type, log_attention_weights=False,
                attention_type="gat"):
    features = [num_in_features] + list(architecture["hidden_features"]) + [num_out_features]
    return GAT(num_of_layers=architecture["num_of_layers"], num_heads_per_layer=architecture["num_heads_per_layer"],
               num_features_per_layer=features, add_skip_connection=architecture["add_skip_connection"],
               bias=architecture["bias"], dropout=architecture["dropout"], layer_type=layer_type,
               log_attention_weights=log_attention_weights, attention_type=attention_type)


def make_optimizer(model, lr, weight_decay=0.0):
    """Adam, with PyTorch's fused kernel (one kernel per parameter instead of a dozen) where the device has
    one. Same update up to float rounding; on the Cora epoch it saves ~4 % (paired A/B, CPU)."""
    devices = {parameter.device.type for parameter in model.parameters()}
    fused = devices <= {"cpu", "cuda"}
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused or None)


# ----------------------------------------------------------------------------- early stopping

class EarlyStopping:
    """The paper's early stopping (the reference TensorFlow code's rule).

    The patience counter resets whenever the validation loss or the validation metric is at least as
    good as the best seen so far; training stops after `patience` epochs without that. The model kept
    for testing is the last one that was at least as good as the best on *both* at once. Epochs are
    counted from 1, as on the console.
    """

    STATE = ("best_val_loss", "best_val_metric", "best_val_loss_epoch", "best_val_metric_epoch",
             "epochs_without_improvement", "best_epoch", "best_state", "best_model_val_loss", "best_model_val_metric")

    def __init__(self, patience):
        self.patience = patience
        self.best_val_loss = float("inf")          # the run's best values, whichever epochs they came from
        self.best_val_metric = float("-inf")
        self.best_val_loss_epoch = self.best_val_metric_epoch = None
        self.epochs_without_improvement = 0
        self.best_epoch = None                     # the kept model: its epoch, weights and own scores
        self.best_state = None
        self.best_model_val_loss = self.best_model_val_metric = None

    def step(self, epoch, val_loss, val_metric, model):
        """Record one epoch's validation result; return True when training should stop."""
        loss_ok, metric_ok = val_loss <= self.best_val_loss, val_metric >= self.best_val_metric
        if loss_ok and metric_ok:
            self.best_epoch = epoch
            self.best_state = {name: value.detach().clone() for name, value in model.state_dict().items()}
            self.best_model_val_loss, self.best_model_val_metric = val_loss, val_metric
        if loss_ok:
            self.best_val_loss, self.best_val_loss_epoch = val_loss, epoch
        if metric_ok:
            self.best_val_metric, self.best_val_metric_epoch = val_metric, epoch
        self.epochs_without_improvement = 0 if loss_ok or metric_ok else self.epochs_without_improvement + 1
        return self.should_stop()

    def should_stop(self):
        return self.epochs_without_improvement >= self.patience

    def state(self):
        return {name: getattr(self, name) for name in self.STATE}

    def load_state(self, state):
        for name in self.STATE:
            setattr(self, name, state[name])

    def describe_kept_model(self, metric_name):
        return (f"The model tested is from epoch {self.best_epoch}, the last epoch at least as good as the best on "
                f"both validation loss and {metric_name}: its validation loss is {self.best_model_val_loss:.4f}, "
                f"its {metric_name} {self.best_model_val_metric:.4f} (the run's best: loss "
                f"{self.best_val_loss:.4f} at epoch {self.best_val_loss_epoch}, {metric_name} "
                f"{self.best_val_metric:.4f} at epoch {self.best_val_metric_epoch}).")


# ----------------------------------------------------------------------------- Ctrl-C and SIGTERM

class SettingsError(ValueError):
    """Settings that cannot work together (said before any training starts)."""


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving the last completed epoch to `checkpoint_path`."""

    def __init__(self, signum, epoch, checkpoint_path):
        self.signum, self.epoch, self.checkpoint_path = signum, epoch, checkpoint_path
        saved = f" Saved {display_path(checkpoint_path)}." if checkpoint_path else " Nothing was saved."
        super().__init__(f"Interrupted at epoch {epoch}.{saved}")

    @property
    def exit_code(self):
        return 128 + self.signum  # 130 for SIGINT, 143 for SIGTERM, as a shell reports them


class _EpochAbandoned(Exception):
    """Raised between batches when a stop was asked for: the epoch in progress is dropped."""


class DeferredSignals:
    """While active (in the main thread), SIGINT and SIGTERM are recorded instead of acted on at once;
    the training loop asks `received` at its safe points. A second signal while stopping changes
    nothing: the checkpoint is written whole either way."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, agree=None):
        self.received = None
        self._agree = agree  # with several processes: DistributedContext.agree_on_stop
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._record) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _record(self, signum, frame):
        if self.received is None:
            self.received = signum

    def stop_requested(self):
        """The signal that stops training, or None. With several processes every rank must ask at the
        same point: a signal that reached any rank stops them all there. The answer is the agreed one
        only: a signal that lands while the ranks are agreeing counts at the next point, on all of them."""
        if self._agree is None:
            return self.received
        agreed = self._agree(self.received)
        if agreed is not None and self.received is None:
            self.received = agreed
        return agreed

    def check(self):
        if self.stop_requested() is not None:
            raise _EpochAbandoned


# ----------------------------------------------------------------------------- TensorBoard

class NullWriter:
    """Stands in for a SummaryWriter when TensorBoard is off."""

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


def make_summary_writer(enabled, run_name, log_dir=None, purge_step=None, log=print):
    """A SummaryWriter in runs/<run>_<time>/, or in `log_dir` to continue a resumed run's curves."""
    if not enabled:
        return NullWriter(), log_dir
    from torch.utils.tensorboard import SummaryWriter
    if log_dir is None:  # a new folder per run, also for two runs started within the same second
        stem = RUNS_DIR / f"{run_name}_{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
        log_dir = next(path for path in (Path(f"{stem}{suffix}") for suffix in ["", *(f"_{i}" for i in
                                                                                    range(1, 10 ** 6))])
                       if not path.exists())
        purge_step = None
    log(f"TensorBoard logs: {display_path(log_dir)} (view with: tensorboard --logdir runs)")
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step), str(log_dir)


# ----------------------------------------------------------------------------- the loop

METRIC_NAMES = {"acc": "accuracy", "micro_f1": "micro-F1"}  # how the console says them
ATTENTION_NAMES = {"gat": "GAT", "gatv2": "GATv2"}

STOP_MESSAGES = {
    "num_of_epochs": "Reached --num_of_epochs ({num_of_epochs}).",
    "early_stopping": "Early stopping at epoch {epoch}: no validation loss or {metric} improvement for "
                      "{patience_period} epochs.",
    "interrupted": "Interrupted at epoch {epoch}.",
}


@dataclasses.dataclass
class Outcome:
    """How `fit` ended: why, after how many epochs (counted from 1), and what it saved last."""
    stop_reason: str
    epochs: int
    train_seconds: float
    history: list
    stopper: EarlyStopping
    last_checkpoint: Path = None
    signum: int = None


def fit(model, optimizer, train_one_epoch, evaluate, config, metric_name, *, resume=None, generators=None,
        epochs_can_be_abandoned=False, agree_on_stop=None, log=print):
    """Train until --num_of_epochs, early stopping or Ctrl-C; leave the model at its kept weights.

    train_one_epoch(epoch, check_stop) -> (loss, metric) on the training data; it may call check_stop()
    between steps when epochs_can_be_abandoned (then the loop keeps the state each epoch began from in
    memory, to go back to if the epoch in progress is dropped). evaluate(split) -> (loss, metric).
    resume: a checkpoint from checkpoints.load_resumable; generators: {name: torch.Generator} whose
    states belong in a checkpoint (e.g. the PPI shuffle order). agree_on_stop: under torchrun, the
    collective that makes every process stop at the same step (DistributedContext.agree_on_stop).
    """
    dataset = config["dataset_name"]
    stopper = EarlyStopping(config["patience_period"])
    history, epoch, seconds_before, tensorboard_dir = [], 0, 0.0, None
    if resume is not None:
        state = resume["training_state"]
        model.load_state_dict(resume["model_state"])
        optimizer.load_state_dict(resume["optimizer_state"])
        stopper.load_state(state["early_stopping"])
        history, epoch, seconds_before = list(state["history"]), state["epoch"], state["train_seconds"]
        tensorboard_dir = state["tensorboard_dir"]
        checkpoints.restore_random_states(state["random_states"], generators)
    writer, tensorboard_dir = make_summary_writer(config["enable_tensorboard"], dataset, tensorboard_dir,
                                                  purge_step=epoch + 1, log=log)
    last_path = checkpoints.last_checkpoint_path(dataset)
    save_every = config["last_checkpoint_seconds"]
    if save_every is not None:
        every = f"every {save_every:g} s" if save_every > 0 else "after every epoch"
        log(f"The run is saved to {display_path(last_path)} {every}, at the end and on Ctrl-C.")

    start = time.perf_counter()
    stop_reason = None

    def snapshot(at=None):
        training_state = dict(dataset=dataset, epoch=epoch, settings=checkpoints.plain_settings(config),
                              early_stopping=stopper.state(), history=list(history),
                              random_states=checkpoints.capture_random_states(generators),
                              tensorboard_dir=tensorboard_dir, stop_reason=stop_reason,
                              train_seconds=seconds_before + (at or time.perf_counter()) - start)
        return checkpoints.make_checkpoint(model, optimizer, training_state)

    def save_last(checkpoint):
        if save_every is None:
            return None
        return checkpoints.save(checkpoint, last_path)

    last_saved_at = time.perf_counter()
    abandoned = False
    with DeferredSignals(agree_on_stop) as signals:
        try:
            if stopper.should_stop():
                stop_reason = "early_stopping"  # a resumed run that had already stopped
            # Where the epoch in progress began, kept only when an epoch can be dropped half-way.
            epoch_start = _EpochStart(model, optimizer, generators) if epochs_can_be_abandoned else None
            while stop_reason is None:
                if epoch >= config["num_of_epochs"]:
                    stop_reason = "num_of_epochs"
                    break
                if signals.stop_requested():
                    stop_reason = "interrupted"
                    break
                if epoch_start is not None:
                    epoch_start.capture()
                try:
                    train_loss, train_metric = train_one_epoch(epoch + 1, signals.check)
                except _EpochAbandoned:
                    # Back to the last completed epoch; the history and early stopping still are there.
                    stop_reason, abandoned = "interrupted", True
                    epoch_start.restore()
                    break
                val_loss, val_metric = evaluate("val")
                epoch += 1
                history.append({"epoch": epoch, "train_loss": train_loss, f"train_{metric_name}": train_metric,
                                "val_loss": val_loss, f"val_{metric_name}": val_metric})
                for name, value in history[-1].items():
                    if name != "epoch":
                        writer.add_scalar(name, value, epoch)
                freq = config["console_log_freq"]
                if freq and (epoch == 1 or epoch % freq == 0):
                    log(f"epoch {epoch:5d} | {time.perf_counter() - start:7.1f}s | train loss {train_loss:.4f} "
                        f"{metric_name} {train_metric:.4f} | val loss {val_loss:.4f} {metric_name} {val_metric:.4f}")

                if stopper.step(epoch, val_loss, val_metric, model):
                    stop_reason = "early_stopping"
                elif signals.stop_requested():
                    stop_reason = "interrupted"
                if config["checkpoint_freq"] and epoch % config["checkpoint_freq"] == 0:
                    path = checkpoints.save(snapshot(), checkpoints.numbered_checkpoint_path(dataset, epoch))
                    removed = checkpoints.prune_numbered_checkpoints(dataset, config["keep_checkpoints"])
                    log(f"Saved checkpoint {display_path(path)}"
                        + (f" (removed {len(removed)} older; --keep_checkpoints {config['keep_checkpoints']})"
                           if removed else ""))
                if stop_reason is None:
                    if save_every is not None and time.perf_counter() - last_saved_at >= save_every:
                        save_last(snapshot())
                        last_saved_at = time.perf_counter()

            # (after a dropped epoch: the one before it, with the time it had taken)
            saved = save_last(snapshot(at=epoch_start.started if abandoned else None))
        finally:
            writer.close()
    train_seconds = seconds_before + time.perf_counter() - start
    if stop_reason != "interrupted":
        log(STOP_MESSAGES[stop_reason].format(epoch=epoch, metric=METRIC_NAMES[metric_name], **config))
        if saved is not None:
            log(f"Saved {display_path(saved)} (epoch {epoch}; continue it with --resume)")
        model.load_state_dict(stopper.best_state)
        log(stopper.describe_kept_model(METRIC_NAMES[metric_name]))
    return Outcome(stop_reason, epoch, train_seconds, history, stopper, saved, signals.received)


class _EpochStart:
    """The state an epoch began from (weights, optimizer state, random states), to undo an epoch dropped
    half-way. Taken at the start of every epoch, so its tensors are copied into buffers allocated once
    instead of deep-copying a whole checkpoint (and the growing history) each time."""

    def __init__(self, model, optimizer, generators):
        self.model, self.optimizer, self.generators = model, optimizer, generators
        self._model_state = self._optimizer_state = self.random_states = self.started = None

    def capture(self):
        self._model_state = _copy_into(self._model_state, self.model.state_dict())
        self._optimizer_state = _copy_into(self._optimizer_state, self.optimizer.state_dict())
        self.random_states = checkpoints.capture_random_states(self.generators)
        self.started = time.perf_counter()

    def restore(self):
        self.model.load_state_dict(self._model_state)
        self.optimizer.load_state_dict(self._optimizer_state)
        checkpoints.restore_random_states(self.random_states, self.generators)
        # The optimizer may now hold these very tensors as its state: never copy into them again.
        self._model_state = self._optimizer_state = None


def _copy_into(buffers, state):
    """A copy of `state` (nested dicts, lists and tensors), reusing the tensors of `buffers`, an earlier copy,
    where shapes match."""
    if isinstance(state, torch.Tensor):
        if (isinstance(buffers, torch.Tensor) and buffers.shape == state.shape and buffers.dtype == state.dtype
                and buffers.device == state.device):
            return buffers.copy_(state)
        return state.detach().clone()
    if isinstance(state, dict):
        buffers = buffers if isinstance(buffers, dict) else {}
        return {key: _copy_into(buffers.get(key), value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        buffers = buffers if isinstance(buffers, type(state)) and len(buffers) == len(state) else [None] * len(state)
        return type(state)(_copy_into(old, value) for old, value in zip(buffers, state))
    return copy.deepcopy(state)


def prepare_run(defaults, overrides, datasets, script, log=print):
    """The run's settings and, with --resume, the checkpoint to continue (None otherwise).

    `overrides` are the settings given explicitly (on the command line, or by a caller); they win over the
    defaults, and on resume over the checkpoint's settings, except the ones that define a run."""
    overrides = dict(overrides or {})
    if not overrides.get("resume"):
        return dict(defaults, **overrides), None
    dataset = overrides.get("dataset_name", defaults["dataset_name"])
    path = checkpoints.resolve_resume_path(overrides["resume"], dataset)
    checkpoint = checkpoints.load_resumable(path)
    config, changed = checkpoints.settings_for_resume(checkpoint, defaults, overrides, path)
    if config["dataset_name"] not in datasets:
        raise CheckpointError(f"{path} is a {config['dataset_name']} run; resume it with the script that trains "
                              f"{config['dataset_name']}, not {script}")
    state = checkpoint["training_state"]
    log(f"Resuming {display_path(path)}: {state['dataset']}, {state['epoch']} epochs done"
        + (f" (it had stopped: {state['stop_reason']})" if state.get("stop_reason") not in (None, "interrupted")
           else ""))
    for key, old, new in changed:
        log(f"  --{key} changed on resume: {old} -> {new}")
    config["resume"] = str(path)
    return config, checkpoint


def finish(model, config, outcome, results, metric_name, test, log=print):
    """After fit: test the kept model, save it as a binary, write the results JSON, as the settings ask."""
    stopper = outcome.stopper
    results.update(stop_reason=outcome.stop_reason, epochs=outcome.epochs,
                   train_seconds=round(outcome.train_seconds, 3),
                   best_epoch=stopper.best_epoch, best_val_loss=stopper.best_model_val_loss,
                   **{f"best_val_{metric_name}": stopper.best_model_val_metric, f"test_{metric_name}": None,
                      "min_val_loss": stopper.best_val_loss, f"max_val_{metric_name}": stopper.best_val_metric},
                   last_checkpoint=str(outcome.last_checkpoint) if outcome.last_checkpoint else None)
    if outcome.stop_reason == "interrupted":
        if config.get("results_json"):
            write_json(config["results_json"], results)
        raise TrainingInterrupted(outcome.signum, outcome.epochs, outcome.last_checkpoint)
    with DeferredSignals() as signals:  # the run is complete: a Ctrl-C now waits for these few seconds
        _test_and_save(model, config, outcome, results, metric_name, test, log)
    if signals.received:
        log("(Stop signal received while finishing; the run had completed and finished normally.)")
    return results


def _test_and_save(model, config, outcome, results, metric_name, test, log):
    stopper = outcome.stopper
    if config["should_test"]:
        results[f"test_{metric_name}"] = test()
    if config["save_binary"]:
        summary = dict(dataset=config["dataset_name"], epoch=outcome.epochs, stop_reason=outcome.stop_reason,
                       settings=checkpoints.plain_settings(config), history=outcome.history,
                       **{key: value for key, value in results.items() if key.startswith(("best_", "min_", "max_"))})
        path = checkpoints.save_binary(checkpoints.make_checkpoint(model, None, summary), config["dataset_name"])
        log(f"Saved the kept model (epoch {stopper.best_epoch}) to {display_path(path)}")
    if config.get("results_json"):
        write_json(config["results_json"], results)
    return results


# ----------------------------------------------------------------------------- transductive (Cora)

# The paper's transductive architecture (Cora, Citeseer): 8 heads x 8 features, 1 output head.
CORA_ARCHITECTURE = dict(num_of_layers=2, num_heads_per_layer=[8, 1], hidden_features=[8],
                         add_skip_connection=False, bias=True, dropout=0.6)

CORA_DEFAULTS = dict(_COMMON_DEFAULTS, dataset_name="cora", num_of_epochs=10000, weight_decay=5e-4,
                     console_log_freq=100, checkpoint_freq=1000, fanouts=None, batch_size=256, eval_chunk_size=None)


TRANSDUCTIVE_DATASETS = ("cora", "citeseer", "pubmed", "ogbn-arxiv", "sbm")

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
    """A Planetoid graph, ogbn-arxiv, or a generated graph (`sbm`: a folder written by `python -m utils.sbm_graph`)."""
    if dataset_name == "sbm":
        from utils.sbm_graph import load_sbm_graph
        from utils.data_loading import resolve_data_dir
        return load_sbm_graph(resolve_data_dir(data_dir))
    if dataset_name == "ogbn-arxiv":
        from utils.ogbn_arxiv import load_arxiv
        return load_arxiv(data_dir)
    from utils.planetoid import load_planetoid
    return load_planetoid(dataset_name, data_dir)


def train_gat_cora(config=None, log=print, data=None):
    """Train GAT on a Planetoid graph with the paper's setup. Returns the results dict (plus 'history'
    and 'model'). `config` overrides CORA_DEFAULTS (with 'resume', the checkpoint's settings); `data`
    skips loading. Raises TrainingInterrupted after saving when stopped by Ctrl-C or SIGTERM.

    With `fanouts`, training runs on neighbour-sampled mini-batches of `batch_size` training nodes
    (utils/sampling.py); under torchrun, each process takes its share of every batch's nodes."""
    from utils import distributed

    ctx = distributed.setup(force_cpu=bool((config or {}).get("force_cpu")))
    log = log if ctx.is_main else _silent
    config, resume = prepare_run(CORA_DEFAULTS, config, TRANSDUCTIVE_DATASETS, "training_script_cora.py", log)
    if ctx.is_distributed and not config["fanouts"]:
        raise SettingsError("full-batch training of one graph cannot be split between processes; under torchrun "
                            "train on sampled mini-batches (--fanouts 10 10 --batch_size 256, say), or run "
                            "with plain python")
    architecture = architecture_for(config["dataset_name"])
    if config["fanouts"] and len(config["fanouts"]) != architecture["num_of_layers"]:
        raise SettingsError(f"--fanouts needs one number per GAT layer ({architecture['num_of_layers']} for "
                            f"{config['dataset_name']}), got {config['fanouts']}")
    config = _config_for_rank(config, ctx)
    set_seed(config["seed"])
    device = _device_for(ctx, config, log)
    if data is None:
        data = load_transductive(config["dataset_name"], config["data_dir"])
    data = data.to(device)
    node_features, edge_index, labels = sparsify_if_mostly_zero(data.node_features), data.edge_index, data.labels

    model = build_model(architecture, data.node_features.shape[1], data.num_classes,
                        config["layer_type"], attention_type=config["attention_type"]).to(device)
    if resume is not None:
        checkpoints.check_model_matches(resume, model, config["resume"])
    trained = _data_parallel(model, ctx, device)
    optimizer = make_optimizer(model, config["lr"], config["weight_decay"])
    loss_fn = nn.CrossEntropyLoss()
    splits = {"train": data.train_indices, "val": data.val_indices, "test": data.test_indices}

    def loss_and_accuracy(logits, split):
        """logits: of the split's nodes, in the split's order."""
        split_labels = labels[splits[split]]
        loss = loss_fn(logits, split_labels)
        accuracy = (logits.argmax(dim=-1) == split_labels).float().mean()
        return loss, accuracy.item()

    def train_full_batch(epoch, check_stop):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        # Only the training nodes' logits: the layers skip the edges the loss does not depend on (bit-identical).
        loss, accuracy = loss_and_accuracy(model(node_features, edge_index, output_nodes=splits["train"]), "train")
        loss.backward()
        optimizer.step()
        return loss.item(), accuracy

    generators, sampler = None, None
    if config["fanouts"]:
        # Neighbour-sampled mini-batches: batch_size training nodes per step (all processes together),
        # each step on the subgraph sampled around them; the loss is taken on those nodes only.
        from utils.sampling import NeighbourSampler
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
                    _join_step_without_data(trained, dense_features.shape[1], device)
                else:
                    # The draws of a step depend only on (seed, epoch, step): exact on resume, on any rank.
                    sampler.generator.manual_seed(_step_seed(config["seed"], epoch, step, ctx.rank))
                    batch = sampler.sample(share)
                    targets = batch.nodes[:batch.num_targets].to(device)
                    logits = trained(dense_features.index_select(0, batch.nodes.to(device)),
                                     batch.edge_index.to(device))[:batch.num_targets]
                    loss = loss_sum(logits, labels[targets])
                    # Mean over the step's nodes on all processes (DDP averages gradients over them).
                    (loss * (ctx.world_size / step_nodes.numel())).backward()
                    total_loss += loss.item()
                    total_correct += (logits.argmax(dim=-1) == labels[targets]).sum().item()
                optimizer.step()
            total_loss, total_correct = ctx.sum([total_loss, total_correct])
            return total_loss / train_nodes.numel(), total_correct / train_nodes.numel()

    train_one_epoch = train_full_batch if sampler is None else train_sampled

    @torch.no_grad()
    def evaluate(split):
        from utils.sampling import layerwise_inference
        # Every process evaluates the whole graph (the same numbers on each): nothing to combine.
        chunk_size = config["eval_chunk_size"] or (EVAL_CHUNK_SIZE if data.num_nodes > EVAL_ONE_PASS_NODES else None)
        logits = layerwise_inference(model, node_features, edge_index, chunk_size, output_nodes=splits[split])
        loss, accuracy = loss_and_accuracy(logits, split)
        return loss.item(), accuracy

    layer_type = model.layer_type.name
    log(f"Training {ATTENTION_NAMES[config['attention_type']]} ({layer_type}) on {data.name}: {data.num_nodes} nodes, "
        f"{edge_index.shape[1]} edges, "
        f"{len(data.train_indices)}/{len(data.val_indices)}/{len(data.test_indices)} train/val/test")
    if sampler is not None:
        log(f"Sampled mini-batches: {config['batch_size']} target nodes per step, fanouts {config['fanouts']}")
    outcome = fit(model, optimizer, train_one_epoch, evaluate, config, "acc", resume=resume, generators=generators,
                  epochs_can_be_abandoned=sampler is not None, agree_on_stop=_agreement(ctx), log=log)
    results = {"dataset": data.name, "layer_type": layer_type, "attention_type": config["attention_type"],
               "seed": config["seed"], "processes": ctx.world_size}
    finish(model, config, outcome, results, "acc", lambda: evaluate("test")[1], log=log)
    if results["test_acc"] is not None:
        log(f"Test accuracy = {results['test_acc']:.4f}")
    return dict(results, history=outcome.history, model=model)


# ----------------------------------------------------------------------------- several processes

def _config_for_rank(config, ctx):
    """Under torchrun, every rank but 0 computes the same run and writes nothing."""
    if ctx.is_main:
        return config
    return dict(config, last_checkpoint_seconds=None, checkpoint_freq=0, enable_tensorboard=False,
                save_binary=False, results_json=None)


def _device_for(ctx, config, log):
    if not ctx.is_distributed:
        return select_device(config["force_cpu"], log=log)
    log(f"Data-parallel training: {ctx.world_size} processes on {ctx.device.type} "
        f"({'NCCL' if ctx.device.type == 'cuda' else 'gloo'}), each with its share of every step's batch")
    return ctx.device


def _data_parallel(model, ctx, device):
    """The module the training steps call: DistributedDataParallel under torchrun, else the model itself.
    Checkpoints, evaluation and early stopping keep using the plain model (the same parameters)."""
    if not ctx.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel
    # DDP broadcasts rank 0's parameters when it wraps the model: every rank starts from the same weights.
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _agreement(ctx):
    return ctx.agree_on_stop if ctx.is_distributed else None


def _join_step_without_data(ddp_model, num_features, device):
    """A rank with no data in this step still joins the gradient all-reduce, as DistributedDataParallel
    requires: a forward pass on a one-node graph (so DDP expects the backward) and zero gradients.
    The other ranks' gradients make the step."""
    one_node = torch.zeros(1, num_features, device=device)
    self_loop = torch.zeros(2, 1, dtype=torch.long, device=device)
    (ddp_model(one_node, self_loop).sum() * 0.0).backward()


def _step_seed(*numbers):
    """One seed from a few small non-negative integers (seed, epoch, step, rank), distinct for distinct inputs."""
    seed = 0
    for number in numbers:
        seed = (seed * 1_000_003 + number) % 2 ** 63
    return seed


def _silent(*args, **kwargs):
    pass


# ----------------------------------------------------------------------------- inductive (PPI)

# The paper's inductive architecture: 3 layers, 4/4/6 heads, 256 features per hidden head,
# skip connections, no dropout; the output layer averages its 6 heads.
PPI_ARCHITECTURE = dict(num_of_layers=3, num_heads_per_layer=[4, 4, 6], hidden_features=[256, 256],
                        add_skip_connection=True, bias=True, dropout=0.0)

PPI_DEFAULTS = dict(_COMMON_DEFAULTS, dataset_name="ppi", num_of_epochs=200, weight_decay=0.0, console_log_freq=10,
                    checkpoint_freq=50, batch_size=2, hidden_features=256, standardize=True, progress_bar=None)

OUT_OF_MEMORY_ADVICE = ("CUDA ran out of memory. Try --batch_size 1 (one graph per step) and/or fewer features "
                        "per head, e.g. --hidden_features 128, or train on the CPU with --force_cpu.")


def micro_f1(labels, logits):
    """Micro-averaged F1 over every (node, label) pair, as in the paper; a logit > 0 predicts 1."""
    return micro_f1_from_counts(*micro_f1_counts(labels, logits))


def micro_f1_counts(labels, logits):
    """(true positives, false positives, false negatives) over every (node, label) pair: the sums behind
    micro-F1, which several processes can add up before dividing."""
    predicted, actual = logits.detach() > 0, labels > 0.5
    return ((predicted & actual).sum().item(), (predicted & ~actual).sum().item(),
            (~predicted & actual).sum().item())


def micro_f1_from_counts(true_pos, false_pos, false_neg):
    """Micro-F1 = 2 TP / (2 TP + FP + FN): scikit-learn's micro average, 0 when there is nothing to count."""
    denominator = 2 * true_pos + false_pos + false_neg
    return 2 * true_pos / denominator if denominator else 0.0


def train_gat_ppi(config=None, log=print, splits=None):
    """Train GAT on PPI with the paper's inductive setup. Returns the results dict (plus 'history',
    'model'). `config` overrides PPI_DEFAULTS (with 'resume', the checkpoint's settings); `splits`
    ({split: [GraphData]}) skips loading. Raises TrainingInterrupted after saving on Ctrl-C/SIGTERM.

    Under torchrun (WORLD_SIZE > 1) the processes train one model with DistributedDataParallel: each
    step's batch_size graphs are split between them, the loss is normalised by the step's total number of
    nodes (so N processes make the same step as one process with the same batch_size), and every
    metric is summed over all of them. Only rank 0 prints and writes files."""
    from tqdm import tqdm

    from utils import distributed
    from utils.ppi import GraphDataLoader, load_ppi

    ctx = distributed.setup(force_cpu=bool((config or {}).get("force_cpu")))
    log = log if ctx.is_main else _silent
    config, resume = prepare_run(PPI_DEFAULTS, config, ("ppi",), "training_script_ppi.py", log)
    if config["batch_size"] % ctx.world_size:
        raise SettingsError(f"--batch_size {config['batch_size']} does not split evenly over {ctx.world_size} "
                            f"processes: it is the number of graphs per step over all of them; use a multiple "
                            f"of {ctx.world_size}")
    config = _config_for_rank(config, ctx)
    set_seed(config["seed"])
    device = _device_for(ctx, config, log)
    if splits is None:
        splits = load_ppi(config["data_dir"], standardize=config["standardize"])
    architecture = dict(PPI_ARCHITECTURE, hidden_features=[config["hidden_features"]] * 2)
    model = build_model(architecture, splits["train"][0].node_features.shape[1], splits["train"][0].num_classes,
                        config["layer_type"], attention_type=config["attention_type"]).to(device)
    if resume is not None:
        checkpoints.check_model_matches(resume, model, config["resume"])
    trained = _data_parallel(model, ctx, device)
    optimizer = make_optimizer(model, config["lr"], config["weight_decay"])
    loss_sum = nn.BCEWithLogitsLoss(reduction="sum")
    shuffle_generator = torch.Generator().manual_seed(config["seed"])
    # Every rank draws the same shuffled order (same generator) and takes its share of each batch.
    loaders = {"train": GraphDataLoader(splits["train"], config["batch_size"], shuffle=True,
                                        generator=shuffle_generator, rank=ctx.rank, world_size=ctx.world_size),
               "val": GraphDataLoader(splits["valid"], config["batch_size"], rank=ctx.rank, world_size=ctx.world_size),
               "test": GraphDataLoader(splits["test"], config["batch_size"], rank=ctx.rank, world_size=ctx.world_size)}
    show_progress = ctx.is_main and (config["progress_bar"] if config["progress_bar"] is not None
                                     else sys.stderr.isatty())

    def run_epoch(split, train, epoch=None, check_stop=None):
        """One pass over a split; returns (mean loss per node and label, micro-F1 over all its nodes)."""
        model.train(train)
        # Summed over all ranks at the end: loss, nodes, true positives, false positives, false negatives.
        totals = torch.zeros(5, dtype=torch.float64)
        with torch.set_grad_enabled(train), tqdm(loaders[split], desc=f"epoch {epoch}" if train else split,
                                                 leave=False, disable=not show_progress) as batches:
            for batch in batches:
                if check_stop is not None:
                    check_stop()
                if batch is None:  # a short last batch left this rank without a graph
                    if train:
                        optimizer.zero_grad(set_to_none=True)
                        _join_step_without_data(trained, splits["train"][0].node_features.shape[1], device)
                        optimizer.step()
                    continue
                batch = batch.to(device)
                logits = trained(batch.node_features, batch.edge_index) if train else model(
                    batch.node_features, batch.edge_index)
                loss = loss_sum(logits, batch.labels)
                if train:
                    # Mean over the step's nodes and labels on all ranks; DDP averages gradients over
                    # ranks, hence the world_size.
                    step_values = loaders[split].step_num_nodes * batch.labels.shape[1]
                    optimizer.zero_grad(set_to_none=True)
                    (loss * (ctx.world_size / step_values)).backward()
                    optimizer.step()
                totals += torch.tensor([loss.item(), batch.labels.numel(), *micro_f1_counts(batch.labels, logits)],
                                       dtype=torch.float64)
        total_loss, values, *counts = ctx.sum(totals.tolist())
        return total_loss / values, micro_f1_from_counts(*counts)

    layer_type = model.layer_type.name
    num_graphs = {split: len(graphs) for split, graphs in splits.items()}
    log(f"Training {ATTENTION_NAMES[config['attention_type']]} ({layer_type}) on PPI: "
        f"{num_graphs['train']}/{num_graphs['valid']}/{num_graphs['test']} "
        f"train/valid/test graphs, batch size {config['batch_size']}")
    results = {"dataset": "ppi", "layer_type": layer_type, "attention_type": config["attention_type"],
               "seed": config["seed"], "processes": ctx.world_size}
    try:
        outcome = fit(model, optimizer, lambda epoch, check_stop: run_epoch("train", True, epoch, check_stop),
                      lambda split: run_epoch(split, False), config, "micro_f1", resume=resume,
                      generators={"ppi_shuffle": shuffle_generator}, epochs_can_be_abandoned=True,
                      agree_on_stop=_agreement(ctx), log=log)
        finish(model, config, outcome, results, "micro_f1", lambda: run_epoch("test", False)[1], log=log)
    except torch.cuda.OutOfMemoryError:
        raise MemoryError(OUT_OF_MEMORY_ADVICE) from None
    if results["test_micro_f1"] is not None:
        log(f"Test micro-F1 = {results['test_micro_f1']:.4f}")
    return dict(results, history=outcome.history, model=model)


# ----------------------------------------------------------------------------- the scripts' main

class _Terminated(BaseException):
    """SIGTERM outside the training loop (e.g. while loading data): stop like Ctrl-C does."""


def _raise_terminated(signum, frame):
    raise _Terminated


def run_training_script(script_file, parser, train, argv=None):
    """What both training scripts do: parse the flags, train, and turn every expected way of stopping
    (bad data, a bad checkpoint, settings that cannot work together, out of memory, Ctrl-C, SIGTERM)
    into one message and an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    settings = vars(parser.parse_args(argv))
    overrides = explicit_settings(parser, argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        if settings["should_visualize"]:
            from utils.visualizations import visualize_dataset
            visualize_dataset(settings.get("dataset_name", "ppi"), settings["data_dir"])
        return train(overrides)
    except (DatasetError, CheckpointError, SettingsError, MemoryError) as error:
        sys.exit(f"error: {error}")
    except TrainingInterrupted as interrupted:
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one message for all processes
            message = str(interrupted)
            if interrupted.checkpoint_path is not None:
                message += f" Resume with: {resume_command(script_file, argv, interrupted.checkpoint_path)}"
            print(message, file=sys.stderr, flush=True)
        sys.exit(interrupted.exit_code)
    except (KeyboardInterrupt, _Terminated) as stop:
        signum = signal.SIGTERM if isinstance(stop, _Terminated) else signal.SIGINT
        print("Interrupted before training started; nothing to save.", file=sys.stderr, flush=True)
        sys.exit(128 + signum)
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        from utils.distributed import shutdown
        shutdown()


def resume_command(script_file, argv, checkpoint_path):
    """The command line that continues this run: the same flags, with --resume pointing at the checkpoint."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume="):
            kept.append(arg)
    launcher = "python"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun: resume the same way
        per_node = os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])
        launcher = f"torchrun --nproc_per_node={per_node}"
        if per_node != os.environ["WORLD_SIZE"]:
            launcher += " [your --nnodes/--rdzv flags]"
    return f"{launcher} {shlex.join([display_path(script_file), *kept, '--resume', display_path(checkpoint_path)])}"
