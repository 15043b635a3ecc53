"""Train GAT on PPI in the inductive, multi-label setting of the paper (batches of whole graphs).

    python training_script_ppi.py                       # paper architecture, batch of 2 graphs, IMP3
    python training_script_ppi.py --batch_size 1 --hidden_features 128   # less memory
    python training_script_ppi.py --num_of_layers 2 --num_heads_per_layer 4 6 --no_add_skip_connection
    python training_script_ppi.py --resume last         # continue the newest PPI run (after Ctrl-C, say)
"""

from utils.cli.command_line import run_training_script
from utils.cli.flags import add_architecture_args, add_common_training_args
from utils.plumbing.arguments import OnOffFlag, new_parser, positive_int
from utils.training.many_graphs import MANY_GRAPHS_DEFAULTS, train_many_graphs


def get_parser():
    parser = new_parser("Train GAT on PPI (inductive, multi-label).")
    parser.add_argument("--batch_size", type=positive_int, default=MANY_GRAPHS_DEFAULTS["batch_size"],
                        help="graphs per training step (merged into one disjoint graph)")
    parser.add_argument("--feature_standardization", dest="standardize", action=OnOffFlag,
                        default=MANY_GRAPHS_DEFAULTS["standardize"],
                        help="standardise features with the training graphs' mean and std")
    parser.add_argument("--progress_bar", action=OnOffFlag, default=MANY_GRAPHS_DEFAULTS["progress_bar"],
                        help="show a progress bar per epoch (default: only when stderr is a terminal)")
    add_architecture_args(parser, MANY_GRAPHS_DEFAULTS, {
        "num_of_layers": "3, the paper's",
        "num_heads_per_layer": "4 4 6, the paper's; with another --num_of_layers, 4 for every hidden layer and 6 "
                               "for the output layer"})
    return add_common_training_args(parser, MANY_GRAPHS_DEFAULTS)


def main(argv=None):
    return run_training_script(__file__, get_parser(), train_many_graphs, argv)


if __name__ == "__main__":
    main()
