"""Playground: profile the four GAT implementations and sparse formats, look at datasets and trained GATs.

Pick a function by editing `playground_fn` below and running `python playground.py`, or from the
command line:

    python playground.py profile_gat --num_of_epochs 10
    python playground.py profile_sparse
    python playground.py visualize_dataset --dataset_name cora
    python playground.py visualize_gat          # the newest trained model, or the committed Cora one
    python playground.py visualize_gat --visualization_type attention --model_name cora_gat_seed0_20261202-013000
    python playground.py visualize_gat --visualization_type entropy --model_name A.pth --compare_with B.pth
    python playground.py predict --model_name cora_gat_seed0_20261202-013000 --output predictions.csv
    python playground.py explore --model_name cora_gat_seed0_20261202-013000   # an interactive page in the browser
"""

import enum
import sys

import numpy as np


class PlaygroundFn(enum.Enum):
    PROFILE_GAT = "profile_gat"
    PROFILE_SPARSE = "profile_sparse"
    VISUALIZE_DATASET = "visualize_dataset"
    VISUALIZE_GAT = "visualize_gat"
    PREDICT = "predict"
    EXPLORE = "explore"


# Edit this line to choose what `python playground.py` (with no arguments) runs.
playground_fn = PlaygroundFn.VISUALIZE_DATASET


def profile_gat(args):
    from utils.profiling import profile_gat as run
    run([t.name for t in args.layer_types], args.num_of_epochs, args.data_dir, "cpu" if args.force_cpu else None,
        args.store_cache, args.skip_if_profiling_info_cached)


def profile_sparse(args):
    from utils.datasets.planetoid import load_planetoid
    from utils.profiling import profile_sparse as run
    run((load_planetoid("cora", args.data_dir).node_features > 0).numpy().astype(np.float32))


def visualize_dataset(args):
    from utils.figures.commands import visualize_dataset as run
    run(args.dataset_name, args.data_dir, args.output_dir, layout=args.layout, show=args.show)


def visualize_gat(args):
    from utils.figures.commands import visualize_gat as run
    run(args.model_name, args.visualization_type, data_dir=args.data_dir, output_dir=args.output_dir,
        layer=args.layer, head=args.head, node=args.node, layout=args.layout, label=args.label, show=args.show,
        dataset_name=args.dataset_name, compare_with=args.compare_with)


def predict(args):
    from utils.cli.predictions import write_predictions
    from utils.figures.trained_model import find_model
    write_predictions(find_model(args.model_name, None, print), args.output, args.data_dir)


def explore(args):
    # (a run of the dictionary-lookup benchmark is read by the benchmark itself: it is not a GAT checkpoint)
    from benchmarks.dictionary_lookup import RUN_KIND, explorer_data
    from utils.figures.explorer import explore as run
    run(args.model_name, args.output, args.data_dir, args.graph, args.nodes, readers={RUN_KIND: explorer_data})


def any_dataset(text):
    """ppi, or a dataset name or .npz path that training_script_cora.py takes."""
    from training_script_cora import dataset_name_arg
    return "ppi" if text.lower() == "ppi" else dataset_name_arg(text)


