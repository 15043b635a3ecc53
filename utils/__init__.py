"""Everything around the model, one job per package, each importing only the packages below it (the contract in
pyproject.toml, checked by tests/test_import_layers.py):

    cli/        the application: the training scripts' entry point and flags, predictions, the run list
    figures/    where a figure is drawn: plots from plain tensors, a trained model run on its graph, the commands
    profiling.py  time and peak memory of the implementations, host syncs
    training/   where the training loop is: the loop, the one-graph and many-graph trainers and what they share,
                model and optimizer setup, metrics, neighbour sampling, several processes, precision
    runs/       a run as a named thing on disk: names and folders, checkpoints, saving, the committed model
    datasets/   where data is loaded: names, downloads and checksums, the graph container, splits, one module per
                source, the generated graphs
    plumbing/   what every layer may use: atomic files, stop signals, run locks, command-line arguments
    paths.py, progress.py   every default folder; progress bars
"""
