"""How a run stops when asked to: Ctrl-C (SIGINT) and SIGTERM deferred to the training loop's safe points.

While the training loop runs, the two signals only set a flag (`DeferredSignals`). The loop stops at the next
safe point (the end of an epoch; between mini-batches, going back to the last completed epoch), saves the run,
and the trainer raises TrainingInterrupted, whose exit code is the one a shell reports for the signal. The
scripts' entry point (utils/cli/command_line.py) prints it with the command that resumes the run.
"""

import signal
import threading

from utils.plumbing.files import display_path


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
