"""A run: its name and files, its settings from start to resume, how it ends, and the list of runs there are.

Every run has a name, `--run_name`, by default <dataset>_<attention>_seed<seed>_<start time>, e.g.
cora_gat_seed0_20261202-013000. All of its files carry it, so no run can overwrite another's:

    models/checkpoints/<run>/last.pth        the resumable state (every few seconds, at the end, on Ctrl-C)
    models/checkpoints/<run>/epoch_<N>.pth   every --checkpoint_freq epochs, the newest --keep_checkpoints kept
    models/binaries/<run>.pth                the kept model at the end; never overwritten
    runs/<run>/                              TensorBoard logs (--enable_tensorboard)

A new run claims its folder with one mkdir, which succeeds for exactly one process: two runs started in the
same second with the same settings get <name> and <name>-2. While a process trains a run, it holds the lock in
the run's folder (utils/plumbing/lock.py): a second process cannot resume it at the same time, and a run that stopped
before its first save leaves no folder behind (or an empty one, after a kill, that the next run of that name
takes). `--resume last | NAME | PATH` continues a run in its own files. `python -m utils.runs` lists the runs
there are (utils/cli/run_list.py).
"""

import datetime
import re
from pathlib import Path

from models import LayerType
from utils import paths
from utils.datasets.disk_graph import is_disk_graph
from utils.datasets.names import honest_name, own_graph_name
from utils.plumbing import lock
from utils.plumbing.arguments import SettingsError
from utils.plumbing.files import OutputError, check_writable, display_path, write_json
from utils.plumbing.signals import DeferredSignals, TrainingInterrupted
from utils.runs import checkpoints
from utils.runs.checkpoints import CheckpointError

RESULTS_NAME = "results.json"  # a finished run's results, beside its last.pth (the run list reads its test metric)
RUN_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a file name on every system, no path

# Settings every run has; each trainer adds its own. The scripts' flags take their defaults from here.
COMMON_DEFAULTS = dict(attention_type="gat", patience_period=100, lr=5e-3, should_test=True, should_visualize=False,
                       enable_tensorboard=False, layer_type=LayerType.IMP3, seed=0, force_cpu=False, precision="fp32",
                       tf32=False,
                       data_dir=None, results_json=None, save_binary=True, keep_checkpoints=5,
                       last_checkpoint_seconds=5.0, resume=None, run_name=None)

# (A run with no stop reason whose lock no process holds was killed; utils/cli/run_list.py says which are training.)
STATUSES = {None: "killed", "interrupted": "interrupted", "early_stopping": "finished",
            "num_of_epochs": "finished", "diverged": "diverged"}


class RunFinished(Exception):
    """A finished run was resumed with nothing left to do; the message says how to train it further."""


class TrainingDiverged(Exception):
    """The loss or the weights became non-finite; the message says at which epoch, what was kept, what to try."""


class SaveFailed(Exception):
    """A save the run cannot go on without failed (the final checkpoint, the binary, the results JSON)."""


# ----------------------------------------------------------------------------- names

def default_run_name(config, now=None):
    """<dataset>_<attention>_seed<seed>_<YYYYmmdd-HHMMSS>: sortable by start time within a dataset."""
    started = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    dataset = honest_name(str(config["dataset_name"]))
    dataset = own_graph_name(dataset) if dataset.endswith(".npz") else Path(dataset).name
    dataset = re.sub(r"[^A-Za-z0-9.-]+", "-", dataset).strip("-.") or "graph"
    return f"{dataset}_{config['attention_type']}_seed{config['seed']}_{started}"


