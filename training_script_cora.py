"""Train GAT on Cora (or Citeseer / Pubmed) in the transductive setting of the paper.

    python training_script_cora.py                      # Cora, paper hyperparameters, IMP3
    python training_script_cora.py --dataset_name citeseer --layer_type IMP1 --seed 3
"""

import argparse
import sys

from utils.data_loading import DatasetError
from utils.planetoid import PLANETOID_DATASETS
from utils.trainers import CORA_DEFAULTS, train_gat_cora
from utils.training import add_common_training_args


def dataset_name_arg(text):
    name = text.lower()
    if name not in PLANETOID_DATASETS:
        raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; choose one of {', '.join(PLANETOID_DATASETS)}")
    return name


def get_parser():
    parser = argparse.ArgumentParser(description="Train GAT on a Planetoid citation graph (transductive).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataset_name", type=dataset_name_arg, default=CORA_DEFAULTS["dataset_name"],
                        help=f"one of {', '.join(PLANETOID_DATASETS)} (case-insensitive)")
    defaults = {key: CORA_DEFAULTS[key] for key in ("num_of_epochs", "patience_period", "lr", "weight_decay",
                                                     "console_log_freq", "checkpoint_freq")}
    return add_common_training_args(parser, **defaults)


def main(argv=None):
    config = vars(get_parser().parse_args(argv))
    try:
        if config["should_visualize"]:
            from utils.visualizations import visualize_dataset
            visualize_dataset(config["dataset_name"], config["data_dir"])
        train_gat_cora(config)
    except DatasetError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
