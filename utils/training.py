"""What both training scripts share: flags, device and seed, early stopping, TensorBoard, checkpoints.

Nothing here writes a file at import time. Files are written only by `save_checkpoint`,
`save_binary`, `write_json` (all atomic: temp file + rename) and a `SummaryWriter` that the
caller asked for with --enable_tensorboard.
"""

import argparse
import copy
import datetime
import json
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

from models import GAT, GATConfig, LayerType
from utils.data_loading import PROJECT_ROOT
from utils.files import atomic_write

CHECKPOINTS_DIR = PROJECT_ROOT / "models" / "checkpoints"
BINARIES_DIR = PROJECT_ROOT / "models" / "binaries"
RUNS_DIR = PROJECT_ROOT / "runs"
CHECKPOINT_FORMAT_VERSION = 1


# ----------------------------------------------------------------------------- flags

def positive_int(text):
    value = _parse(text, int, "an integer")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text):
    value = _parse(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text):
    value = _parse(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text):
    value = _parse(text, float, "a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def layer_type_arg(text):
    try:
        return LayerType.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parse(text, kind, description):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {description}, got {text!r}") from None


def add_common_training_args(parser, *, num_of_epochs, patience_period, lr, weight_decay, console_log_freq,
                             checkpoint_freq):
    """The flags both training scripts share, with each script's own defaults."""
    parser.add_argument("--num_of_epochs", type=positive_int, default=num_of_epochs, help="maximum training epochs")
    parser.add_argument("--patience_period", type=positive_int, default=patience_period,
                        help="stop after this many epochs without a validation loss or metric improvement")
    parser.add_argument("--lr", type=positive_float, default=lr, help="Adam learning rate")
    parser.add_argument("--weight_decay", type=non_negative_float, default=weight_decay,
                        help="L2 regularisation (Adam weight_decay)")
    parser.add_argument("--should_test", action=argparse.BooleanOptionalAction, default=True,
                        help="evaluate the best-validation model on the test split")
    parser.add_argument("--should_visualize", action="store_true", help="draw the dataset figures before training")
    parser.add_argument("--enable_tensorboard", action="store_true", help="log loss and metrics to runs/")
    parser.add_argument("--console_log_freq", type=non_negative_int, default=console_log_freq,
                        help="print metrics every this many epochs (0: never)")
    parser.add_argument("--checkpoint_freq", type=non_negative_int, default=checkpoint_freq,
                        help="save a checkpoint to models/checkpoints/ every this many epochs (0: never)")
    parser.add_argument("--layer_type", type=layer_type_arg, default=LayerType.IMP3,
                        help="GAT implementation: IMP1 or IMP2 (dense, for reading) or IMP3 (edge list, fast)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (CPU runs are repeatable)")
    parser.add_argument("--force_cpu", action="store_true", help="train on the CPU even if CUDA is available")
    parser.add_argument("--data_dir", default=None,
                        help="dataset folder (default: $GAT_DATA_DIR if set, else data/)")
    parser.add_argument("--results_json", default=None, metavar="PATH", help="write the final metrics here as JSON")
    parser.add_argument("--no_save_binary", dest="save_binary", action="store_false",
                        help="do not save the final model to models/binaries/")
    return parser


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
    (index_add_, scatter_reduce), this makes CPU runs repeatable."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def git_commit():
    """The current commit hash, or None when not in a git clone (or git is not installed)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                                text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


# ----------------------------------------------------------------------------- early stopping

class EarlyStopping:
    """The paper's early stopping (the reference TensorFlow code's rule).

    The patience counter resets whenever the validation loss or the validation metric is at least as
    good as the best seen so far; training stops after `patience` epochs without that. The model kept
    for testing is the last one that was at least as good as the best on *both* at once.
    """

    def __init__(self, patience):
        self.patience = patience
        self.best_val_loss = float("inf")
        self.best_val_metric = float("-inf")
        self.epochs_without_improvement = 0
        self.best_epoch = None
        self.best_state = None
        self.best_model_val_loss = None
        self.best_model_val_metric = None

    def step(self, epoch, val_loss, val_metric, model):
        """Record one epoch's validation result; return True when training should stop."""
        if val_loss <= self.best_val_loss or val_metric >= self.best_val_metric:
            if val_loss <= self.best_val_loss and val_metric >= self.best_val_metric:
                self.best_epoch = epoch
                self.best_state = copy.deepcopy(model.state_dict())
                self.best_model_val_loss, self.best_model_val_metric = val_loss, val_metric
            self.best_val_loss = min(val_loss, self.best_val_loss)
            self.best_val_metric = max(val_metric, self.best_val_metric)
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        return self.epochs_without_improvement >= self.patience

    def state(self):
        return {"best_val_loss": self.best_val_loss, "best_val_metric": self.best_val_metric,
                "best_epoch": self.best_epoch, "epochs_without_improvement": self.epochs_without_improvement}


