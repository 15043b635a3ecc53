"""Command-line flags: the value checks, the flags both training scripts share, help that tells the truth.

One convention for on/off flags: `--name` turns it on, `--no_name` turns it off, and the help says
which one is the default. The flag tables in the docs are generated from the parsers by docs/flag_tables.py.
"""

import argparse
import re

from models import LayerType
from models.gat_layers import ATTENTION_TYPES
from utils.training.precision import PRECISIONS


class SettingsError(ValueError):
    """Settings that cannot work together (said before any training starts)."""


# ----------------------------------------------------------------------------- value checks

def _parse(text, kind, description):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {description}, got {text!r}") from None


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


def layer_number(text):
    """A layer, counted from 1 as every figure and table counts them (1 = the first layer)."""
    value = _parse(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"layers are counted from 1 (1 = the first layer), got {text}")
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


def unit_interval(text):
    value = _parse(text, float, "a number")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def writable_file(text):
    """A file the command will write at its end (a results JSON): checked now, so that a long run does not end
    in an error about its folder. Nothing is created by the check."""
    from utils.runs.files import OutputError, check_writable
    try:
        check_writable(text, is_file=True)
    except OutputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


RUN_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a file name on every system, no path


def run_name_arg(text):
    if not RUN_NAME_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"use letters, digits, '.', '_' and '-' (at most 128, no '/'), got {text!r}")
    return text


def layer_type_arg(text):
    try:
        return LayerType.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# ----------------------------------------------------------------------------- help that tells the truth

class OnOffFlag(argparse.Action):
    """`--name` / `--no_name`. Registered under both spellings; the default is said as on/off."""

    def __init__(self, option_strings, dest, default=False, help=None, **kwargs):
        name = option_strings[0][2:]
        super().__init__([f"--{name}", f"--no_{name}"], dest, nargs=0, default=default, help=help, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no_"))

    def format_usage(self):
        return " | ".join(self.option_strings)


def describe_default(action):
    """The default as a person would say it: on/off, a layer type's name, nothing for None."""
    default = action.default
    if default is argparse.SUPPRESS:
        return None
    if isinstance(action, OnOffFlag) or action.nargs == 0:
        return "auto" if default is None else "on" if default else "off"
    if default is None:
        return None
    if isinstance(default, (list, tuple)):
        return " ".join(str(getattr(d, "name", d)) for d in default)
    return str(getattr(default, "name", default))


class HelpFormatter(argparse.HelpFormatter):
    """Appends '(default: X)' where there is a default worth saying, in the words of describe_default."""

    def _get_help_string(self, action):
        help_text = action.help or ""
        default = describe_default(action)
        if default is not None and action.option_strings and "default" not in help_text:
            help_text += f" (default: {default})"
        return help_text.replace("%", "%%")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a short error: one usage line and the problem, not the whole flag list."""

    def error(self, message):
        self.exit(2, f"usage: {self.prog} [options]   (--help lists them all)\n{self.prog}: error: {message}\n")


def new_parser(description, prog=None):
    """prog: how the command is typed, for a module run with `python -m` (its usage line would say __main__.py)."""
    return ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)


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
             "with a gradient scaler")
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


def explicit_settings(parser, argv):
    """Only the flags written on the command line, with their parsed values.

    On --resume the checkpoint's settings replace the defaults; what the user typed wins over both
    (and is refused where it contradicts what the checkpoint was trained with)."""
    saved = [(action, action.default) for action in parser._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        return vars(parser.parse_args(argv))
    finally:
        for action, default in saved:
            action.default = default
