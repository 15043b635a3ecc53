"""Where data is loaded. One module per source, each returning `GraphData` (graph.py):

    planetoid.py   Cora, Citeseer, Pubmed with the public split        npz_graph.py   Shchur et al.'s .npz graphs, yours too
    ppi.py         PPI's 24 graphs (inductive, 121 labels)             ogbn_arxiv.py  ogbn-arxiv
    sbm_graph.py   a generated graph of any size                        ppi_synthetic.py  generated data in PPI's format
    catalog.py     a dataset by its name, as the scripts' --dataset_name gives it
    splits.py      random per-class splits        download.py   where data lives, downloads, checksums, zips
"""
