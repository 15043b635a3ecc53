"""Everything around the model, one job per package:

    datasets/   where data is loaded: downloads and checksums, the graph container, splits, one module per source,
                the generated graphs
    training/   where the training loop is: the loop, the one-graph and many-graph trainers, model and optimizer
                setup, metrics, neighbour sampling, several processes
    runs/       a run as a named thing: names and folders, checkpoints, stop signals, the scripts' command line and
                flags, atomic files, the run list, the committed model
    figures/    where a figure is drawn: plots from plain tensors, a trained model run on its graph, the commands
    paths.py    every default folder
    profiling.py  time and peak memory of the implementations
"""
