"""Command-line arguments for every command of the project: the value checks, on/off flags, help that says each
default truthfully, a one-line usage error, and which flags were given.

One convention for on/off flags: `--name` turns it on, `--no_name` turns it off, and the help says
which one is the default. The flag tables in the docs are generated from the parsers by docs/flag_tables.py.
"""

import argparse

from utils.plumbing.files import OutputError, check_writable


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
    try:
        check_writable(text, is_file=True)
    except OutputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


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
