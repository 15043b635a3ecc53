"""Where the training loop is. `loop.fit` is the loop (epoch, validation, early stopping, checkpoint, stop);
`one_graph.py` and `many_graphs.py` are the two trainers that hand it their epoch and evaluation, `harness.py` the
steps they share around it; `setup.py` builds the model and optimizer; `metrics.py`, `sampling.py`,
`distributed.py`, `precision.py` are what the trainers use."""
