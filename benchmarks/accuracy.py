"""Test accuracy over splits and initialisations, with a 95 % confidence interval of the mean.

    python -m benchmarks.accuracy --datasets cora citeseer --split public --inits 10 --output public.json
    python -m benchmarks.accuracy --datasets cora citeseer --split random --splits 10 --inits 2 --output random.json
    python -m benchmarks.accuracy --datasets cora --attention_type gatv2 --inits 10
    python -m benchmarks.accuracy --datasets cora --fanouts 10 10 --batch_size 256 --inits 10

Every run trains as training_script_cora.py does: the paper's architecture and hyperparameters (lr 0.005,
weight decay 5e-4, dropout 0.6, 8 heads x 8 features) and its early stopping on validation loss and accuracy
(patience 100); the test split is only read once, by the kept model. Nothing here is tuned.

`public`: the Planetoid split, one run per initialisation seed (first_seed, first_seed + 1, ...). `random`: S splits
drawn by utils.datasets.splits.random_split (20 train + 30 validation nodes per class, the rest test, on the largest
connected component; split seeds first_split_seed, ...), each trained from I initialisation seeds: S x I runs.
Prints every run and, per dataset, mean ± sample std with the 95 % t-interval of the mean; --output writes all
of it as JSON. The same arguments give the same numbers on a CPU with the same thread count.
"""

import argparse
import datetime
import platform
import statistics

import torch

from benchmarks.stats import format_summary, summarize
from models.gat_layers import ATTENTION_TYPES
from utils.cli.flags import layer_type_arg
from utils.plumbing.arguments import non_negative_int, positive_int, writable_file
from utils.plumbing.files import write_json
from utils.progress import progress_bar, write
from utils.training.one_graph import ONE_GRAPH_DEFAULTS, train_one_graph
from utils.training.precision import PRECISIONS


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["cora"], help="datasets (names or .npz paths)")
    parser.add_argument("--split", choices=["public", "random"], default="public")
    parser.add_argument("--splits", type=positive_int, default=10, help="random splits per dataset (--split random)")
    parser.add_argument("--inits", type=positive_int, default=10, help="initialisation seeds per split")
    parser.add_argument("--first_seed", type=non_negative_int, default=0, help="the first initialisation seed")
    parser.add_argument("--first_split_seed", type=non_negative_int, default=0, help="the first split seed")
    parser.add_argument("--train_per_class", type=positive_int, default=20)
    parser.add_argument("--val_per_class", type=positive_int, default=30)
    parser.add_argument("--max_epochs", type=positive_int, default=ONE_GRAPH_DEFAULTS["num_of_epochs"],
                        help="the most epochs a run trains (the training scripts' --num_of_epochs)")
    parser.add_argument("--layer_type", type=layer_type_arg, default="IMP3")
    parser.add_argument("--attention_type", choices=ATTENTION_TYPES, default="gat")
    parser.add_argument("--fanouts", type=positive_int, nargs="+", default=None,
                        help="train on neighbour-sampled mini-batches with these fanouts (default: full batch)")
    parser.add_argument("--batch_size", type=positive_int, default=256, help="with --fanouts: training nodes per step")
    parser.add_argument("--num_threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32 (the table's), or mixed precision: bf16, fp16 (training_script_cora.py --precision)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where every run trains (default: cuda when there is a GPU); recorded in the JSON")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--output", type=writable_file, default=None,
                        help="write every run and the summaries as JSON here")
    return parser


def runs_to_do(args):
    """(split seed or None for the public split, init seed) pairs, in the order they run."""
    split_seeds = [None] if args.split == "public" else range(args.first_split_seed,
                                                              args.first_split_seed + args.splits)
    return [(split_seed, seed) for split_seed in split_seeds
            for seed in range(args.first_seed, args.first_seed + args.inits)]


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    mode = f"sampled {' '.join(map(str, args.fanouts))}, batch {args.batch_size}" if args.fanouts else "full batch"
    every_run, summaries, table = [], {}, []
    total = len(args.datasets) * len(runs_to_do(args))
    bar = progress_bar(total=total, desc="runs", unit="run")
    for dataset in args.datasets:
        runs = []
        for split_seed, seed in runs_to_do(args):
            config = dict(dataset_name=dataset, layer_type=args.layer_type, attention_type=args.attention_type,
                          seed=seed, num_of_epochs=args.max_epochs, data_dir=args.data_dir,
                          fanouts=args.fanouts, batch_size=args.batch_size,
                          split=args.split, split_seed=split_seed or 0, train_per_class=args.train_per_class,
                          val_per_class=args.val_per_class, console_log_freq=0, checkpoint_freq=0,
                          save_binary=False, last_checkpoint_seconds=None, force_cpu=args.device == "cpu",
                          precision=args.precision)
            result = train_one_graph(config, log=lambda *_: None)
            result.pop("history"), result.pop("model")
            result.update(split_seed=split_seed, init_seed=seed)
            runs.append(result)
            where = "public split" if split_seed is None else f"split {split_seed:2d}"
            bar.update()
            write(f"[{len(every_run) + len(runs)}/{total}] {dataset} {where}, seed {seed:3d}: test acc "
                  f"{result['test_acc']:.4f}  (val acc {result['best_val_acc']:.4f}, {result['epochs']} epochs, "
                  f"{1000 * result['train_seconds'] / result['epochs']:.1f} ms per epoch)")
        accuracies = [run["test_acc"] for run in runs]
        summaries[dataset] = dict(summarize(accuracies), min=min(accuracies), max=max(accuracies),
                                  median_ms_per_epoch=statistics.median(
                                      1000 * run["train_seconds"] / run["epochs"] for run in runs))
        splits = "public" if args.split == "public" else f"{args.splits} random"
        table.append(f"| {dataset} | {args.attention_type} | {mode} | {splits} | {args.inits} | "
                     f"{format_summary(summaries[dataset])} | {100 * min(accuracies):.1f} | "
                     f"{100 * max(accuracies):.1f} |")
        every_run.extend(runs)
    bar.close()
    print("\n| dataset | attention | training | splits | inits | test accuracy (%) | min | max |\n"
          "|---|---|---|---|---|---|---|---|")
    print("\n".join(table))
    if args.output:
        write_json(args.output, {"date": datetime.date.today().isoformat(), "machine": platform.platform(),
                                 "processor": platform.processor(), "torch": torch.__version__,
                                 "threads": torch.get_num_threads(), "device": _device_name(args.device),
                                 "settings": vars(args) | {
                                     "layer_type": args.layer_type.name}, "summaries": summaries, "runs": every_run})
    return summaries


def _device_name(device):
    return torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({platform.processor() or platform.machine()})"


if __name__ == "__main__":
    main()
