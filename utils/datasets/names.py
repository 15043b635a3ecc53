"""Every dataset by the name --dataset_name gives it, and how runs, figures and messages name a dataset.

Names only: loading is in catalog.py (a one-graph dataset by its name) and one module per source.
"""

from pathlib import Path

# The graphs of Shchur et al. in their .npz layout (npz_graph.py): name -> file in DIR/npz/ and at the download URL.
NPZ_DATASETS = {
    "amazon-computers": "amazon_electronics_computers.npz",
    "amazon-photo": "amazon_electronics_photo.npz",
    "coauthor-cs": "ms_academic_cs.npz",
    "coauthor-physics": "ms_academic_phy.npz",
    "cora-full": "cora_full.npz",
    # Planetoid's Cora (same 2,708 papers and citations) in node-id order and alphabetical class order:
    # the one file of the set that is available offline, so the one the tests load by name.
    "cora": "cora.npz",
}

# Planetoid (with a public split), the npz graphs (no public split; Planetoid's cora is "cora", their cora.npz is read
# by path), ogbn-arxiv, a generated graph. Any .npz path works too.
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


def own_graph_name(path):
    """How runs, figures and messages name a graph file of one's own: its stem ('my_graph'), or its whole file
    name where the stem is a dataset's name ('cora.npz', not Planetoid's 'cora')."""
    path = Path(path)
    dataset_names = {*ONE_GRAPH_DATASETS, *MANY_GRAPH_DATASETS, *NPZ_DATASETS}
    return path.name if path.stem.lower() in dataset_names else path.stem
