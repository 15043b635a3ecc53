"""The checkpoint format: what a checkpoint holds, how it is saved, loaded, found and resumed from.

A checkpoint is one dict, saved with torch.save and loaded with torch.load(weights_only=True)
(tensors and plain Python containers only, so loading runs no code):

    format_version   2
    config           the GATConfig fields: enough to rebuild the model
    model_state      the weights (a binary: the kept best-validation weights)
    optimizer_state  Adam's state (None in a binary)
    training_state   dataset, epoch (epochs completed, counted from 1), settings (the run's flags),
                     early_stopping (with the kept model's weights), history, random_states,
                     tensorboard_dir, stop_reason, run_name, commit

Files, one run's under its name (utils/runs/run.py names runs); all written atomically (serialised in memory,
then temp file, fsync, rename: a reader sees the old file or the whole new one, and a full disk leaves
neither a temp file nor a broken checkpoint):
    models/checkpoints/<run>/last.pth          refreshed every few seconds, at the end, on Ctrl-C
    models/checkpoints/<run>/epoch_<N>.pth     every --checkpoint_freq epochs, newest K kept
    models/binaries/<run>.pth                  the kept model at the end; never overwritten
    models/pretrained/cora_gat_seed0.pth       committed with the code (utils/runs/pretrained.py); no run writes here
Checkpoints of the older unnamed layout (models/checkpoints/gat_<dataset>_last.pth, ..._ckpt_epoch_<N>.pth,
models/binaries/gat_<dataset>_<index>.pth) load and resume as before.
"""

import functools
import io
import random
import shlex
import subprocess
from pathlib import Path

import numpy as np
import torch

from models import GAT, GATConfig, LayerType
from utils import paths
from utils.datasets.names import same_dataset
from utils.plumbing.files import atomic_write

FORMAT_VERSION = 2


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model or run asked for."""


@functools.lru_cache(maxsize=1)
def git_commit():
    """The current commit hash, or None when not in a git clone (or git is not installed)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True,
                                text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


# ----------------------------------------------------------------------------- making and saving

def make_checkpoint(model, optimizer=None, training_state=None):
    return {
        "format_version": FORMAT_VERSION,
        "config": dict(vars(model.config)),
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "training_state": dict(training_state or {}, commit=git_commit()),
    }