# ----------------------------------------------------------------------------- TensorBoard

class NullWriter:
    """Stands in for a SummaryWriter when TensorBoard is off."""

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


def make_summary_writer(enabled, run_name):
    if not enabled:
        return NullWriter()
    from torch.utils.tensorboard import SummaryWriter
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = RUNS_DIR / f"{run_name}_{stamp}"
    print(f"TensorBoard logs: {log_dir} (view with: tensorboard --logdir runs)")
    return SummaryWriter(log_dir=str(log_dir))


# ----------------------------------------------------------------------------- checkpoints

def make_checkpoint(model, optimizer=None, training_state=None):
    return {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "config": {k: v for k, v in vars(model.config).items()},
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "training_state": dict(training_state or {}, commit=git_commit()),
    }


def _atomic_torch_save(obj, path, exclusive=False):
    with atomic_write(path, "wb", exclusive=exclusive) as f:
        torch.save(obj, f)
    return Path(path)


def save_checkpoint(checkpoint, run_name, epoch, directory=None):
    """Save a mid-training checkpoint as models/checkpoints/gat_<run>_ckpt_epoch_<epoch>.pth."""
    path = Path(directory or CHECKPOINTS_DIR) / f"gat_{run_name}_ckpt_epoch_{epoch:06d}.pth"
    return _atomic_torch_save(checkpoint, path)


def save_binary(checkpoint, dataset_name, directory=None):
    """Save as gat_<dataset>_000000.pth, gat_<dataset>_000001.pth, ...: never overwrites a binary."""
    directory = Path(directory or BINARIES_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    index = len(list(directory.glob(f"gat_{dataset_name}_*.pth")))
    while True:
        path = directory / f"gat_{dataset_name}_{index:06d}.pth"
        try:
            return _atomic_torch_save(checkpoint, path, exclusive=True)
        except FileExistsError:
            index += 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the model asked for."""


def load_checkpoint(path):
    """Load a checkpoint safely (weights_only=True: tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        available = sorted(p.name for p in path.parent.glob("*.pth")) if path.parent.is_dir() else []
        raise CheckpointError(f"no checkpoint at {path}. Available in {path.parent}: "
                              f"{', '.join(available) if available else 'none'}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable GAT checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(checkpoint, dict) or "model_state" not in checkpoint or "config" not in checkpoint:
        raise CheckpointError(f"{path} is not a GAT checkpoint of this project (no model_state/config)")
    return checkpoint


def model_from_checkpoint(path_or_checkpoint, layer_type=None, log_attention_weights=False):
    """Rebuild the model saved in a checkpoint. Any layer type loads any other's weights."""
    checkpoint = path_or_checkpoint if isinstance(path_or_checkpoint, dict) else load_checkpoint(path_or_checkpoint)
    overrides = {"log_attention_weights": log_attention_weights}
    if layer_type is not None:
        overrides["layer_type"] = LayerType.parse(layer_type)
    try:
        model = GAT.from_config(GATConfig(**checkpoint["config"]), **overrides)
        model.load_state_dict(checkpoint["model_state"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint does not match the GAT model: {error}") from None
    return model, checkpoint


def write_json(path, payload):
    with atomic_write(path, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    return Path(path)
