"""The training scripts' entry point: parse the flags, train, and turn every expected way of stopping into one
message and an exit code:

    interrupted (Ctrl-C / SIGTERM)        130 / 143, as a shell reports them, with the command that resumes the run
    a finished run resumed (RunFinished)  0, saying how to train it further
    bad data, checkpoint, settings or output folder; out of memory; divergence; a failed final save   1
"""

import os
import shlex
import signal
import sys
import threading

from utils import paths
from utils.datasets.download import DatasetError
from utils.plumbing.arguments import SettingsError, explicit_settings
from utils.plumbing.files import OutputError, check_writable, display_path
from utils.plumbing.lock import RunInUse
from utils.plumbing.signals import TrainingInterrupted
from utils.runs.checkpoints import CheckpointError
from utils.runs.run import RunFinished, SaveFailed, TrainingDiverged
from utils.training.distributed import shutdown


class _Terminated(BaseException):
    """SIGTERM outside the training loop (e.g. while loading data): stop like Ctrl-C does."""


def _raise_terminated(signum, frame):
    raise _Terminated


def run_training_script(script_file, parser, train, argv=None):
    """What both training scripts do: parse the flags, train, and turn every expected way of stopping
    (the table in this module's docstring) into one message and an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    settings = vars(parser.parse_args(argv))
    overrides = explicit_settings(parser, argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        if settings["should_visualize"]:
            from utils.figures.commands import visualize_dataset  # (here: it brings matplotlib, slow to import)
            check_writable(paths.FIGURES_DIR)
            visualize_dataset(settings.get("dataset_name", "ppi"), settings["data_dir"])
        return train(overrides)
    except RunFinished as finished:
        print(finished, flush=True)
        return None
    except (DatasetError, CheckpointError, RunInUse, SettingsError, OutputError, MemoryError, TrainingDiverged,
            SaveFailed) as error:
        sys.exit(f"error: {error}")
    except TrainingInterrupted as interrupted:
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one message for all processes
            message = str(interrupted)
            if interrupted.checkpoint_path is not None:
                target = interrupted.run_name or interrupted.checkpoint_path
                message += f" Resume with: {resume_command(script_file, argv, target)}"
            print(message, file=sys.stderr, flush=True)
        sys.exit(interrupted.exit_code)
    except (KeyboardInterrupt, _Terminated) as stop:
        signum = signal.SIGTERM if isinstance(stop, _Terminated) else signal.SIGINT
        print("Interrupted before training started; nothing to save.", file=sys.stderr, flush=True)
        sys.exit(128 + signum)
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        shutdown()


def resume_command(script_file, argv, run_name_or_path):
    """The command line that continues this run: the same flags, with --resume naming the run (or the
    checkpoint). --run_name goes: the resumed run keeps its name."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--resume", "--run_name"):
            skip = True
        elif not arg.startswith(("--resume=", "--run_name=")):
            kept.append(arg)
    launcher = "python"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun: resume the same way
        world = int(os.environ["WORLD_SIZE"])
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        launcher = f"torchrun --nproc_per_node={per_node}"
        if per_node != world:  # several nodes: the same command on each, with the rendezvous they used
            launcher = (f"torchrun --nnodes={world // per_node} --nproc_per_node={per_node} --rdzv_backend=c10d "
                        f"--rdzv_endpoint=HOST:PORT")
    target = run_name_or_path if isinstance(run_name_or_path, str) else display_path(run_name_or_path)
    command = f"{launcher} {shlex.join([display_path(script_file), *kept, '--resume', target])}"
    if "--nnodes" in launcher:
        command += " (on every node, with the HOST:PORT of the first start)"
    return command
