"""The training loop both trainers share: `fit` trains, validates, logs, early-stops and checkpoints.

A trainer (utils/training/one_graph.py, utils/training/many_graphs.py) says what one epoch and one evaluation are;
`fit` calls them until --num_of_epochs, the paper's early stopping (utils/training/early_stopping.py) or a stop
signal, and keeps the run resumable: every few seconds, at the end and on Ctrl-C it saves a snapshot of
everything the next epoch needs (utils/runs/saver.py saves it; utils/runs/checkpoints.py says what it holds).
"""

import copy
import dataclasses
import math
import time
from pathlib import Path

import torch

from utils.plumbing.files import display_path
from utils.plumbing.signals import DeferredSignals, EpochAbandoned
from utils.runs import checkpoints
from utils.runs.saver import RunSaver
from utils.training.early_stopping import EarlyStopping
from utils.training.tensorboard import make_summary_writer

METRIC_NAMES = {"acc": "accuracy", "micro_f1": "micro-F1"}  # how the console says them

STOP_MESSAGES = {
    "num_of_epochs": "Reached --num_of_epochs ({num_of_epochs}).",
    "early_stopping": "Early stopping at epoch {epoch}: no validation loss or {metric} improvement for "
                      "{patience_period} epochs.",
    "interrupted": "Interrupted at epoch {epoch}.",
}

DIVERGENCE_ADVICE = "Try a lower --lr (now {lr:g}) in a new run; it is fixed on resume."

# A dense layer (IMP1, IMP2) whose first epoch takes longer than this many seconds says once that IMP3 trains
# the same model (same weights, same results to rounding) for a fraction of the time; IMP4 always says it.
DENSE_EPOCH_HINT_SECONDS = 1.0
DENSE_LAYER_TYPES = ("IMP1", "IMP2")


@dataclasses.dataclass
class Outcome:
    """How `fit` ended: why, after how many epochs (counted from 1), and what it saved last.

    last_checkpoint: the newest resumable checkpoint that was written whole (holding epoch `saved_epoch`);
    save_error: why the final save failed, if it did; message: what to tell the user (divergence)."""
    stop_reason: str
    epochs: int
    train_seconds: float
    history: list
    stopper: EarlyStopping
    last_checkpoint: Path = None
    signum: int = None
    saved_epoch: int = None
    save_error: str = None
    message: str = None


class Progress:
    """Where a run is: its epoch (counted from 1), history, early stopping and training time; what a checkpoint
    records of them. Starts fresh, or from a resumed checkpoint (whose weights and optimizer it loads)."""

    def __init__(self, model, optimizer, config, generators=None, resume=None, precision=None, log=print):
        self.model, self.optimizer, self.config, self.generators = model, optimizer, config, generators
        self.precision = precision
        self.stopper = EarlyStopping(config["patience_period"])
        self.history, self.epoch, self.seconds_before, self.tensorboard_dir = [], 0, 0.0, None
        if resume is not None:
            state = resume["training_state"]
            model.load_state_dict(resume["model_state"])
            optimizer.load_state_dict(resume["optimizer_state"])
            self.stopper.load_state(state["early_stopping"])
            self.history, self.epoch = list(state["history"]), state["epoch"]
            self.seconds_before, self.tensorboard_dir = state["train_seconds"], state["tensorboard_dir"]
            if precision is not None:
                precision.load_state_dict(state.get("grad_scaler"))
            warning = checkpoints.restore_random_states(state["random_states"], generators)
            if warning:
                log(warning)
        self.started = time.perf_counter()

    def seconds(self, at=None):
        """Training time so far, the resumed run's included."""
        return self.seconds_before + (at or time.perf_counter()) - self.started

    def checkpoint(self, stop_reason, at=None):
        """Everything the next epoch needs; `at`: the clock time the state is from (default: now)."""
        training_state = dict(dataset=self.config["dataset_name"], run_name=self.config["run_name"], epoch=self.epoch,
                              settings=checkpoints.plain_settings(self.config),
                              early_stopping=self.stopper.state(), history=list(self.history),
                              random_states=checkpoints.capture_random_states(self.generators),
                              tensorboard_dir=self.tensorboard_dir, stop_reason=stop_reason,
                              train_seconds=self.seconds(at),
                              grad_scaler=self.precision.state_dict() if self.precision is not None else None)
        return checkpoints.make_checkpoint(self.model, self.optimizer, training_state)


