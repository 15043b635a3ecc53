"""How a run stops: signals deferred to safe points, the exit codes, and the printed resume command.

While the training loop runs, Ctrl-C (SIGINT) and SIGTERM only set a flag (`DeferredSignals`). The loop stops
at the next safe point (the end of an epoch; between PPI batches, going back to the last completed epoch),
saves the run, and the trainer raises TrainingInterrupted. `run_training_script`, the scripts' main, turns
that and every other expected way of stopping into one message and an exit code:

    interrupted (Ctrl-C / SIGTERM)        130 / 143, as a shell reports them, with the command that resumes the run
    a finished run resumed (RunFinished)  0, saying how to train it further
    bad data, checkpoint, settings or output folder; out of memory; divergence; a failed final save   1
"""

import os
import shlex
import signal
import sys
import threading

from utils.checkpoints import CheckpointError
from utils.data_loading import DatasetError
from utils.files import OutputError, check_writable, display_path
from utils.flags import SettingsError, explicit_settings


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving the last completed epoch to `checkpoint_path`
    (`saved_epoch`: the epoch that file holds, earlier than `epoch` only when the last save failed)."""

    def __init__(self, signum, epoch, checkpoint_path, run_name=None, saved_epoch=None):
        self.signum, self.epoch, self.checkpoint_path, self.run_name = signum, epoch, checkpoint_path, run_name
        saved_epoch = epoch if saved_epoch is None else saved_epoch
        if checkpoint_path is None:
            saved = " Nothing was saved."
        elif saved_epoch == epoch:
            saved = f" Saved {display_path(checkpoint_path)}."
        else:
            saved = f" It could not be saved; {display_path(checkpoint_path)} holds epoch {saved_epoch}."
        super().__init__(f"Interrupted at epoch {epoch}.{saved}")

    @property
    def exit_code(self):
        return 128 + self.signum  # 130 for SIGINT, 143 for SIGTERM, as a shell reports them


class RunFinished(Exception):
    """A finished run was resumed with nothing left to do; the message says how to train it further."""


class TrainingDiverged(Exception):
    """The loss or the weights became non-finite; the message says at which epoch, what was kept, what to try."""


class SaveFailed(Exception):
    """A save the run cannot go on without failed (the final checkpoint, the binary, the results JSON)."""


class EpochAbandoned(Exception):
    """Raised between batches when a stop was asked for: the epoch in progress is dropped."""


class DeferredSignals:
    """While active (in the main thread), SIGINT and SIGTERM are recorded instead of acted on at once;
    the training loop asks `received` at its safe points. A second signal while stopping changes
    nothing: the checkpoint is written whole either way."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, agree=None):
        self.received = None
        self._agree = agree  # with several processes: DistributedContext.agree_on_stop
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._record) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _record(self, signum, frame):
        if self.received is None:
            self.received = signum

    def stop_requested(self):
        """The signal that stops training, or None. With several processes every rank must ask at the
        same point: a signal that reached any rank stops them all there. The answer is the agreed one
        only: a signal that lands while the ranks are agreeing counts at the next point, on all of them."""
        if self._agree is None:
            return self.received
        agreed = self._agree(self.received)
        if agreed is not None and self.received is None:
            self.received = agreed
        return agreed

    def check(self):
        if self.stop_requested() is not None:
            raise EpochAbandoned


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
            from utils import visualizations
            check_writable(visualizations.DEFAULT_OUTPUT_DIR)
            visualizations.visualize_dataset(settings.get("dataset_name", "ppi"), settings["data_dir"])
        return train(overrides)
    except RunFinished as finished:
        print(finished, flush=True)
        return None
    except (DatasetError, CheckpointError, SettingsError, OutputError, MemoryError, TrainingDiverged,
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
        from utils.distributed import shutdown
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
        per_node = os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])
        launcher = f"torchrun --nproc_per_node={per_node}"
        if per_node != os.environ["WORLD_SIZE"]:
            launcher += " [your --nnodes/--rdzv flags]"
    target = run_name_or_path if isinstance(run_name_or_path, str) else display_path(run_name_or_path)
    return f"{launcher} {shlex.join([display_path(script_file), *kept, '--resume', target])}"
