"""`python -m utils.sbm_graph` (a large generated graph), as it was typed before the datasets had a package:
the code is utils/datasets/sbm_graph.py, and `python -m utils.datasets.sbm_graph` is the same command."""

from utils.datasets.sbm_graph import main

if __name__ == "__main__":
    main()
