"""Figures: `plots` draws them from plain tensors, `trained_model` finds a trained model and runs it on its graph,
`commands` is what `playground.py visualize_dataset` / `visualize_gat` do with the two."""
