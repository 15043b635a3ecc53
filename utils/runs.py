"""A run from its settings to its results: the defaults every run has, resuming, and finishing.

`prepare_run` turns the settings given (flags, or a caller's dict) into the run's settings and, with
--resume, the checkpoint to continue. `finish` tests the kept model, saves it as a binary and writes the
results JSON, as the settings ask.
"""

from models import LayerType
from utils import checkpoints
from utils.checkpoints import CheckpointError
from utils.files import display_path, write_json
from utils.interruption import DeferredSignals, TrainingInterrupted

# Settings every run has; each trainer adds its own. The scripts' flags take their defaults from here.
COMMON_DEFAULTS = dict(attention_type="gat", patience_period=100, lr=5e-3, should_test=True, should_visualize=False,
                       enable_tensorboard=False, layer_type=LayerType.IMP3, seed=0, force_cpu=False, data_dir=None,
                       results_json=None, save_binary=True, keep_checkpoints=5, last_checkpoint_seconds=5.0,
                       resume=None)


def prepare_run(defaults, overrides, datasets, script, log=print):
    """The run's settings and, with --resume, the checkpoint to continue (None otherwise).

    `overrides` are the settings given explicitly (on the command line, or by a caller); they win over the
    defaults, and on resume over the checkpoint's settings, except the ones that define a run."""
    overrides = dict(overrides or {})
    if not overrides.get("resume"):
        return dict(defaults, **overrides), None
    dataset = overrides.get("dataset_name", defaults["dataset_name"])
    path = checkpoints.resolve_resume_path(overrides["resume"], dataset)
    checkpoint = checkpoints.load_resumable(path)
    config, changed = checkpoints.settings_for_resume(checkpoint, defaults, overrides, path)
    if config["dataset_name"] not in datasets:
        raise CheckpointError(f"{path} is a {config['dataset_name']} run; resume it with the script that trains "
                              f"{config['dataset_name']}, not {script}")
    state = checkpoint["training_state"]
    log(f"Resuming {display_path(path)}: {state['dataset']}, {state['epoch']} epochs done"
        + (f" (it had stopped: {state['stop_reason']})" if state.get("stop_reason") not in (None, "interrupted")
           else ""))
    for key, old, new in changed:
        log(f"  --{key} changed on resume: {old} -> {new}")
    config["resume"] = str(path)
    return config, checkpoint


def finish(model, config, outcome, results, metric_name, test, log=print):
    """After fit: test the kept model, save it as a binary, write the results JSON, as the settings ask."""
    stopper = outcome.stopper
    results.update(stop_reason=outcome.stop_reason, epochs=outcome.epochs,
                   train_seconds=round(outcome.train_seconds, 3),
                   best_epoch=stopper.best_epoch, best_val_loss=stopper.best_model_val_loss,
                   **{f"best_val_{metric_name}": stopper.best_model_val_metric, f"test_{metric_name}": None,
                      "min_val_loss": stopper.best_val_loss, f"max_val_{metric_name}": stopper.best_val_metric},
                   last_checkpoint=str(outcome.last_checkpoint) if outcome.last_checkpoint else None)
    if outcome.stop_reason == "interrupted":
        if config.get("results_json"):
            write_json(config["results_json"], results)
        raise TrainingInterrupted(outcome.signum, outcome.epochs, outcome.last_checkpoint)
    with DeferredSignals() as signals:  # the run is complete: a Ctrl-C now waits for these few seconds
        _test_and_save(model, config, outcome, results, metric_name, test, log)
    if signals.received:
        log("(Stop signal received while finishing; the run had completed and finished normally.)")
    return results


def _test_and_save(model, config, outcome, results, metric_name, test, log):
    stopper = outcome.stopper
    if config["should_test"]:
        results[f"test_{metric_name}"] = test()
    if config["save_binary"]:
        summary = dict(dataset=config["dataset_name"], epoch=outcome.epochs, stop_reason=outcome.stop_reason,
                       settings=checkpoints.plain_settings(config), history=outcome.history,
                       **{key: value for key, value in results.items() if key.startswith(("best_", "min_", "max_"))})
        path = checkpoints.save_binary(checkpoints.make_checkpoint(model, None, summary), config["dataset_name"])
        log(f"Saved the kept model (epoch {stopper.best_epoch}) to {display_path(path)}")
    if config.get("results_json"):
        write_json(config["results_json"], results)
    return results
