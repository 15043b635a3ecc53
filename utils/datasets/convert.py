"""Write any graph the training scripts train on as a graph on disk (utils/datasets/disk_graph.py).

    python -m utils.datasets.convert --dataset_name cora --output /data/cora_disk
    python training_script_cora.py --dataset_name /data/cora_disk --fanouts 10 10

ogbn-papers100M, too large to load, is streamed from OGB's own files (utils/datasets/ogbn_papers100m.py):
    python -m utils.datasets.convert --dataset_name ogbn-papers100M --data_dir DIR --output /data/papers100m_disk
"""

from utils.datasets.catalog import load_graph
from utils.datasets.disk_graph import write_disk_graph
from utils.datasets.download import DatasetError, resolve_data_dir
from utils.datasets.ogbn_papers100m import convert_papers100m
from utils.plumbing.arguments import new_parser


def get_parser():
    parser = new_parser("Write a graph the training scripts take as a disk graph (memory-mapped .npy arrays).",
                        prog="python -m utils.datasets.convert")
    parser.add_argument("--dataset_name", required=True,
                        help="any one-graph dataset training_script_cora.py takes (a name, or the path of an .npz "
                             "graph), or ogbn-papers100M (from OGB's extracted papers100M-bin folder in --data_dir)")
    parser.add_argument("--data_dir", default=None, metavar="DIR",
                        help="where the dataset is; without it: $GAT_DATA_DIR if set, else data/")
    parser.add_argument("--output", required=True, metavar="DIR", help="the folder to write (it must not exist)")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    try:
        if args.dataset_name.lower() == "ogbn-papers100m":
            folder = convert_papers100m(resolve_data_dir(args.data_dir), args.output)
        else:
            folder = write_disk_graph(load_graph(args.dataset_name, args.data_dir), args.output)
    except DatasetError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"Wrote {args.dataset_name} as a disk graph to {folder}; train on it with: "
          f"python training_script_cora.py --dataset_name {folder} --fanouts 10 10")


if __name__ == "__main__":
    main()