def fit(model, optimizer, train_one_epoch, evaluate, config, metric_name, *, resume=None, generators=None,
        epochs_can_be_abandoned=False, agree_on_stop=None, precision=None, log=print):
    """Train until --num_of_epochs, early stopping or Ctrl-C; leave the model at its kept weights.

    train_one_epoch(epoch, check_stop) -> (loss, metric) on the training data; it may call check_stop()
    between steps when epochs_can_be_abandoned (then the loop keeps the state each epoch began from in
    memory, to go back to if the epoch in progress is dropped). evaluate(split) -> (loss, metric).
    resume: a checkpoint from checkpoints.load_resumable; generators: {name: torch.Generator} whose
    states belong in a checkpoint (e.g. the PPI shuffle order). agree_on_stop: under torchrun, the
    collective that makes every process stop at the same step (DistributedContext.agree_on_stop). precision: the
    run's Precision, whose gradient scaler (fp16) a checkpoint keeps.

    A non-finite training or validation loss (the latter: non-finite weights after the epoch's steps) stops the
    run at that epoch as "diverged": nothing of that epoch is saved, the last checkpoint written stays the
    last finite state. A save that fails (a full disk, say) is a warning: training goes on and the next save
    tries again; a failed final save is reported in the Outcome.
    """
    progress = Progress(model, optimizer, config, generators, resume, precision, log)
    writer, progress.tensorboard_dir = make_summary_writer(config["enable_tensorboard"], config["run_name"],
                                                           progress.tensorboard_dir, purge_step=progress.epoch + 1,
                                                           log=log)
    resumed_from = config.get("resume") if resume is not None else None
    saver = RunSaver(config, log, resumed_from, progress.epoch)
    saver.announce()
    # Where the epoch in progress began, kept only when an epoch can be dropped half-way.
    epoch_start = _EpochStart(model, optimizer, generators) if epochs_can_be_abandoned else None
    stop_reason, diverged, abandoned, hinted = None, None, False, False

    with DeferredSignals(agree_on_stop) as signals:
        try:
            if progress.stopper.should_stop():
                stop_reason = "early_stopping"  # a resumed run that had already stopped
            while stop_reason is None:
                if progress.epoch >= config["num_of_epochs"]:
                    stop_reason = "num_of_epochs"
                    break
                if signals.stop_requested():
                    stop_reason = "interrupted"
                    break
                if epoch_start is not None:
                    epoch_start.capture()
                try:
                    began = time.perf_counter()
                    train_loss, train_metric = train_one_epoch(progress.epoch + 1, signals.check)
                    if not hinted:
                        hinted = _hint_when_dense_is_slow(model, time.perf_counter() - began, log)
                except EpochAbandoned:
                    # Back to the last completed epoch; the history and early stopping still are there.
                    stop_reason, abandoned = "interrupted", True
                    epoch_start.restore()
                    break
                val_loss, val_metric = evaluate("val")
                progress.epoch += 1
                diverged = _divergence(train_loss, val_loss)
                if diverged:
                    stop_reason = "diverged"
                    break
                _record(progress, writer, metric_name, train_loss, train_metric, val_loss, val_metric, log)

                if progress.stopper.step(progress.epoch, val_loss, val_metric, model):
                    stop_reason = "early_stopping"
                elif signals.stop_requested():
                    stop_reason = "interrupted"
                if saver.numbered_due(progress.epoch):
                    saver.save_numbered(progress.checkpoint(stop_reason), progress.epoch)
                if stop_reason is None and saver.last_due():
                    saver.save_last(progress.checkpoint(stop_reason))

            if diverged:
                saver.mark_diverged(progress.epoch)
            else:  # (after a dropped epoch: the one before it, with the time it had taken)
                saver.save_last(progress.checkpoint(stop_reason, at=epoch_start.started if abandoned else None))
        finally:
            writer.close()

    outcome = Outcome(stop_reason=stop_reason, epochs=progress.epoch, train_seconds=progress.seconds(),
                      history=progress.history, stopper=progress.stopper, last_checkpoint=saver.saved_path,
                      signum=signals.received, saved_epoch=saver.saved_epoch, save_error=saver.last_error)
    if diverged:
        kept = (f"{display_path(saver.saved_path)} keeps the last finite state (epoch {saver.saved_epoch})"
                if saver.saved_path else "nothing was saved before it")
        outcome.message = (f"training diverged at epoch {progress.epoch}: {diverged}. The run stopped there; {kept}. "
                           + DIVERGENCE_ADVICE.format(**config))
    elif stop_reason != "interrupted":
        log(STOP_MESSAGES[stop_reason].format(epoch=progress.epoch, metric=METRIC_NAMES[metric_name], **config))
        if saver.saved_path is not None and saver.last_error is None:
            further = ("a larger --num_of_epochs" if stop_reason == "num_of_epochs"
                       else "a larger --patience_period (and --num_of_epochs)")
            log(f"Saved {display_path(saver.saved_path)} (epoch {progress.epoch}; to train it further: --resume "
                f"{config['run_name']} with {further})")
        model.load_state_dict(progress.stopper.best_state)
        log(progress.stopper.describe_kept_model(METRIC_NAMES[metric_name]))
    return outcome


