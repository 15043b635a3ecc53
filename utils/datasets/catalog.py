"""A one-graph dataset by the name the scripts' --dataset_name gives it.

    graph = load_graph("cora")             # Planetoid, with its public split
    graph = load_graph("amazon-photo")     # an npz graph of Shchur et al. (downloaded on first use)
    graph = load_graph("my_graph.npz")     # any .npz file in that layout
    graphs = load_dataset_of_run(checkpoint["training_state"])   # the data a trained model learned from
"""

from utils.datasets.download import resolve_data_dir
from utils.datasets.names import MANY_GRAPH_DATASETS, NPZ_GRAPHS
from utils.datasets.npz_graph import load_npz_graph
from utils.datasets.ogbn_arxiv import load_arxiv
from utils.datasets.planetoid import load_planetoid
from utils.datasets.ppi import load_ppi
from utils.datasets.sbm_graph import load_sbm_graph


def load_graph(dataset_name, data_dir=None):
    """A Planetoid graph, an npz graph (a name of NPZ_GRAPHS or a path to a .npz file), ogbn-arxiv, or a generated
    graph (`sbm`: a folder written by `python -m utils.datasets.sbm_graph`)."""
    if dataset_name in NPZ_GRAPHS or str(dataset_name).endswith(".npz"):
        return load_npz_graph(dataset_name, data_dir)
    if dataset_name == "sbm":
        return load_sbm_graph(resolve_data_dir(data_dir))
    if dataset_name == "ogbn-arxiv":
        return load_arxiv(data_dir)
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
        return load_ppi(data_dir, download=False, standardize=settings.get("standardize", True))
    return {"graph": load_graph(dataset_name, data_dir)}
