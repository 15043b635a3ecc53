"""The training loop both trainers share: `fit` trains, validates, logs, early-stops and checkpoints.

A trainer (utils/training/one_graph.py, utils/training/many_graphs.py) says what one epoch and one evaluation are;
`fit` calls them until --num_of_epochs, the paper's early stopping (`EarlyStopping`) or a stop signal, and
keeps the run resumable: every few seconds, at the end and on Ctrl-C it saves a snapshot of everything the
next epoch needs (utils/runs/checkpoints.py says what a checkpoint holds).
"""

import copy
import dataclasses
import math
import time
from pathlib import Path

import torch

from utils.runs import checkpoints
from utils import paths
from utils.runs.files import display_path
from utils.runs.signals import DeferredSignals, EpochAbandoned



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


# ----------------------------------------------------------------------------- TensorBoard

class NullWriter:
    """Stands in for a SummaryWriter when TensorBoard is off."""

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


def tensorboard_folder(run_name):
    return paths.RUNS_DIR / run_name


def make_summary_writer(enabled, run_name, log_dir=None, purge_step=None, log=print):
    """A SummaryWriter in runs/<run>/, or in `log_dir` to continue a resumed run's curves."""
    if not enabled:
        return NullWriter(), log_dir
    from torch.utils.tensorboard import SummaryWriter
    if log_dir is None:
        log_dir, purge_step = tensorboard_folder(run_name), None
    log(f"TensorBoard logs: {display_path(log_dir)} (view with: tensorboard --logdir runs)")
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step), str(log_dir)


# ----------------------------------------------------------------------------- the loop

METRIC_NAMES = {"acc": "accuracy", "micro_f1": "micro-F1"}  # how the console says them

STOP_MESSAGES = {
    "num_of_epochs": "Reached --num_of_epochs ({num_of_epochs}).",
    "early_stopping": "Early stopping at epoch {epoch}: no validation loss or {metric} improvement for "
                      "{patience_period} epochs.",
    "interrupted": "Interrupted at epoch {epoch}.",
}

DIVERGENCE_ADVICE = "Try a lower --lr (now {lr:g}) in a new run; it is fixed on resume."


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


