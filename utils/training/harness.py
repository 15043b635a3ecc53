"""What both trainers do around their own part (one_graph.py, many_graphs.py): start the run, seed it and choose
its device, build the model and the optimizer; at the end fit, test the kept model, save, and say the result.

A trainer reads as the same five steps with its data and its epochs in between:

    config, resume, ctx, log = start(DEFAULTS, config, DATASETS, "training_script_x.py", log)
    config, device = seed_and_place(config, ctx, log)          # (the trainer's own checks before, its data after)
    model, trained, optimizer, precision = build(architecture, num_in, num_out, config, resume, ctx, device)
    config = claim_run(config)                                 # right before training (utils/runs/run.py)
    return fit_and_finish(model, optimizer, epochs.train, evaluate, config, "acc", results, ...)
"""

import torch

from utils.runs import checkpoints
from utils.runs.checkpoints import CheckpointError
from utils.runs.run import find_checkpoint, finish, prepare_run
from utils.training import distributed
from utils.training.loop import METRIC_NAMES, fit
from utils.training.precision import Precision
from utils.training.setup import build_model, make_optimizer, set_seed, silent


def start(defaults, config, datasets, script, log):
    """(config, resume, ctx, log): the run's settings (a resumed run's own, from its checkpoint), the checkpoint
    resumed from (or None), the processes (utils/training/distributed.py), and the log: silent on every process but
    rank 0 under torchrun, which alone prints and writes."""
    is_main = distributed.launched_rank() == 0
    log = log if is_main else silent
    if not (config.get("resume") and distributed.launched_world_size() > 1):
        config, resume = prepare_run(defaults, config, datasets, script, log, writes=is_main)
        ctx = distributed.setup(force_cpu=config["force_cpu"])  # after resuming: the run's own settings decide
        return config, resume, ctx, log
    # Resuming under torchrun, where the nodes may not share a filesystem: the checkpoint may be on one node only
    # (rank 0's when it was written, and rank 0 may now be elsewhere). Each rank looks on its own node; the newest
    # copy any rank found goes to all (distributed.newest_checkpoint); then every rank resumes from the same bytes.
    # (A rank without a copy joins with --force_cpu as typed: the printed resume command repeats it.)
    found, missing, force_cpu = None, None, config.get("force_cpu", False)
    try:
        path, data, checkpoint = find_checkpoint(defaults, config)
        state = checkpoint["training_state"]
        found, force_cpu = (path, data, state["epoch"]), config.get("force_cpu", state["settings"].get("force_cpu"))
    except CheckpointError as error:
        missing = error
    ctx = distributed.setup(force_cpu=bool(force_cpu))
    newest = distributed.newest_checkpoint(ctx, found)
    if newest is None:
        raise missing
    config, resume = prepare_run(defaults, config, datasets, script, log, writes=is_main, found=newest)
    return config, resume, ctx, log


def seed_and_place(config, ctx, log):
    """(this process's config, device): every random generator seeded, before anything draws from them."""
    config = distributed.config_for_rank(config, ctx)
    set_seed(config["seed"])
    device = distributed.device_for(ctx, config, log)
    if device.type == "cuda":  # --tf32: float32 matrix products in TF32 on tensor cores (an opt-in: it rounds more)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(config.get("tf32"))
    return config, device


def build(architecture, num_in_features, num_out_features, config, resume, ctx, device):
    """(model, trained, optimizer, precision): the model on the device (checked against the checkpoint resumed
    from), the module the training steps call (DistributedDataParallel under torchrun, else the model), Adam,
    and the run's precision (utils/training/precision.py)."""
    model = build_model(architecture, num_in_features, num_out_features, config["layer_type"],
                        attention_type=config["attention_type"]).to(device)
    if resume is not None:
        checkpoints.check_model_matches(resume, model, config["resume"])
    trained = distributed.data_parallel(model, ctx, device)
    optimizer = make_optimizer(model, config["lr"], config["weight_decay"])
    return model, trained, optimizer, Precision(config["precision"], device)


def fit_and_finish(model, optimizer, train_epoch, evaluate, config, metric_name, results, *, resume, ctx, precision,
                   log, generators=None, epochs_can_be_abandoned=False):
    """Train (utils/training/loop.py: fit), then test the kept model, save it and write the results
    (utils/runs/run.py: finish); returns the results with the 'history' and the 'model'."""
    outcome = fit(model, optimizer, train_epoch, evaluate, config, metric_name, resume=resume, generators=generators,
                  epochs_can_be_abandoned=epochs_can_be_abandoned, agree_on_stop=distributed.agreement(ctx),
                  precision=precision, log=log)
    finish(model, config, outcome, results, metric_name, lambda: evaluate("test")[1], log=log)
    test_metric = results[f"test_{metric_name}"]
    if test_metric is not None:
        log(f"Test {METRIC_NAMES[metric_name]} = {test_metric:.4f}")
    return dict(results, history=outcome.history, model=model)
