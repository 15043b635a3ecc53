"""Train GAT on Cora (or Citeseer / Pubmed) in the transductive setting of the paper.

    python training_script_cora.py                      # Cora, paper hyperparameters, IMP3
    python training_script_cora.py --dataset_name citeseer --layer_type IMP1 --seed 3
    python training_script_cora.py --resume last        # continue the newest Cora run (after Ctrl-C, say)
"""

import argparse

from utils.flags import add_common_training_args, new_parser
from utils.planetoid import PLANETOID_DATASETS
from utils.training import CORA_DEFAULTS, run_training_script, train_gat_cora


def dataset_name_arg(text):
    name = text.lower()
    if name not in PLANETOID_DATASETS:
        raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; choose one of {', '.join(PLANETOID_DATASETS)}")
    return name


def get_parser():
    parser = new_parser("Train GAT on a Planetoid citation graph (transductive).")
    parser.add_argument("--dataset_name", type=dataset_name_arg, default=CORA_DEFAULTS["dataset_name"],
                        help=f"one of {', '.join(PLANETOID_DATASETS)} (case-insensitive)")
    return add_common_training_args(parser, CORA_DEFAULTS)


def main(argv=None):
    return run_training_script(__file__, get_parser(), train_gat_cora, argv)


if __name__ == "__main__":
    main()
