"""Train GAT on PPI in the inductive, multi-label setting of the paper (batches of whole graphs).

    python training_script_ppi.py                       # paper architecture, batch of 2 graphs, IMP3
    python training_script_ppi.py --batch_size 1 --hidden_features 128   # less memory
"""

import argparse
import sys

from utils.data_loading import DatasetError
from utils.trainers import PPI_DEFAULTS, train_gat_ppi
from utils.training import add_common_training_args, positive_int


def get_parser():
    parser = argparse.ArgumentParser(description="Train GAT on PPI (inductive, multi-label).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batch_size", type=positive_int, default=PPI_DEFAULTS["batch_size"],
                        help="graphs per training step (merged into one disjoint graph)")
    parser.add_argument("--hidden_features", type=positive_int, default=PPI_DEFAULTS["hidden_features"],
                        help="features per head in the hidden layers (the paper: 256)")
    parser.add_argument("--no_feature_standardization", dest="standardize", action="store_false",
                        help="do not standardise features with the training graphs' mean and std")
    defaults = {key: PPI_DEFAULTS[key] for key in ("num_of_epochs", "patience_period", "lr", "weight_decay",
                                                    "console_log_freq", "checkpoint_freq")}
    return add_common_training_args(parser, **defaults)


def main(argv=None):
    config = vars(get_parser().parse_args(argv))
    config["dataset_name"] = "ppi"
    try:
        if config["should_visualize"]:
            from utils.visualizations import visualize_dataset
            visualize_dataset("ppi", config["data_dir"])
        train_gat_ppi(config)
    except (DatasetError, MemoryError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
