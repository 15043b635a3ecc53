"""Saving a run while it trains: its resumable last.pth and its numbered checkpoints, and what to say when a save
fails.

    saver = RunSaver(config, log)
    saver.save_numbered(checkpoint, epoch)     # every --checkpoint_freq epochs
    saver.save_last(checkpoint)                # every --last_checkpoint_seconds, at the end and on a stop

A save that fails with an I/O error (a full disk, say) is a warning, said once until a save of that file works
again, and training goes on; the file that was there stays whole (checkpoints.save writes a temp file and
renames it). The saver remembers the newest checkpoint written whole and the epoch it holds, which is what the
run's end reports.
"""

import time
from pathlib import Path

from utils.plumbing.files import display_path
from utils.runs import checkpoints


class RunSaver:
    def __init__(self, config, log=print, resumed_from=None, resumed_epoch=None):
        self.run_name, self.log = config["run_name"], log
        self.every = config["last_checkpoint_seconds"]  # None: no last.pth (e.g. runs that only test)
        self.checkpoint_freq, self.keep = config["checkpoint_freq"], config["keep_checkpoints"]
        self.last_path = checkpoints.last_checkpoint_path(self.run_name)
        # The newest checkpoint written whole, and its epoch. A resumed run starts from the file it resumed.
        self.saved_path, self.saved_epoch = (Path(resumed_from), resumed_epoch) if resumed_from else (None, None)
        self.last_error = None  # why the latest save of last.pth failed; None once one works
        self._failing = set()   # the files ("last", "numbered") whose latest save failed
        self._last_saved_at = time.perf_counter()

    def announce(self):
        if self.every is not None:
            when = f"every {self.every:g} s" if self.every > 0 else "after every epoch"
            self.log(f"The run is saved to {display_path(self.last_path)} {when}, at the end and on Ctrl-C.")

    def numbered_due(self, epoch):
        return bool(self.checkpoint_freq) and epoch % self.checkpoint_freq == 0

    def last_due(self):
        return self.every is not None and time.perf_counter() - self._last_saved_at >= self.every

    def save_numbered(self, checkpoint, epoch):
        """models/checkpoints/<run>/epoch_<N>.pth, then the older ones beyond --keep_checkpoints go."""
        path = checkpoints.numbered_checkpoint_path(self.run_name, epoch)
        if self._save(checkpoint, path, "numbered") is None:
            removed = checkpoints.prune_numbered_checkpoints(self.run_name, self.keep)
            self.log(f"Saved checkpoint {display_path(path)}"
                     + (f" (removed {len(removed)} older; --keep_checkpoints {self.keep})" if removed else ""))

    def save_last(self, checkpoint):
        """last.pth, the run's resumable state (nothing when the run keeps none)."""
        if self.every is None:
            return
        self.last_error = self._save(checkpoint, self.last_path, "last")
        self._last_saved_at = time.perf_counter()
        if self.last_error is None:
            self.saved_path, self.saved_epoch = self.last_path, checkpoint["training_state"]["epoch"]

    def mark_diverged(self, epoch):
        """Record in last.pth, if this run wrote it (a finite state), that the run diverged after it: the run list
        says so and --resume refuses to repeat it. Its weights are not touched; if this fails, it stays as it was."""
        if self.saved_path != self.last_path:
            return
        try:
            checkpoint = checkpoints.load_checkpoint(self.last_path)
            checkpoint["training_state"].update(stop_reason="diverged", diverged_at_epoch=epoch)
            checkpoints.save(checkpoint, self.last_path)
        except (OSError, checkpoints.CheckpointError):
            pass

    def _save(self, checkpoint, path, kind):
        """Save; on an I/O error warn (once until a save of this kind works again) and return the error's text."""
        try:
            checkpoints.save(checkpoint, path)
        except OSError as error:
            reason = error.strerror or str(error)
            if kind not in self._failing:
                self.log(f"warning: could not save {display_path(path)} ({reason}); training goes on and the next "
                         f"save tries again")
            self._failing.add(kind)
            return reason
        if kind in self._failing:
            self._failing.discard(kind)
            self.log(f"Saved {display_path(path)} again.")
        return None