def claim_run_name(name, chosen_by_user):
    """Create the run's checkpoint folder and return its name: `name`, or, for a default name that is taken,
    name-2, name-3, ... (mkdir is atomic: of two processes claiming one name, exactly one gets it)."""
    if not RUN_NAME_PATTERN.fullmatch(name):
        raise SettingsError(f"--run_name {name!r}: use letters, digits, '.', '_' and '-' (at most 128, no '/')")
    for index in range(1, 10 ** 4):
        candidate = name if index == 1 else f"{name}-{index}"
        taken_by = checkpoints.binary_path(candidate)  # a run whose checkpoints were deleted, not its binary
        if not taken_by.exists():
            try:
                checkpoints.run_folder(candidate).mkdir(parents=True)
            except FileExistsError:
                taken_by = checkpoints.run_folder(candidate)
                if _take_if_it_saved_nothing(taken_by):
                    return candidate
            except OSError as error:
                check_writable(paths.CHECKPOINTS_DIR)  # says why, where it can
                raise OutputError(f"cannot create {display_path(checkpoints.run_folder(candidate))}: "
                                  f"{describe_os_error(error)}") from None
            else:
                if lock.try_lock(checkpoints.run_folder(candidate)):
                    return candidate
                taken_by = checkpoints.run_folder(candidate)  # (a process that found it empty took it first)
        if chosen_by_user:
            raise SettingsError(_why_taken(name, taken_by))
    raise SettingsError(f"no free run name like {name} in {display_path(paths.CHECKPOINTS_DIR)}")


def _why_taken(name, taken_by):
    """--run_name NAME is another run's: what that run is, and what to do."""
    last = checkpoints.last_checkpoint_path(name)
    try:
        state = checkpoints.load_checkpoint(last)["training_state"] if last.is_file() else {}
    except (CheckpointError, KeyError, TypeError):
        state = {}
    if state.get("stop_reason") == "diverged":
        return (f"--run_name {name}: that run diverged at epoch {state.get('diverged_at_epoch', '?')} and cannot be "
                f"continued (its learning rate is fixed on resume); choose another name, or delete "
                f"{display_path(checkpoints.run_folder(name))} to use this one again")
    return (f"--run_name {name}: {display_path(taken_by)} exists already; continue that run with --resume {name}, "
            f"or choose another name")


def _take_if_it_saved_nothing(folder):
    """Take the folder of a run that stopped before its first save (killed, or diverged on an older version), if no
    process trains it: True if it is ours now. (One this process trains is not: a new run is another run.)"""
    if lock.holds(folder) or not lock.try_lock(folder):
        return False
    if lock.saved_nothing(folder):
        return True
    lock.release(folder)
    return False


def writes_files(config):
    """Whether the run writes anything under its name (checkpoints, a binary, TensorBoard logs)."""
    return bool(config["last_checkpoint_seconds"] is not None or config.get("checkpoint_freq")
                or config["save_binary"] or config["enable_tensorboard"])


def claim_run(config):
    """The run's settings with its name: a resumed run keeps its own; a new one (or one resumed from a checkpoint
    in the older unnamed layout) claims a name and its folder, if it writes any file."""
    if config["resume"] and config["run_name"] and checkpoints.run_folder(config["run_name"]).is_dir():
        if writes_files(config):
            lock.lock_run(checkpoints.run_folder(config["run_name"]), config["run_name"])
        return config
    name = config["run_name"] or default_run_name(config)
    if writes_files(config):
        name = claim_run_name(name, chosen_by_user=bool(config["run_name"]))
    return dict(config, run_name=name)


def check_outputs(config):
    """Every folder and file the run will write, checked before anything trains (OutputError if one can't be)."""
    if config["last_checkpoint_seconds"] is not None or config.get("checkpoint_freq"):
        check_writable(paths.CHECKPOINTS_DIR)
    if config["save_binary"]:
        check_writable(paths.BINARIES_DIR)
    if config["enable_tensorboard"]:
        check_writable(paths.RUNS_DIR)
    if config.get("results_json"):
        check_writable(config["results_json"], is_file=True)


# ----------------------------------------------------------------------------- start

def find_checkpoint(defaults, overrides):
    """(path, bytes, the checkpoint loaded from them) of the checkpoint --resume names (CheckpointError if there is
    none, or it cannot be resumed)."""
    dataset = overrides.get("dataset_name", defaults["dataset_name"])
    path = checkpoints.resolve_resume_path(overrides["resume"], dataset)
    data = path.read_bytes() if path.is_file() else None
    return path, data, checkpoints.load_resumable(path, data)


