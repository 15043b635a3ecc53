"""The runs there are, from their checkpoints: name, dataset, layer type, attention, seed, model, split, sampling,
precision, epochs, status, best validation and test metric.

    python -m utils.runs                      # every run
    python -m utils.runs --dataset_name cora
"""

import json
import math

from utils import paths
from utils.datasets.names import honest_name
from utils.plumbing import lock
from utils.plumbing.arguments import new_parser
from utils.plumbing.files import display_path
from utils.runs import checkpoints
from utils.runs.checkpoints import CheckpointError
from utils.runs.run import RESULTS_NAME, STATUSES
from utils.training.architecture import describe_architecture, from_checkpoint_model


def list_runs(dataset_name=None):
    """One dict per run with a checkpoint in models/checkpoints/, oldest first: name, dataset, layer type,
    attention, seed, model, split, sampling, precision, epochs, status, best validation metric and the test metric
    of a run that was tested (with or without a binary)."""
    found = []
    for path in sorted(paths.CHECKPOINTS_DIR.glob("*/last.pth"), key=lambda p: p.stat().st_mtime):
        try:
            checkpoint = checkpoints.load_checkpoint(path)
            state = checkpoint["training_state"]
        except (CheckpointError, KeyError, TypeError):
            found.append(dict(name=path.parent.name, status="unreadable"))
            continue
        if dataset_name is not None and dataset_name not in (state.get("dataset"), honest_name(state.get("dataset"))):
            continue
        settings, stopping = state.get("settings", {}), state.get("early_stopping", {})
        row = dict(name=path.parent.name, dataset=honest_name(state.get("dataset")),
                   layer=settings.get("layer_type"), attention=settings.get("attention_type"),
                   seed=settings.get("seed"), model=describe_architecture(from_checkpoint_model(settings, checkpoint)),
                   split=describe_split(settings), sampling=describe_sampling(settings), epochs=state.get("epoch"),
                   status=describe_status(state.get("stop_reason"), path.parent),
                   best_val=stopping.get("best_model_val_metric"), test=None)
        row["test"] = _test_metric(path.parent)
        row["precision"] = settings.get("precision", "fp32")
        found.append(row)
    return found


def _test_metric(folder):
    """The test metric the run printed at its end: from its results beside last.pth, else from its binary."""
    results = folder / RESULTS_NAME
    if results.is_file():
        try:
            return next((v for k, v in json.loads(results.read_text()).items() if k.startswith("test_")), None)
        except (OSError, ValueError, AttributeError):
            pass
    binary = checkpoints.binary_path(folder.name)
    if binary.is_file():
        binary_state = checkpoints.load_checkpoint(binary).get("training_state", {})
        return next((v for k, v in binary_state.items() if k.startswith("test_")), None)
    return None


def describe_status(stop_reason, folder):
    """'training (pid N)' while a process holds the run's lock (utils/plumbing/lock.py); 'killed' when a process that
    trained it left its lock file behind (it never reached its end, whatever its last save says); else how its last
    save says it ended: 'finished', 'interrupted', 'diverged', or 'killed' (saved while it trained, and nothing
    since)."""
    owner = lock.holder(folder)
    if owner is not None:
        return f"training (pid {owner or '?'})"
    if lock.left_behind(folder):
        return STATUSES[None]
    return STATUSES.get(stop_reason, stop_reason)


def describe_split(settings):
    """'public', 'random 3' (the split seed), or '-' for datasets whose split is their own (PPI's graphs)."""
    split = settings.get("split")
    return f"random {settings.get('split_seed')}" if split == "random" else split or "-"


def describe_sampling(settings):
    """'full-batch', 'fanouts 10 10, batch 256' (neighbour-sampled), or PPI's 'batch 2 graphs'."""
    if settings.get("dataset_name") == "ppi" or "standardize" in settings:
        return f"batch {settings.get('batch_size')} graphs"
    if settings.get("fanouts"):
        return f"fanouts {' '.join(map(str, settings['fanouts']))}, batch {settings.get('batch_size')}"
    return "full-batch"


def format_runs(rows):
    if not rows:
        return f"No runs in {display_path(paths.CHECKPOINTS_DIR)} yet."
    columns = ("name", "dataset", "layer", "attention", "seed", "model", "split", "sampling", "precision", "epochs",
               "status", "best_val", "test")

    def cell(value):
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.4f}"
        return "-" if value is None else str(value)
    table = [columns] + [tuple(cell(row.get(column)) for column in columns) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in table)


def get_parser():
    parser = new_parser("List the runs in models/checkpoints/: status, epochs, best validation and test metric.",
                        prog="python -m utils.runs")
    parser.add_argument("--dataset_name", type=str.lower, default=None, help="only the runs of this dataset")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    rows = list_runs(args.dataset_name)
    every_run = list_runs() if not rows and args.dataset_name is not None else rows  # (read again only then)
    if not rows and every_run:
        datasets = sorted({row.get("dataset") or "?" for row in every_run})
        print(f"No {args.dataset_name} runs in {display_path(paths.CHECKPOINTS_DIR)}; there are runs of "
              f"{', '.join(datasets)} (python -m utils.runs lists them all).")
        return
    print(format_runs(rows))
