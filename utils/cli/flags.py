"""The training scripts' flags: the ones both scripts share, the model's shape, and the values only they take (a run
name, a layer type). Every value check, the on/off convention and the help's defaults: utils/plumbing/arguments.py.
"""

import argparse

from models import LayerType
from models.gat_layers import ATTENTION_TYPES
from utils.plumbing.arguments import (OnOffFlag, non_negative_float, non_negative_int, positive_float, positive_int,
                                      unit_interval)
from utils.runs.run import RUN_NAME_PATTERN
from utils.training.precision import PRECISIONS


def run_name_arg(text):
    if not RUN_NAME_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"use letters, digits, '.', '_' and '-' (at most 128, no '/'), got {text!r}")
    return text


def layer_type_arg(text):
    try:
        return LayerType.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# ----------------------------------------------------------------------------- the training flags

def add_common_training_args(parser, defaults):
    """The flags both training scripts share. `defaults` is the script's defaults dict (ONE_GRAPH_DEFAULTS of
    utils/training/one_graph.py, MANY_GRAPHS_DEFAULTS of utils/training/many_graphs.py): what --help says is what
    the code uses."""
    add = parser.add_argument
    add("--num_of_epochs", type=positive_int, default=defaults["num_of_epochs"], help="maximum training epochs")
    add("--patience_period", type=positive_int, default=defaults["patience_period"],
        help="stop after this many epochs in which neither the validation loss nor the metric was at least as "
             "good as its best so far (the paper's rule: a tie with the best counts as progress)")
    add("--lr", type=positive_float, default=defaults["lr"], help="Adam learning rate")
    add("--weight_decay", type=non_negative_float, default=defaults["weight_decay"],
        help="L2 regularisation (Adam weight_decay)")
    add("--layer_type", type=layer_type_arg, default=defaults["layer_type"],
        help="GAT implementation: IMP1 or IMP2 (dense, for reading), IMP3 (edge list, fast) or IMP4 (PyTorch's "
             "sparse API)")
    add("--attention_type", choices=ATTENTION_TYPES, default=defaults["attention_type"],
        help="gat: the paper's static attention; gatv2: dynamic attention (Brody et al., 2022)")
    add("--seed", type=non_negative_int, default=defaults["seed"], help="random seed (CPU runs are repeatable)")
    add("--force_cpu", action=OnOffFlag, default=defaults["force_cpu"],
        help="train on the CPU even if CUDA is available")
    add("--precision", choices=PRECISIONS, default=defaults["precision"],
        help="fp32 (the paper's), or mixed precision with torch.autocast on the run's device: bf16, or fp16 "
             "with a gradient scaler. Only the projections change precision (the attention stays float32); on a "
             "2-core CPU 200 Cora epochs took 1.8-2.0 s in fp32, 1.9-2.0 s in bf16 and 2.1-2.2 s in fp16")
    add("--tf32", action=OnOffFlag, default=defaults["tf32"],
        help="on a GPU with tensor cores (NVIDIA Ampere and newer), let float32 matrix products run in TF32: faster "
             "projections, products rounded to about 1e-3 relative; nothing changes on the CPU")
    add("--data_dir", default=defaults["data_dir"], metavar="DIR",
        help="dataset folder; without it: $GAT_DATA_DIR if set, else data/")
    add("--should_test", action=OnOffFlag, default=defaults["should_test"],
        help="evaluate the kept (best-validation) model on the test split")
    add("--should_visualize", action=OnOffFlag, default=defaults["should_visualize"],
        help="draw the dataset figures before training")
    add("--enable_tensorboard", action=OnOffFlag, default=defaults["enable_tensorboard"],
        help="log loss and metrics to runs/<run>/")
    add("--console_log_freq", type=non_negative_int, default=defaults["console_log_freq"],
        help="print metrics every this many epochs (0: never)")
    add("--run_name", type=run_name_arg, default=defaults["run_name"], metavar="NAME",
        help="the run's name, which all its files carry; without it: <dataset>_<attention>_seed<seed>_<start time>")
    add("--checkpoint_freq", type=non_negative_int, default=defaults["checkpoint_freq"],
        help="save a numbered checkpoint models/checkpoints/<run>/epoch_<N>.pth every this many epochs (0: never)")
    add("--keep_checkpoints", type=positive_int, default=defaults["keep_checkpoints"], metavar="K",
        help="keep only the newest K numbered checkpoints of the run")
    add("--last_checkpoint_seconds", type=non_negative_float, default=defaults["last_checkpoint_seconds"],
        metavar="S", help="refresh models/checkpoints/<run>/last.pth after at most S seconds of training, "
                          "at the end, and on Ctrl-C/SIGTERM (0: after every epoch)")
    add("--resume", default=None, metavar="RUN",
        help="continue a run: 'last' (the dataset's newest run), a run name (python -m utils.runs lists them), "
             "or a checkpoint's path")
    add("--save_binary", action=OnOffFlag, default=defaults["save_binary"],
        help="save the kept model to models/binaries/<run>.pth at the end")
    add("--results_json", default=defaults["results_json"], metavar="PATH",
        help="write the final metrics (and why training stopped) here as JSON")
    return parser


def add_architecture_args(parser, defaults, per_dataset=None):
    """The model's shape, named as the original's gat_config. `per_dataset`: {flag's dest: how its default depends on
    the dataset}, for the settings whose default in `defaults` is None (utils/training/architecture.py fills
    them in)."""
    per_dataset = per_dataset or {}

    def add(flag, help_text, **kwargs):
        note = per_dataset.get(flag)
        parser.add_argument(f"--{flag}", default=defaults[flag], help=help_text + (f" (default: {note})" if note
                                                                                   else ""), **kwargs)
    add("num_of_layers", "GAT layers", type=positive_int)
    add("num_heads_per_layer", "attention heads of each layer, one number per layer (hidden layers concatenate "
        "their heads, the output layer averages them)", type=positive_int, nargs="+", metavar="H")
    add("hidden_features", "features per head of each hidden layer: one number per hidden layer, or one for all",
        type=positive_int, nargs="+", metavar="F")
    add("dropout", "dropout probability on every layer's input and attention", type=unit_interval)
    add("add_skip_connection", "add each layer's input to its output (a skip connection)", action=OnOffFlag)
    return parser


def say_default_per_dataset(parser, notes):
    """Append '(default: <note>)' to the help of the flags (by dest) whose default depends on the dataset."""
    for action in parser._actions:
        if action.dest in notes:
            action.help = f"{action.help} (default: {notes[action.dest]})"
    return parser