def prepare_run(defaults, overrides, datasets, script, log=print, writes=True, found=None):
    """The run's settings and, with --resume, the checkpoint to continue (None otherwise).

    `overrides` are the settings given explicitly (on the command line, or by a caller); they win over the
    defaults, and on resume over the checkpoint's settings, except the ones that define a run. Every output is
    checked for writing (writes=False, every process but rank 0 under torchrun: none is). A new run gets its name
    from `claim_run`, right before it trains. Raises RunFinished for a run that has nothing left to do.
    found: (path, bytes) of the checkpoint to resume, where it was found already (under torchrun, on whichever node
    holds it: utils/training/distributed.py, newest_checkpoint)."""
    overrides = dict(overrides or {})
    checkpoint = None
    if not overrides.get("resume"):
        config = dict(defaults, **overrides)
    else:
        if found is None:
            path, _, checkpoint = find_checkpoint(defaults, overrides)
        else:
            path = Path(found[0])
            checkpoint = checkpoints.load_resumable(path, found[1])
        config, changed = checkpoints.settings_for_resume(checkpoint, defaults, overrides, path)
        if config["dataset_name"] not in datasets and not str(config["dataset_name"]).endswith(".npz") \
                and not is_disk_graph(config["dataset_name"]):
            raise CheckpointError(f"{path} is a {config['dataset_name']} run; resume it with the script that trains "
                                  f"{config['dataset_name']}, not {script}")
        state = checkpoint["training_state"]
        config["run_name"] = state.get("run_name") or config["run_name"]
        if writes and state.get("run_name") and path.parent.name == state["run_name"] and path.parent.is_dir():
            lock.refuse_if_in_use(path.parent, state["run_name"])  # (taken by claim_run, right before training)
        _refuse_if_done(state, config, path)
        name = config["run_name"] or "(a checkpoint of the older unnamed layout: it goes on as a new run)"
        log(f"Resuming run {name} ({display_path(path)}): {state['dataset']}, {state['epoch']} "
            f"epochs done" + (f" (it had stopped: {state['stop_reason']})"
                              if state.get("stop_reason") not in (None, "interrupted") else ""))
        for key, old, new in changed:
            log(f"  --{key} changed on resume: {old} -> {new}")
        config["resume"] = str(path)
    if writes:
        check_outputs(config)
    return config, checkpoint


def _refuse_if_done(state, config, path):
    """A finished run resumed with nothing more to do (RunFinished), or a diverged one (TrainingDiverged)."""
    epochs, stop_reason = state["epoch"], state.get("stop_reason")
    name = state.get("run_name") or display_path(path)
    if stop_reason == "diverged":
        raise TrainingDiverged(f"run {name} diverged at epoch {state.get('diverged_at_epoch', '?')}; resuming it would "
                               f"repeat that. Start a new run with a lower --lr (it is fixed on resume: it defines "
                               f"the run)")
    if stop_reason in ("early_stopping", "num_of_epochs"):
        patience_spent = state["early_stopping"]["epochs_without_improvement"] >= config["patience_period"]
        if patience_spent:
            raise RunFinished(f"Run {name} is finished: early stopping at epoch {epochs} (no improvement for "
                              f"{config['patience_period']} epochs). Nothing to do; to train it further, resume it "
                              f"with a larger --patience_period (and --num_of_epochs).")
        if epochs >= config["num_of_epochs"]:
            raise RunFinished(f"Run {name} is finished: it trained its {epochs} epochs (--num_of_epochs "
                              f"{config['num_of_epochs']}). Nothing to do; to train it further, resume it with a "
                              f"larger --num_of_epochs.")


# ----------------------------------------------------------------------------- end

def finish(model, config, outcome, results, metric_name, test, log=print):
    """After fit: test the kept model, save it as a binary, write the results JSON, as the settings ask; then let
    go of the run's lock (and of its folder, if it saved nothing).

    Raises TrainingInterrupted (after a stop signal), TrainingDiverged (non-finite loss), SaveFailed."""
    try:
        return _finish(model, config, outcome, results, metric_name, test, log)
    finally:
        lock.release(checkpoints.run_folder(config["run_name"]))


