"""The application, above everything else: `command_line.py` (the training scripts' entry point: flags in, one
message and an exit code out), `flags.py` (the training scripts' flags), `predictions.py` (`playground.py
predict`), `run_list.py` (`python -m utils.runs`)."""
