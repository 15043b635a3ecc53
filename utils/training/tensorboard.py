"""TensorBoard curves of a run (--enable_tensorboard), in runs/<run>/; a writer that does nothing otherwise."""

from utils import paths
from utils.plumbing.files import display_path


class NullWriter:
    """Stands in for a SummaryWriter when TensorBoard is off."""

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


def tensorboard_folder(run_name):
    return paths.RUNS_DIR / run_name


def make_summary_writer(enabled, run_name, log_dir=None, purge_step=None, log=print):
    """A SummaryWriter in runs/<run>/, or in `log_dir` to continue a resumed run's curves."""
    if not enabled:
        return NullWriter(), log_dir
    from torch.utils.tensorboard import SummaryWriter  # (here: tensorboard is slow to import, and seldom used)
    if log_dir is None:
        log_dir, purge_step = tensorboard_folder(run_name), None
    log(f"TensorBoard logs: {display_path(log_dir)} (view with: tensorboard --logdir runs)")
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step), str(log_dir)