def _finish(model, config, outcome, results, metric_name, test, log):
    stopper = outcome.stopper
    results.update(run_name=config["run_name"], stop_reason=outcome.stop_reason, epochs=outcome.epochs,
                   train_seconds=round(outcome.train_seconds, 3),
                   best_epoch=stopper.best_epoch, best_val_loss=stopper.best_model_val_loss,
                   **{f"best_val_{metric_name}": stopper.best_model_val_metric, f"test_{metric_name}": None,
                      "min_val_loss": stopper.best_val_loss, f"max_val_{metric_name}": stopper.best_val_metric},
                   last_checkpoint=str(outcome.last_checkpoint) if outcome.last_checkpoint else None)
    if outcome.stop_reason in ("interrupted", "diverged"):
        if config.get("results_json"):
            _write_results(config["results_json"], results)
        if outcome.stop_reason == "diverged":
            raise TrainingDiverged(outcome.message)
        own_file = outcome.last_checkpoint == checkpoints.last_checkpoint_path(config["run_name"])
        raise TrainingInterrupted(outcome.signum, outcome.epochs, outcome.last_checkpoint,
                                  config["run_name"] if own_file else None, outcome.saved_epoch)
    with DeferredSignals() as signals:  # the run is complete: a Ctrl-C now waits for these few seconds
        _test_and_save(model, config, outcome, results, metric_name, test, log)
    if signals.received:
        log("(Stop signal received while finishing; the run had completed and finished normally.)")
    if outcome.save_error is not None:
        last = checkpoints.last_checkpoint_path(config["run_name"])
        raise SaveFailed(f"could not save the run's final state to {display_path(last)} ({outcome.save_error}). "
                         + ("The kept model was saved (above). " if config["save_binary"] else "")
                         + (f"{display_path(outcome.last_checkpoint)} is whole and holds epoch {outcome.saved_epoch}."
                            if outcome.last_checkpoint else "No checkpoint of the run was written."))
    return results


def _test_and_save(model, config, outcome, results, metric_name, test, log):
    stopper = outcome.stopper
    if config["should_test"]:
        results[f"test_{metric_name}"] = test()
        _record_test_metric(config["run_name"], results, log)
    if config["save_binary"]:
        summary = dict(dataset=config["dataset_name"], run_name=config["run_name"], epoch=outcome.epochs,
                       stop_reason=outcome.stop_reason, settings=checkpoints.plain_settings(config),
                       history=outcome.history, **{key: value for key, value in results.items()
                                                   if key.startswith(("best_", "min_", "max_", "test_"))})
        try:
            path = checkpoints.save_binary(checkpoints.make_checkpoint(model, None, summary), config["run_name"])
        except OSError as error:
            binary = display_path(checkpoints.binary_path(config["run_name"]))
            raise SaveFailed(f"could not save the kept model to {binary} ({describe_os_error(error)}). "
                             f"{_what_was_kept(outcome)}") from None
        log(f"Saved the kept model (epoch {stopper.best_epoch}) to {display_path(path)}")
    if config.get("results_json"):
        _write_results(config["results_json"], results, outcome)
    return results


def _record_test_metric(run_name, results, log):
    """The results, test metric included, beside the run's last.pth (RESULTS_NAME), so that the run list shows the
    test metric of a run that saved no binary. Not essential: a failure is said and the run goes on."""
    folder = checkpoints.run_folder(run_name)
    if not checkpoints.last_checkpoint_path(run_name).is_file():
        return
    try:
        write_json(folder / RESULTS_NAME, results)
    except OSError as error:
        log(f"Warning: could not write {display_path(folder / RESULTS_NAME)} ({describe_os_error(error)}); the run "
            f"list will not show this run's test metric.")


def _write_results(path, results, outcome=None):
    try:
        write_json(path, results)
    except OSError as error:
        kept = f" {_what_was_kept(outcome)}" if outcome is not None else ""
        raise SaveFailed(f"could not write --results_json {display_path(path)} ({describe_os_error(error)}).{kept}") \
            from None


def _what_was_kept(outcome):
    if outcome.last_checkpoint is None:
        return "No checkpoint of the run was written."
    return (f"The run's checkpoint {display_path(outcome.last_checkpoint)} is whole and holds epoch "
            f"{outcome.saved_epoch}; make room and continue from there with --resume.")


def describe_os_error(error):
    return error.strerror or str(error) if isinstance(error, OSError) else str(error)
