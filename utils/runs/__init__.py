"""A run as a named thing: `run.py` (name, folder, settings from start to resume, how it ends), `saver.py`
(saving during training), `checkpoints.py` (the format), `signals.py` (Ctrl-C and SIGTERM), `command_line.py`
and `flags.py` (the scripts' entry point and flags), `files.py` (atomic writes), `listing.py`
(`python -m utils.runs`), `pretrained.py` (the committed Cora model)."""
