"""Cora test accuracy over several seeds: the number to compare with the paper's 83.0 +- 0.7.

    python -m benchmarks.cora_seeds --num_seeds 10 --layer_type IMP3 --output benchmarks/results/cora_seeds.json

Each seed trains with the paper's hyperparameters and early stopping (as training_script_cora.py);
prints a markdown table and mean +- std, and writes every run's results as JSON.
"""

import argparse
import datetime
import platform
import statistics

import torch

from utils.files import write_json
from models.gat_layers import ATTENTION_TYPES
from utils.flags import layer_type_arg, non_negative_int, positive_int
from utils.train_transductive import train_gat_cora


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--num_seeds", type=positive_int, default=10)
    parser.add_argument("--first_seed", type=non_negative_int, default=0)
    parser.add_argument("--dataset_name", default="cora")
    parser.add_argument("--layer_type", type=layer_type_arg, default="IMP3")
    parser.add_argument("--attention_type", choices=ATTENTION_TYPES, default="gat",
                        help="gat: the paper's static attention; gatv2: Brody et al.'s dynamic attention")
    parser.add_argument("--fanouts", type=positive_int, nargs="+", default=None,
                        help="train on neighbour-sampled mini-batches with these fanouts (default: full batch)")
    parser.add_argument("--batch_size", type=positive_int, default=256, help="with --fanouts: training nodes per step")
    parser.add_argument("--num_threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--output", default=None, help="write all runs as JSON here")
    args = parser.parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)

    runs = []
    for seed in range(args.first_seed, args.first_seed + args.num_seeds):
        config = dict(dataset_name=args.dataset_name, layer_type=args.layer_type, attention_type=args.attention_type,
                      seed=seed, data_dir=args.data_dir, fanouts=args.fanouts, batch_size=args.batch_size,
                      console_log_freq=0, checkpoint_freq=0, save_binary=False,
                      last_checkpoint_seconds=None)
        result = train_gat_cora(config, log=lambda *_: None)
        result.pop("history"), result.pop("model")
        runs.append(result)
        print(f"seed {seed:3d}: test acc {result['test_acc']:.4f}  (val acc {result['best_val_acc']:.4f}, "
              f"{result['epochs']} epochs, {result['train_seconds']:.0f}s, "
              f"{1000 * result['train_seconds'] / result['epochs']:.1f} ms per epoch)", flush=True)

    accuracies = [100 * r["test_acc"] for r in runs]
    mean = statistics.mean(accuracies)
    std = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    mode = f"sampled {' '.join(map(str, args.fanouts))}, batch {args.batch_size}" if args.fanouts else "full batch"
    per_epoch = statistics.median(1000 * r["train_seconds"] / r["epochs"] for r in runs)
    print(f"\nmedian time per epoch (training step(s) + validation + bookkeeping): {per_epoch:.1f} ms")
    print("\n| dataset | attention | training | layer | seeds | test accuracy (%) | min | max |\n"
          "|---|---|---|---|---|---|---|---|")
    print(f"| {args.dataset_name} | {args.attention_type} | {mode} | {args.layer_type.name} | {len(runs)} | "
          f"{mean:.2f} ± {std:.2f} | "
          f"{min(accuracies):.1f} | {max(accuracies):.1f} |")
    if args.output:
        write_json(args.output, {"date": datetime.date.today().isoformat(), "machine": platform.platform(),
                                 "torch": torch.__version__,
                                 "attention_type": args.attention_type, "fanouts": args.fanouts,
                                 "batch_size": args.batch_size, "median_ms_per_epoch": per_epoch, "mean": mean,
                                 "std": std, "runs": runs})


if __name__ == "__main__":
    main()