def save(checkpoint, path, exclusive=False):
    """Write atomically. exclusive=True refuses (FileExistsError) to replace an existing file.

    The bytes are made in memory first, so that a failing disk (full, read-only, gone) raises a plain
    OSError naming the reason, instead of torch's serialiser failing half-way through the file."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with atomic_write(path, "wb", exclusive=exclusive) as f:
        f.write(buffer.getbuffer())
    return Path(path)


def run_folder(run_name, directory=None):
    return Path(directory or paths.CHECKPOINTS_DIR) / run_name


def last_checkpoint_path(run_name, directory=None):
    return run_folder(run_name, directory) / "last.pth"


def numbered_checkpoint_path(run_name, epoch, directory=None):
    return run_folder(run_name, directory) / f"epoch_{epoch:06d}.pth"


def prune_numbered_checkpoints(run_name, keep, directory=None):
    """Delete all but the `keep` newest numbered checkpoints of the run; return the deleted paths."""
    paths = sorted(run_folder(run_name, directory).glob("epoch_*.pth"), key=lambda p: (p.stat().st_mtime, p.name))
    stale = paths[:-keep] if keep > 0 else paths
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def binary_path(run_name, directory=None):
    return Path(directory or paths.BINARIES_DIR) / f"{run_name}.pth"


def save_binary(checkpoint, run_name, directory=None):
    """Save as <run>.pth (then <run>-2.pth, <run>-3.pth, ... for a run that finished again): never overwrites."""
    first = binary_path(run_name, directory)
    for index in range(1, 10 ** 6):
        path = first if index == 1 else first.with_name(f"{run_name}-{index}.pth")
        try:
            return save(checkpoint, path, exclusive=True)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free binary name for {run_name} in {first.parent}")


def checkpoint_dataset(path):
    """The dataset a checkpoint or binary was trained on, or None if it cannot be read."""
    try:
        return load_checkpoint(path).get("training_state", {}).get("dataset")
    except CheckpointError:
        return None


def newest_binary(dataset_name=None, directory=None):
    """The most recently written binary (of one dataset, or of any), or a CheckpointError saying where it looked."""
    directory = Path(directory or paths.BINARIES_DIR)
    newest_first = sorted(directory.glob("*.pth"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    for path in newest_first:
        if dataset_name is None or same_dataset(checkpoint_dataset(path), dataset_name):
            return path
    which = f"{dataset_name} model" if dataset_name else "model"
    if dataset_name in ("ppi", "ppi-generated"):
        command = "python training_script_ppi.py"
    else:
        command = "python training_script_cora.py" + (f" --dataset_name {shlex.quote(str(dataset_name))}"
                                                      if dataset_name not in (None, "cora") else "")
    raise CheckpointError(f"no trained {which} in {directory}; train one first ({command}) or pass --model_name")


# ----------------------------------------------------------------------------- loading

def load_checkpoint(path, data=None):
    """Load a checkpoint safely (weights_only=True: tensors and plain containers only). data: the file's bytes, read
    elsewhere (under torchrun, by the process on the node that holds the file); path then only names it."""
    path = Path(path)
    if data is None and not path.is_file():
        available = sorted(p.name for p in path.parent.glob("*.pth")) if path.parent.is_dir() else []
        raise CheckpointError(f"no checkpoint at {path}. Available in {path.parent}: "
                              f"{', '.join(available) if available else 'none'}")
    try:
        checkpoint = torch.load(path if data is None else io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, foreign or tampered bytes fail in many ways
        detail = str(error).split(". ")[0].splitlines()[0] if str(error) else "no details"
        raise CheckpointError(f"{path} is not a readable GAT checkpoint ({type(error).__name__}: {detail}). "
                              f"It may be truncated or not a checkpoint of this project.") from None
    if not isinstance(checkpoint, dict) or "model_state" not in checkpoint or "config" not in checkpoint:
        raise CheckpointError(f"{path} is not a GAT checkpoint of this project (no model_state/config)")
    return checkpoint


def model_from_checkpoint(path_or_checkpoint, layer_type=None, log_attention_weights=False):
    """Rebuild the model saved in a checkpoint, in evaluation mode (dropout off), ready to predict; call
    `model.train()` to train it further. Any layer type loads any other's weights. Returns (model, checkpoint)."""
    checkpoint = path_or_checkpoint if isinstance(path_or_checkpoint, dict) else load_checkpoint(path_or_checkpoint)
    overrides = {"log_attention_weights": log_attention_weights}
    if layer_type is not None:
        overrides["layer_type"] = LayerType.parse(layer_type)
    try:
        model = GAT.from_config(GATConfig(**checkpoint["config"]), **overrides)
        model.load_state_dict(checkpoint["model_state"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint does not match the GAT model: {error}") from None
    return model.eval(), checkpoint


# ----------------------------------------------------------------------------- resuming

# Settings a resumed run must share with the checkpoint: changing any of them would make it another
# run, not the continuation of this one. Everything else (epochs, patience, logging, device, the
# layer implementation, which share weights) may change on resume.
FIXED_ON_RESUME = ("dataset_name", "attention_type", "lr", "weight_decay", "seed", "batch_size", "hidden_features",
                   "standardize", "fanouts", "run_name", "split", "split_seed", "train_per_class", "val_per_class",
                   "largest_component", "precision", "num_of_layers", "num_heads_per_layer", "dropout",
                   "add_skip_connection")


def resolve_resume_path(resume, dataset_name, directory=None):
    """The checkpoint --resume names: 'last' (the dataset's newest run), a run name, a run's folder or a file."""
    directory = Path(directory or paths.CHECKPOINTS_DIR)
    if resume == "last":
        # Run folders, and the single files of the older unnamed layout.
        candidates = [*directory.glob("*/last.pth"), *directory.glob(f"gat_{dataset_name}*_last.pth")]
        candidates.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for path in candidates:
            if same_dataset(checkpoint_dataset(path), dataset_name):
                return path
        raise CheckpointError(f"--resume last: no {dataset_name} run in {directory}; nothing of a {dataset_name} "
                              f"run has been saved there yet")
    named = last_checkpoint_path(resume, directory)
    if "/" not in resume and named.is_file():
        return named
    if "/" not in resume and named.parent.is_dir() and not any(named.parent.glob("*.pth")):
        raise CheckpointError(f"--resume {resume}: run {resume} saved nothing before it stopped, so there is nothing "
                              f"to continue; start it again with --run_name {resume}")
    path = Path(resume)
    if path.is_dir():
        return path / "last.pth"
    if path.is_file() or path.suffix == ".pth":
        return path  # (a missing file: load_checkpoint says what there is instead)
    runs = sorted(p.parent.name for p in directory.glob("*/last.pth"))
    raise CheckpointError(f"--resume {resume}: no run of that name in {directory} and no such file. "
                          f"Runs there: {', '.join(runs) if runs else 'none'} (python -m utils.runs lists them)")


def load_resumable(path, data=None):
    """Load a checkpoint that a run can continue from (not a final binary), with a clear error otherwise."""
    checkpoint = load_checkpoint(path, data)
    state = checkpoint.get("training_state") or {}
    if checkpoint.get("format_version") != FORMAT_VERSION or "random_states" not in state:
        raise CheckpointError(f"{path} cannot be resumed: it is a final model (models/binaries/) or was written by "
                              f"an older version. Resume from a run's models/checkpoints/<run>/last.pth or "
                              f"epoch_<N>.pth written by this version.")
    return checkpoint


def settings_for_resume(checkpoint, defaults, overrides, path):
    """The resumed run's settings: the checkpoint's, then what the user typed on top.

    Raises CheckpointError naming every typed setting that contradicts a FIXED_ON_RESUME one.
    Returns (settings, [(name, saved value, new value)] for the settings that changed)."""
    saved = _upgraded(checkpoint["training_state"]["settings"])
    typed = _upgraded({key: _plain(value) for key, value in overrides.items()})
    contradictions = [(key, saved[key], typed[key]) for key in FIXED_ON_RESUME
                      if key in typed and key in saved and typed[key] != saved[key]]
    if contradictions:
        listing = "; ".join(f"--{key} {_as_typed(new)} (checkpoint: {_as_typed(old)})"
                            for key, old, new in contradictions)
        raise CheckpointError(f"cannot resume {path} with different settings: {listing}. These define the run; "
                              f"leave them out to continue it as it was, or start a new run without --resume.")
    settings = dict(defaults)
    settings.update((key, value) for key, value in saved.items() if key in defaults)
    settings.update(overrides)
    changed = [(key, saved[key], typed[key]) for key in typed
               if key in saved and key != "resume" and typed[key] != saved[key]]
    return settings, changed


def _as_typed(value):
    """A setting's value as it is typed after its flag: '8 8 1' for a list, 'on'/'off' for a switch."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return " ".join(map(str, value)) if isinstance(value, list) else value


def _upgraded(saved):
    """Settings in today's form: PPI's hidden_features, one number before it was one per hidden layer."""
    if isinstance(saved.get("hidden_features"), int):
        return dict(saved, hidden_features=[saved["hidden_features"]])
    return saved


def check_model_matches(checkpoint, model, path):
    """Refuse a checkpoint whose model shape differs from the model these settings and data build."""
    saved = {k: v for k, v in checkpoint["config"].items() if k != "layer_type"}
    wanted = {k: v for k, v in vars(model.config).items() if k != "layer_type"}
    differing = [f"{key}: checkpoint {saved.get(key)}, now {wanted[key]}" for key in wanted
                 if saved.get(key) != wanted[key]]
    if differing:
        raise CheckpointError(f"cannot resume {path}: the model it holds differs from the one these settings and "
                              f"data build ({'; '.join(differing)})")


def plain_settings(config):
    """The run's settings as plain values (what a weights_only checkpoint can hold)."""
    return {key: _plain(value) for key, value in config.items() if key != "resume"}


def _plain(value):
    if isinstance(value, LayerType):
        return value.name
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def capture_random_states(generators=None):
    """Every random state the next epochs draw from: Python, numpy, torch (CPU, CUDA), named generators."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {key: generator.get_state() for key, generator in (generators or {}).items()},
    }


def restore_random_states(states, generators=None):
    """Put back what capture_random_states saw. Returns a warning when the CUDA generators could not be restored
    (the run was saved on another number of GPUs, or without one): the run then goes on, but not exactly as an
    uninterrupted one would."""
    random.setstate(_as_tuples(states["python"]))
    name, keys, position, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(states["torch"])
    for key, generator in (generators or {}).items():
        generator.set_state(states["generators"][key])
    saved_gpus, gpus = len(states["cuda"]), torch.cuda.device_count() if torch.cuda.is_available() else 0
    if saved_gpus and saved_gpus == gpus:
        torch.cuda.set_rng_state_all(states["cuda"])
    elif saved_gpus != gpus and (saved_gpus or gpus):
        return (f"warning: the run was saved with {saved_gpus} GPU random state(s) and resumes with {gpus} GPU(s): "
                f"its CUDA random numbers (dropout on a GPU) start afresh, so it will not repeat an uninterrupted run "
                f"exactly")
    return None


def _as_tuples(value):
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
