"""Where data is loaded. One module per source, each returning a `GraphData` (graph.py):

    planetoid.py      Cora, Citeseer, Pubmed, with the public split
    ppi.py            PPI's 24 graphs (inductive, 121 labels per node)
    npz_graph.py      Shchur et al.'s .npz graphs, and yours in that layout
    ogbn_arxiv.py     ogbn-arxiv
    sbm_graph.py      a generated graph of any size with a planted signal
    ppi_synthetic.py  generated data in PPI's on-disk format
    catalog.py        a one-graph dataset by the name --dataset_name gives it
    names.py          every dataset's name, and how runs and figures name a dataset
    splits.py         random per-class splits
    download.py       where data lives; downloads, checksums, archives
"""