def fit(model, optimizer, train_one_epoch, evaluate, config, metric_name, *, resume=None, generators=None,
        epochs_can_be_abandoned=False, agree_on_stop=None, log=print):
    """Train until --num_of_epochs, early stopping or Ctrl-C; leave the model at its kept weights.

    train_one_epoch(epoch, check_stop) -> (loss, metric) on the training data; it may call check_stop()
    between steps when epochs_can_be_abandoned (then the loop keeps the state each epoch began from in
    memory, to go back to if the epoch in progress is dropped). evaluate(split) -> (loss, metric).
    resume: a checkpoint from checkpoints.load_resumable; generators: {name: torch.Generator} whose
    states belong in a checkpoint (e.g. the PPI shuffle order). agree_on_stop: under torchrun, the
    collective that makes every process stop at the same step (DistributedContext.agree_on_stop).

    A non-finite training or validation loss (the latter: non-finite weights after the epoch's steps) stops the
    run at that epoch as "diverged": nothing of that epoch is saved, the last checkpoint written stays the
    last finite state. A save that fails (a full disk, say) is a warning: training goes on and the next save
    tries again; a failed final save is reported in the Outcome.
    """
    dataset, run_name = config["dataset_name"], config["run_name"]
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
    writer, tensorboard_dir = make_summary_writer(config["enable_tensorboard"], run_name, tensorboard_dir,
                                                  purge_step=epoch + 1, log=log)
    last_path = checkpoints.last_checkpoint_path(run_name)
    save_every = config["last_checkpoint_seconds"]
    if save_every is not None:
        every = f"every {save_every:g} s" if save_every > 0 else "after every epoch"
        log(f"The run is saved to {display_path(last_path)} {every}, at the end and on Ctrl-C.")

    start = time.perf_counter()
    stop_reason = None

    def snapshot(at=None):
        training_state = dict(dataset=dataset, run_name=run_name, epoch=epoch,
                              settings=checkpoints.plain_settings(config),
                              early_stopping=stopper.state(), history=list(history),
                              random_states=checkpoints.capture_random_states(generators),
                              tensorboard_dir=tensorboard_dir, stop_reason=stop_reason,
                              train_seconds=seconds_before + (at or time.perf_counter()) - start)
        return checkpoints.make_checkpoint(model, optimizer, training_state)

    # The newest checkpoint written whole: (path, epoch it holds). A resumed run starts from its own file.
    saved = (Path(config["resume"]), epoch) if resume is not None and config.get("resume") else (None, None)
    save_error, failing = None, set()

    def try_save(checkpoint, path):
        """Save; on an I/O error (a full disk, say) warn (once until a save works again) and go on. Returns the
        error's text, or None. The file that was there is left whole: save() writes a temp file and renames."""
        kind = path.parent / path.name.split("_")[0]  # last.pth, or the numbered epoch_*.pth
        try:
            checkpoints.save(checkpoint, path)
        except OSError as error:
            reason = error.strerror or str(error)
            if kind not in failing:
                log(f"warning: could not save {display_path(path)} ({reason}); training goes on and the next "
                    f"save tries again")
            failing.add(kind)
            return reason
        if kind in failing:
            failing.discard(kind)
            log(f"Saved {display_path(path)} again.")
        return None

    def save_last(checkpoint):
        nonlocal saved, save_error
        if save_every is None:
            return
        save_error = try_save(checkpoint, last_path)
        if save_error is None:
            saved = (last_path, checkpoint["training_state"]["epoch"])

    last_saved_at = time.perf_counter()
    abandoned, diverged = False, None
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
                except EpochAbandoned:
                    # Back to the last completed epoch; the history and early stopping still are there.
                    stop_reason, abandoned = "interrupted", True
                    epoch_start.restore()
                    break
                val_loss, val_metric = evaluate("val")
                epoch += 1
                if not (math.isfinite(train_loss) and math.isfinite(val_loss)):  # (host floats: no extra sync)
                    stop_reason = "diverged"
                    diverged = (f"the training loss became {train_loss}" if not math.isfinite(train_loss) else
                                f"the validation loss became {val_loss} (the weights after this epoch's steps are "
                                f"not finite)")
                    break
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
                    path = checkpoints.numbered_checkpoint_path(run_name, epoch)
                    if try_save(snapshot(), path) is None:
                        removed = checkpoints.prune_numbered_checkpoints(run_name, config["keep_checkpoints"])
                        log(f"Saved checkpoint {display_path(path)}"
                            + (f" (removed {len(removed)} older; --keep_checkpoints {config['keep_checkpoints']})"
                               if removed else ""))
                if stop_reason is None:
                    if save_every is not None and time.perf_counter() - last_saved_at >= save_every:
                        save_last(snapshot())
                        last_saved_at = time.perf_counter()

            if diverged:
                if saved[0] == last_path:
                    _mark_diverged(last_path, epoch)
            else:  # (after a dropped epoch: the one before it, with the time it had taken)
                save_last(snapshot(at=epoch_start.started if abandoned else None))
        finally:
            writer.close()
    train_seconds = seconds_before + time.perf_counter() - start
    outcome = Outcome(stop_reason, epoch, train_seconds, history, stopper, saved[0], signals.received, saved[1],
                      save_error)
    if diverged:
        kept = (f"{display_path(saved[0])} keeps the last finite state (epoch {saved[1]})" if saved[0] else
                "nothing was saved before it")
        outcome.message = (f"training diverged at epoch {epoch}: {diverged}. The run stopped there; {kept}. "
                           + DIVERGENCE_ADVICE.format(**config))
    elif stop_reason != "interrupted":
        log(STOP_MESSAGES[stop_reason].format(epoch=epoch, metric=METRIC_NAMES[metric_name], **config))
        if saved[0] is not None and save_error is None:
            log(f"Saved {display_path(saved[0])} (epoch {epoch}; continue it with --resume {run_name})")
        model.load_state_dict(stopper.best_state)
        log(stopper.describe_kept_model(METRIC_NAMES[metric_name]))
    return outcome


def _mark_diverged(path, epoch):
    """Record in the last checkpoint written (a finite state) that the run diverged after it, so that the run
    list says so and --resume refuses to repeat it. Its weights are not touched; if this fails, it stays as it was."""
    if path is None:
        return
    try:
        checkpoint = checkpoints.load_checkpoint(path)
        checkpoint["training_state"].update(stop_reason="diverged", diverged_at_epoch=epoch)
        checkpoints.save(checkpoint, path)
    except (OSError, checkpoints.CheckpointError):
        pass


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