def get_parser():
    from models import LayerType
    from utils.cli.flags import layer_type_arg
    from utils.figures.plots import LAYOUTS
    from utils.plumbing.arguments import (HelpFormatter, OnOffFlag, layer_number, new_parser, non_negative_int,
                                          positive_int, writable_file)

    parser = new_parser(__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="{" + ",".join(f.value for f in PlaygroundFn) + "}")

    def command(fn, help_text, data_dir_help="dataset folder; without it: $GAT_DATA_DIR if set, else data/"):
        sub = commands.add_parser(fn.value, help=help_text, description=help_text, formatter_class=HelpFormatter)
        sub.add_argument("--data_dir", default=None, metavar="DIR", help=data_dir_help)
        return sub

    run_data_dir_help = ("dataset folder; without it: the folder the run trained from (its --data_dir), else "
                         "$GAT_DATA_DIR if set, else data/")
    model_name_help = ("a run's name, a file in models/binaries/ or a path; without it: the newest binary{}, else "
                       "the committed Cora model models/pretrained/cora_gat_seed0.pth")

    sub = command(PlaygroundFn.PROFILE_GAT, "time and peak memory of IMP1/IMP2/IMP3/IMP4 training on Cora")
    sub.add_argument("--num_of_epochs", type=positive_int, default=10, help="training epochs to time per layer type")
    sub.add_argument("--layer_types", type=layer_type_arg, nargs="+", default=list(LayerType),
                     help="which implementations to profile, each in its own process")
    sub.add_argument("--force_cpu", action=OnOffFlag, default=False,
                     help="profile on the CPU even if CUDA is available")
    sub.add_argument("--store_cache", action=OnOffFlag, default=False,
                     help="save results as JSON under data/profiling/")
    sub.add_argument("--skip_if_profiling_info_cached", action=OnOffFlag, default=False,
                     help="print cached results instead of measuring, if there are any")

    command(PlaygroundFn.PROFILE_SPARSE, "row-normalise and multiply Cora's features in COO/CSR/CSC/LIL/dense")

    sub = command(PlaygroundFn.PREDICT, "write a trained model's predictions for every node of its data as CSV",
                  run_data_dir_help)
    sub.add_argument("--model_name", default=None, help=model_name_help.format(""))
    sub.add_argument("--output", type=writable_file, required=True, metavar="FILE.csv",
                     help="the CSV file: one row per node (node, known label, predicted class, each class's "
                          "probability; PPI: split, graph, node, predicted labels, each label's probability)")

    sub = command(PlaygroundFn.EXPLORE, "an interactive page of a trained model's attention, to open in a browser",
                  run_data_dir_help)
    sub.add_argument("--model_name", default=None, help=model_name_help.format("") + "; or a run saved by "
                     "python -m benchmarks.dictionary_lookup --save_runs DIR")
    sub.add_argument("--output", type=writable_file, default=None, metavar="FILE.html",
                     help="the page; without it: <model>_explorer.html in $GAT_FIGURES_DIR if set, else "
                          "data/visualizations/")
    sub.add_argument("--nodes", type=non_negative_int, nargs="+", default=None, metavar="NODE",
                     help="the nodes a page of a large graph carries, with their neighbourhoods (at most 500); "
                          "without it: the whole graph up to 200,000 edges, else the 20 highest in-degree and 20 "
                          "misclassified test nodes")
    sub.add_argument("--graph", type=non_negative_int, default=0,
                     help="PPI: which test graph, counted from 0")

    for fn, help_text in ((PlaygroundFn.VISUALIZE_DATASET, "draw a dataset and its degree statistics"),
                          (PlaygroundFn.VISUALIZE_GAT, "attention, entropy or t-SNE figures of a trained GAT")):
        sub = command(fn, help_text, run_data_dir_help if fn is PlaygroundFn.VISUALIZE_GAT else
                      "dataset folder; without it: $GAT_DATA_DIR if set, else data/")
        sub.add_argument("--output_dir", default=None, metavar="DIR",
                         help="where PNGs go; without it: $GAT_FIGURES_DIR if set, else data/visualizations/")
        sub.add_argument("--show", action=OnOffFlag, default=False, help="also open the figures in a window")
        if fn is PlaygroundFn.VISUALIZE_DATASET:
            sub.add_argument("--dataset_name", type=any_dataset, default="cora",
                             help="the dataset to draw: ppi, or any one-graph dataset training_script_cora.py takes "
                                  "(a name, or the path of an .npz graph)")
            sub.add_argument("--layout", choices=sorted(LAYOUTS), default="kk", help="igraph layout of the graph")
        else:
            sub.add_argument("--visualization_type", choices=["attention", "entropy", "embeddings"],
                             default="attention", help="which figure to draw")
            sub.add_argument("--model_name", default=None,
                             help=model_name_help.format(" (of --dataset_name, if given)"))
            sub.add_argument("--dataset_name", type=any_dataset, default=None,
                             help="without --model_name: take the newest binary of this dataset")
            sub.add_argument("--compare_with", default=None, metavar="MODEL",
                             help="entropy only: a second binary of the same dataset, drawn side by side "
                                  "(e.g. a GAT next to a GATv2)")
            sub.add_argument("--layer", type=layer_number, default=1,
                             help="layer for the attention figure, counted from 1 (1 = the first layer)")
            sub.add_argument("--head", type=non_negative_int, default=0,
                             help="head for the attention figure, counted from 0")
            sub.add_argument("--node", type=non_negative_int, default=None,
                             help="node for the attention figure; without it: the highest-degree node")
            sub.add_argument("--layout", choices=["tree", "kk"], default="tree", help="neighbourhood layout")
            sub.add_argument("--label", type=non_negative_int, default=0,
                             help="PPI: which of the 121 labels colours the nodes")
    return parser


def main(argv=None):
    from utils.datasets.download import DatasetError
    from utils.plumbing.files import OutputError
    from utils.plumbing.lock import RunInUse
    from utils.runs.checkpoints import CheckpointError

    parser = get_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv if argv else [playground_fn.value])
    try:
        {"profile_gat": profile_gat, "profile_sparse": profile_sparse, "visualize_dataset": visualize_dataset,
         "visualize_gat": visualize_gat, "predict": predict, "explore": explore}[args.command](args)
    except (DatasetError, CheckpointError, RunInUse, OutputError, ValueError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
