"""A run as a named thing on disk: `run.py` (name, folder, settings from start to resume, how it ends), `saver.py`
(saving during training), `checkpoints.py` (the format), `pretrained.py` (the committed Cora model).
`python -m utils.runs` lists the runs there are (utils/cli/run_list.py)."""
