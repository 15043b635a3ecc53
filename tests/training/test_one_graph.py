"""Cora training end to end: it learns, it is repeatable, it saves what it should, it rejects bad flags."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import the_one

import training_script_cora
from models import GAT, LayerType
from utils.paths import PROJECT_ROOT
from utils.runs.checkpoints import CheckpointError, load_checkpoint, make_checkpoint, model_from_checkpoint, save_binary
from utils.training.loop import EarlyStopping
from utils.training.one_graph import train_one_graph

QUIET = dict(console_log_freq=0, checkpoint_freq=0, save_binary=False, last_checkpoint_seconds=None)


def no_log(*args):
    pass


@pytest.mark.slow
def test_short_real_cora_training_clearly_learns(cora):
    result = train_one_graph(dict(QUIET, num_of_epochs=120, seed=0), log=no_log, data=cora)
    assert result["test_acc"] > 0.75, result
    assert result["epochs"] == 120 and [h["epoch"] for h in result["history"]] == list(range(1, 121))
    assert result["stop_reason"] == "num_of_epochs"


def test_console_lines_carry_the_clock_that_the_speed_benchmark_reads(cora):
    from benchmarks.bench_speed import _epoch_ms_from_console
    logs = []
    train_one_graph(dict(QUIET, num_of_epochs=3, console_log_freq=1), log=logs.append, data=cora)
    epoch_lines = [line for line in logs if line.startswith("epoch")]
    assert len(epoch_lines) == 3, logs
    epoch_ms = _epoch_ms_from_console("\n".join(logs), first_epoch=1)
    assert epoch_ms is not None and 0 <= epoch_ms < 10_000, epoch_lines


@pytest.mark.slow
def test_gatv2_trains_on_real_cora_through_the_script(cora_data_dir, isolated_outputs, capsys):
    results_path = isolated_outputs / "gatv2.json"
    training_script_cora.main(["--attention_type", "gatv2", "--num_of_epochs", "60", "--console_log_freq", "0",
                               "--data_dir", str(cora_data_dir), "--results_json", str(results_path)])
    results = json.loads(results_path.read_text())
    assert results["attention_type"] == "gatv2" and results["test_acc"] > 0.7, results
    binary = load_checkpoint(the_one(isolated_outputs / "binaries"))
    assert binary["config"]["attention_type"] == "gatv2" and "layers.0.scoring_fn" in binary["model_state"]
    assert "Training GATv2 (IMP3) on cora" in capsys.readouterr().out


@pytest.mark.slow
def test_same_seed_same_run_on_cpu(cora):
    runs = [train_one_graph(dict(QUIET, num_of_epochs=15, seed=7), log=no_log, data=cora) for _ in range(2)]
    assert runs[0]["history"] == runs[1]["history"]
    assert runs[0]["test_acc"] == runs[1]["test_acc"]
    other = train_one_graph(dict(QUIET, num_of_epochs=15, seed=8), log=no_log, data=cora)
    assert other["history"] != runs[0]["history"]


def test_early_stopping_follows_the_paper():
    model = torch.nn.Linear(1, 1)
    stopper = EarlyStopping(patience=2)
    # epoch: (val_loss, val_acc)
    assert not stopper.step(1, 1.0, 0.5, model)       # both improve: kept
    assert not stopper.step(2, 0.9, 0.4, model)       # loss improves only: patience resets, not kept
    assert stopper.best_epoch == 1 and stopper.epochs_without_improvement == 0
    assert not stopper.step(3, 0.95, 0.45, model)     # neither: 1
    assert not stopper.step(4, 1.2, 0.6, model)       # accuracy improves only: resets
    assert stopper.epochs_without_improvement == 0
    assert stopper.best_epoch == 1 and stopper.best_model_val_loss == 1.0  # the kept model's own numbers
    assert not stopper.step(5, 0.9, 0.6, model)       # ties on both count as improvement: kept
    assert stopper.best_epoch == 5 and (stopper.best_model_val_loss, stopper.best_model_val_metric) == (0.9, 0.6)
    assert not stopper.step(6, 2.0, 0.1, model)
    assert stopper.step(7, 2.0, 0.1, model)           # patience exhausted
    assert stopper.best_val_loss == 0.9 and stopper.best_val_metric == 0.6
    assert (stopper.best_val_loss_epoch, stopper.best_val_metric_epoch) == (5, 5)


@pytest.mark.slow
def test_script_end_to_end_writes_results_checkpoint_and_binary(cora_data_dir, isolated_outputs, capsys):
    results_path = isolated_outputs / "results.json"
    training_script_cora.main(["--num_of_epochs", "6", "--checkpoint_freq", "2", "--keep_checkpoints", "2",
                               "--console_log_freq", "2", "--data_dir", str(cora_data_dir), "--results_json",
                               str(results_path), "--layer_type", "imp2", "--force_cpu", "--enable_tensorboard"])
    output = capsys.readouterr().out
    assert "Using device: cpu (--force_cpu)" in output
    assert output.strip().splitlines()[-1].startswith("Test accuracy = 0.")
    assert "Reached --num_of_epochs (6)." in output and "The model tested is from epoch" in output
    assert output.count("Saved checkpoint ") == 3  # one line per checkpoint written

    results = json.loads(results_path.read_text())
    assert set(results) >= {"dataset", "layer_type", "seed", "test_acc", "best_val_acc", "best_val_loss", "epochs",
                            "train_seconds", "stop_reason", "best_epoch", "min_val_loss", "max_val_acc"}
    assert results["dataset"] == "cora" and results["layer_type"] == "IMP2" and results["epochs"] == 6
    assert results["stop_reason"] == "num_of_epochs" and 1 <= results["best_epoch"] <= 6

    # --keep_checkpoints 2: the numbered checkpoint of epoch 2 is gone; the resumable last one is there.
    run_folder = the_one(isolated_outputs / "checkpoints", "*")
    assert run_folder.name == results["run_name"] and run_folder.name.startswith("cora_gat_seed0_")
    names = sorted(p.name for p in run_folder.iterdir())
    assert names == ["epoch_000004.pth", "epoch_000006.pth", "last.pth", "results.json"]
    checkpoint = load_checkpoint(run_folder / "epoch_000006.pth")
    state = checkpoint["training_state"]
    assert state["epoch"] == 6 and state["settings"]["seed"] == 0 and len(state["history"]) == 6
    assert checkpoint["optimizer_state"]["state"], "optimizer state saved"
    assert checkpoint["config"]["layer_type"] == "IMP2"

    # The binary holds the kept model and *its own* validation numbers, with the run's extremes beside them.
    binary = load_checkpoint(isolated_outputs / "binaries" / f"{run_folder.name}.pth")["training_state"]
    kept = state["history"][results["best_epoch"] - 1]
    assert binary["best_epoch"] == results["best_epoch"]
    assert binary["best_val_loss"] == kept["val_loss"] and binary["best_val_acc"] == kept["val_acc"]
    assert binary["min_val_loss"] == min(h["val_loss"] for h in state["history"])
    assert list((isolated_outputs / "runs").glob(f"{run_folder.name}/events.out.tfevents.*"))


def test_binaries_are_never_overwritten(isolated_outputs):
    model = GAT(1, [1], [3, 2])
    paths = [save_binary(make_checkpoint(model), "cora") for _ in range(3)]
    assert [p.name for p in paths] == ["cora.pth", "cora-2.pth", "cora-3.pth"]
    written = {path: path.read_bytes() for path in (paths[0], paths[2])}
    paths[1].unlink()
    assert save_binary(make_checkpoint(model), "cora").name == "cora-2.pth"
    assert save_binary(make_checkpoint(model), "cora").name == "cora-4.pth"
    assert all(path.read_bytes() == data for path, data in written.items())


@pytest.mark.slow
def test_checkpoint_loads_into_every_layer_type(cora, isolated_outputs):
    result = train_one_graph(dict(QUIET, num_of_epochs=3, save_binary=True), log=no_log, data=cora)
    path = the_one(isolated_outputs / "binaries")
    logits = []
    for layer_type in LayerType:
        model, _ = model_from_checkpoint(path, layer_type=layer_type)
        logits.append(model.eval()(cora.node_features, cora.edge_index))
    for other in logits[1:]:
        torch.testing.assert_close(other, logits[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(logits[2], result["model"].eval()(cora.node_features, cora.edge_index))


def test_bad_checkpoints_give_clear_errors(isolated_outputs):
    missing = isolated_outputs / "binaries" / "nope.pth"
    save_binary(make_checkpoint(GAT(1, [1], [3, 2])), "cora")
    with pytest.raises(CheckpointError, match="cora.pth"):
        load_checkpoint(missing)
    garbage = isolated_outputs / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable GAT checkpoint"):
        load_checkpoint(garbage)
    checkpoint = make_checkpoint(GAT(1, [1], [3, 2]))
    checkpoint["model_state"]["layers.0.linear_proj.weight"] = torch.zeros(5, 5)
    with pytest.raises(CheckpointError, match="does not match"):
        model_from_checkpoint(checkpoint)


@pytest.mark.parametrize("flags, message", [
    (["--num_of_epochs", "-1"], "must be a positive integer"),
    (["--lr", "0"], "must be > 0"),
    (["--dataset_name", "reddit"], "unknown dataset"),
    (["--layer_type", "IMP9"], "unknown layer type"),
])
def test_bad_flags_are_rejected_by_the_parser(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.get_parser().parse_args(flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_dataset_name_is_case_insensitive():
    assert training_script_cora.get_parser().parse_args(["--dataset_name", "CiteSeer"]).dataset_name == "citeseer"


@pytest.mark.slow
def test_missing_dataset_exits_with_a_message_not_a_traceback(tmp_path):
    code = ("import urllib.request, urllib.error, sys\n"
            "def refuse(*a, **k): raise urllib.error.URLError('offline')\n"
            "urllib.request.urlopen = refuse\n"
            "import training_script_cora\n"
            f"training_script_cora.main(['--data_dir', {str(tmp_path)!r}, '--no_save_binary'])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=PROJECT_ROOT, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "error: Could not download ind.cora.x" in result.stderr and "place them there" in result.stderr


@pytest.mark.slow
def test_importing_the_project_creates_no_files(tmp_path):
    code = ("import models, utils.training.one_graph, utils.training.many_graphs, utils.runs.checkpoints, "
            "utils.cli.flags, utils.datasets.planetoid, utils.datasets.ppi, utils.figures.plots, training_script_cora, "
            "training_script_ppi, playground, docs.flag_tables")
    before = {p for p in PROJECT_ROOT.rglob("*") if "__pycache__" not in p.parts}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT, timeout=120)
    after = {p for p in PROJECT_ROOT.rglob("*") if "__pycache__" not in p.parts}
    assert after == before


def test_a_slow_dense_epoch_says_once_that_imp3_is_the_one_to_train_with(tmp_path, monkeypatch):
    from helpers import write_own_graph
    from utils.training import loop
    monkeypatch.setattr(loop, "DENSE_EPOCH_HINT_SECONDS", 0.0)  # (every epoch is "slow")
    graph = str(write_own_graph(tmp_path / "own.npz"))
    notes = {}
    for layer_type in ("IMP2", "IMP3", "IMP4"):
        logs = []
        train_one_graph(dict(QUIET, dataset_name=graph, train_per_class=5, val_per_class=5, num_of_epochs=3,
                             layer_type=LayerType[layer_type]),
                        log=logs.append)
        notes[layer_type] = [line for line in logs if line.startswith("Note:")]
    assert len(notes["IMP2"]) == 1 and "an IMP2 epoch took" in notes["IMP2"][0]
    assert "--layer_type IMP3" in notes["IMP2"][0]
    assert notes["IMP3"] == []
    assert len(notes["IMP4"]) == 1 and "an IMP4 epoch took" in notes["IMP4"][0] and "IMP3" in notes["IMP4"][0]