def _hint_when_dense_is_slow(model, seconds, log):
    """After the first epoch: a dense implementation that took over DENSE_EPOCH_HINT_SECONDS, and IMP4 always, say
    once that IMP3 is the one to train with. Returns True (it is said, or nothing needs saying)."""
    layer_type = getattr(getattr(model, "layer_type", None), "name", None)
    if layer_type in DENSE_LAYER_TYPES and seconds > DENSE_EPOCH_HINT_SECONDS:
        log(f"Note: an {layer_type} epoch took {seconds:.1f} s here. {layer_type} computes attention for every pair "
            f"of nodes (N x N), to show the paper's arithmetic; --layer_type IMP3 trains the same model (the same "
            f"weights; results equal up to rounding) over the edges only, in a fraction of the time.")
    elif layer_type == "IMP4":
        log(f"Note: an IMP4 epoch took {seconds:.2f} s here. IMP4 writes attention with PyTorch's sparse API, to show "
            f"what that API costs; --layer_type IMP3 trains the same model (the same weights; results equal up to "
            f"rounding) over the same edges several times faster (docs/performance.md, IMP1 to IMP4).")
    return True


def _divergence(train_loss, val_loss):
    """What became non-finite, or None. (The losses are host floats already: checking them costs no sync.)"""
    if not math.isfinite(train_loss):
        return f"the training loss became {train_loss}"
    if not math.isfinite(val_loss):
        return f"the validation loss became {val_loss} (the weights after this epoch's steps are not finite)"
    return None


def _record(progress, writer, metric_name, train_loss, train_metric, val_loss, val_metric, log):
    """One epoch's numbers into the history, TensorBoard, and every --console_log_freq epochs the console."""
    epoch = progress.epoch
    progress.history.append({"epoch": epoch, "train_loss": train_loss, f"train_{metric_name}": train_metric,
                             "val_loss": val_loss, f"val_{metric_name}": val_metric})
    for name, value in progress.history[-1].items():
        if name != "epoch":
            writer.add_scalar(name, value, epoch)
    freq = progress.config["console_log_freq"]
    if freq and (epoch == 1 or epoch % freq == 0):
        log(f"epoch {epoch:5d} | {time.perf_counter() - progress.started:7.1f}s | train loss {train_loss:.4f} "
            f"{metric_name} {train_metric:.4f} | val loss {val_loss:.4f} {metric_name} {val_metric:.4f}")


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
