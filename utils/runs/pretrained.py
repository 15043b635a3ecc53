"""The committed Cora model: look inside a trained GAT right after cloning, before training one.

models/pretrained/cora_gat_seed0.pth is the binary of a full `python training_script_cora.py` run (seed 0,
the paper's architecture and setup, early stopping), slimmed to what looking at it needs: the config, the
kept weights and a small training_state (dataset, run name, the kept epoch and its test accuracy; no
history, no optimizer state). No run writes into models/pretrained/, so nothing trained can replace it.

    python training_script_cora.py --seed 0 --run_name cora_gat_seed0
    python -m utils.runs.pretrained models/binaries/cora_gat_seed0.pth models/pretrained/cora_gat_seed0.pth
"""

import argparse

from utils.runs import checkpoints

KEPT_STATE = ("dataset", "run_name", "epoch", "test_acc")


def slim_checkpoint(binary):
    """A binary's config and weights with a training_state of only KEPT_STATE; 'epoch' is the kept epoch
    (the one with the best validation result, whose weights the binary holds)."""
    state = binary["training_state"]
    model, _ = checkpoints.model_from_checkpoint(binary)
    kept = dict(dataset=state["dataset"], run_name=state["run_name"], epoch=state["best_epoch"],
                test_acc=state["test_acc"])
    checkpoint = checkpoints.make_checkpoint(model, training_state=kept)
    checkpoint["training_state"]["commit"] = state.get("commit")  # the code that trained it, not the current one
    return checkpoint


def describe(path):
    """One line: what a slimmed checkpoint is (for the playground's message and the README beside it)."""
    checkpoint = checkpoints.load_checkpoint(path)
    state, config = checkpoint["training_state"], checkpoint["config"]
    return (f"{state['dataset']} {config['attention_type'].upper()} of run {state['run_name']}, "
            f"epoch {state['epoch']}, test accuracy {state['test_acc']:.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", help="a binary written by a training script (models/binaries/<run>.pth)")
    parser.add_argument("output", help="where the slimmed copy goes (refuses to replace an existing file)")
    args = parser.parse_args(argv)
    try:
        checkpoints.save(slim_checkpoint(checkpoints.load_checkpoint(args.binary)), args.output, exclusive=True)
    except FileExistsError:
        parser.exit(1, f"error: {args.output} exists; delete it first to replace it\n")
    print(f"Wrote {args.output}: {describe(args.output)}")


if __name__ == "__main__":
    main()
