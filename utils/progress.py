"""Progress on long work: a tqdm bar while output goes to a terminal, nothing when it goes to a file or a pipe
(where the lines a loop prints already say how far it is)."""

import sys

from tqdm import tqdm


def on_terminal():
    return sys.stderr.isatty()


def progress_bar(iterable=None, *, total=None, desc=None, unit="it", show=None):
    """tqdm over `iterable`, shown on a terminal (or as `show` says); it goes away when the loop ends."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                disable=not (on_terminal() if show is None else show))


def write(line):
    """print(), above a running bar instead of through it."""
    tqdm.write(line, file=sys.stdout)
