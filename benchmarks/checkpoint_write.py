"""How long writing a run's resumable checkpoint (checkpoints/<run>/last.pth) takes, for Cora's and PPI's
paper models.

    python -m benchmarks.checkpoint_write

Writes into a temp folder: the same dict `fit` saves (weights, Adam state, early stopping with the kept
weights, 1000 epochs of history, random states), atomically, 15 times; prints the median of the last 12.
Also times the in-memory copy PPI keeps of the last completed epoch (to go back to on Ctrl-C mid-epoch).
"""

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch

from utils.runs import checkpoints
from utils.training.loop import EarlyStopping
from utils.training.many_graphs import PPI_ARCHITECTURE
from utils.training.one_graph import CITATION_ARCHITECTURE
from utils.training.setup import build_model


def trained_one_step(architecture, num_in, num_out):
    model = build_model(architecture, num_in, num_out, "IMP3")
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(10, num_in), torch.arange(10).repeat(2, 1)).sum().backward()
    optimizer.step()  # Adam's moment buffers exist from here on, as in a real run
    return model, optimizer


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)  # only --help
    models = (("cora", CITATION_ARCHITECTURE, 1433, 7), ("ppi", PPI_ARCHITECTURE, 50, 121))
    for name, architecture, num_in, num_out in models:
        model, optimizer = trained_one_step(architecture, num_in, num_out)
        stopper = EarlyStopping(100)
        stopper.step(1, 1.0, 0.5, model)
        history = [dict(epoch=i, train_loss=1.0, val_loss=1.0, train_acc=0.5, val_acc=0.5) for i in range(1, 1001)]
        seconds = []
        with tempfile.TemporaryDirectory() as folder:
            for _ in range(15):
                start = time.perf_counter()
                state = dict(dataset=name, epoch=1000, settings={}, early_stopping=stopper.state(), history=history,
                             random_states=checkpoints.capture_random_states(), tensorboard_dir=None, stop_reason=None,
                             train_seconds=1.0)
                path = checkpoints.save(checkpoints.make_checkpoint(model, optimizer, state),
                                        Path(folder) / name / "last.pth")
                seconds.append(time.perf_counter() - start)
            size = path.stat().st_size
        copies = []
        for _ in range(10):
            start = time.perf_counter()
            copy.deepcopy(checkpoints.make_checkpoint(model, optimizer, {}))
            copies.append(time.perf_counter() - start)
        parameters = sum(p.numel() for p in model.parameters())
        print(f"{name}: {parameters:,} parameters, {size / 2 ** 20:.1f} MiB; write median "
              f"{1000 * statistics.median(seconds[3:]):.1f} ms; in-memory copy median "
              f"{1000 * statistics.median(copies):.1f} ms")


if __name__ == "__main__":
    main()
