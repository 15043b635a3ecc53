"""A one-graph dataset by the name the scripts' --dataset_name gives it.

    graph = load_graph("cora")             # Planetoid, with its public split
    graph = load_graph("amazon-photo")     # an npz graph of Shchur et al. (downloaded on first use)
    graph = load_graph("my_graph.npz")     # any .npz file in that layout
    graphs = load_dataset_of_run(checkpoint["training_state"])   # the data a trained model learned from
"""

from utils.datasets.npz_graph import NPZ_DATASETS

# Planetoid (with a public split), the graphs of Shchur et al. in their .npz layout (no public split; Planetoid's
# cora is "cora", their cora.npz is read by path), ogbn-arxiv, a generated graph. Any .npz path works too.
NPZ_GRAPHS = tuple(name for name in NPZ_DATASETS if name != "cora")
ONE_GRAPH_DATASETS = ("cora", "citeseer", "pubmed", *NPZ_GRAPHS, "ogbn-arxiv", "sbm")
MANY_GRAPH_DATASETS = ("ppi", "ppi-generated")  # (the second: data of utils/datasets/ppi_synthetic.py)

# Generated graphs under the name a user reads (run names, the run list, results, figures): never as real data.
GENERATED_NAMES = {"sbm": "sbm-generated"}


def same_dataset(recorded, asked):
    """Whether a run recorded as `recorded` is one of dataset `asked`: 'ppi' takes in 'ppi-generated' runs."""
    return recorded == asked or recorded == f"{asked}-generated"


def honest_name(dataset_name):
    """The dataset's name as a user should read it: generated data says so ('sbm-generated')."""
    return GENERATED_NAMES.get(dataset_name, dataset_name)


def load_graph(dataset_name, data_dir=None):
    """A Planetoid graph, an npz graph (a name of NPZ_GRAPHS or a path to a .npz file), ogbn-arxiv, or a generated
    graph (`sbm`: a folder written by `python -m utils.datasets.sbm_graph`)."""
    if dataset_name in NPZ_GRAPHS or str(dataset_name).endswith(".npz"):
        from utils.datasets.npz_graph import load_npz_graph
        return load_npz_graph(dataset_name, data_dir)
    if dataset_name == "sbm":
        from utils.datasets.download import resolve_data_dir
        from utils.datasets.sbm_graph import load_sbm_graph
        return load_sbm_graph(resolve_data_dir(data_dir))
    if dataset_name == "ogbn-arxiv":
        from utils.datasets.ogbn_arxiv import load_arxiv
        return load_arxiv(data_dir)
    from utils.datasets.planetoid import load_planetoid
    return load_planetoid(dataset_name, data_dir)


def load_dataset_of_run(training_state, data_dir=None):
    """The data a trained model learned from, as its checkpoint or binary recorded it (training_state's dataset
    and settings): {"graph": GraphData} for one graph, {"train"/"valid"/"test": [GraphData, ...]} for PPI.

    data_dir: where to look; without it, the folder the run read (its --data_dir), else the default folder.
    Nothing is downloaded for a PPI run: its data is either there or said to be missing (DatasetError)."""
    dataset_name = training_state.get("dataset") or "cora"
    settings = training_state.get("settings") or {}
    data_dir = data_dir or settings.get("data_dir")
    if dataset_name in MANY_GRAPH_DATASETS:
        from utils.datasets.ppi import load_ppi
        return load_ppi(data_dir, download=False, standardize=settings.get("standardize", True))
    return {"graph": load_graph(dataset_name, data_dir)}
