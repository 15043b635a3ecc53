"""Runs that survive: Ctrl-C and SIGTERM save the last completed epoch, and --resume continues exactly."""

import json
import os
import shlex
import signal
import subprocess
import sys

import pytest
import torch
from conftest import the_one

import training_script_cora
import training_script_ppi
from utils import paths
from utils.datasets.ppi import GraphDataLoader, load_ppi
from utils.datasets.ppi_synthetic import write_synthetic_ppi
from utils.paths import PROJECT_ROOT
from utils.plumbing.signals import TrainingInterrupted
from utils.runs import checkpoints
from utils.runs.checkpoints import CheckpointError, load_checkpoint
from utils.training.many_graphs import train_many_graphs
from utils.training.one_graph import train_one_graph

QUIET = dict(console_log_freq=0, checkpoint_freq=0, save_binary=False)


def no_log(*args):
    pass


def final_state(dataset):
    """What the run ended with: its last checkpoint (weights after the last epoch, history, early stopping)."""
    return load_checkpoint(checkpoints.resolve_resume_path("last", dataset))


def assert_same_run(resumed, reference, resumed_results, reference_results, metric):
    for name, value in reference["model_state"].items():
        assert torch.equal(resumed["model_state"][name], value), name
    state, reference_state = resumed["training_state"], reference["training_state"]
    assert state["history"] == reference_state["history"]
    for name, value in reference_state["early_stopping"]["best_state"].items():
        assert torch.equal(state["early_stopping"]["best_state"][name], value), name
    for key in ("best_epoch", "best_val_loss", f"best_val_{metric}", f"test_{metric}", "epochs", "stop_reason"):
        assert resumed_results[key] == reference_results[key], key


@pytest.mark.slow
def test_cora_resumed_run_equals_uninterrupted_run(cora, isolated_outputs):
    config = dict(QUIET, seed=3, patience_period=15, enable_tensorboard=True)
    reference = train_one_graph(dict(config, num_of_epochs=40), log=no_log, data=cora)
    reference_state = final_state("cora")

    train_one_graph(dict(config, num_of_epochs=20), log=no_log, data=cora)
    assert final_state("cora")["training_state"]["epoch"] == 20
    logs = []
    resumed = train_one_graph(dict(QUIET, resume="last", num_of_epochs=40), log=logs.append, data=cora)
    assert any("Resuming" in line and "20 epochs done" in line for line in logs)
    assert any("--num_of_epochs changed on resume: 20 -> 40" in line for line in logs)
    assert_same_run(final_state("cora"), reference_state, resumed, reference, "acc")

    # TensorBoard: the resumed run continued in the folder of the run it resumed.
    run_folders = sorted((isolated_outputs / "runs").iterdir())
    assert len(run_folders) == 2  # the reference run and the interrupted-then-resumed one
    assert len(list(run_folders[-1].glob("events.out.tfevents.*"))) == 2


@pytest.fixture(scope="module")
def ppi_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("ppi_resume")
    write_synthetic_ppi(data_dir / "ppi", graphs_per_split=(6, 2, 2), nodes_per_graph=(30, 40), seed=1)
    return data_dir


PPI_SMALL = dict(QUIET, hidden_features=8, batch_size=2, progress_bar=False, seed=5, patience_period=50)


@pytest.mark.slow
def test_ppi_resumed_run_equals_uninterrupted_run_even_when_stopped_mid_epoch(ppi_dir, monkeypatch):
    splits = load_ppi(ppi_dir, download=False)
    reference = train_many_graphs(dict(PPI_SMALL, num_of_epochs=6), log=no_log, splits=splits)
    reference_state = final_state("ppi")

    # Ctrl-C arrives during the second batch of epoch 4: the loop drops that epoch and saves epoch 3.
    original_iter = GraphDataLoader.__iter__
    batches_seen = []

    def iterate_and_interrupt(loader):
        for batch in original_iter(loader):
            if loader.shuffle:
                batches_seen.append(batch)
                if len(batches_seen) == 3 * 3 + 2:  # 3 batches per epoch
                    os.kill(os.getpid(), signal.SIGINT)
            yield batch

    monkeypatch.setattr(GraphDataLoader, "__iter__", iterate_and_interrupt)
    with pytest.raises(TrainingInterrupted) as interrupted:
        train_many_graphs(dict(PPI_SMALL, num_of_epochs=6, last_checkpoint_seconds=1000.0), log=no_log, splits=splits)
    assert interrupted.value.epoch == 3 and interrupted.value.exit_code == 130
    assert final_state("ppi")["training_state"]["epoch"] == 3
    monkeypatch.setattr(GraphDataLoader, "__iter__", original_iter)

    resumed = train_many_graphs(dict(PPI_SMALL, resume="last", num_of_epochs=6), log=no_log, splits=splits)
    assert_same_run(final_state("ppi"), reference_state, resumed, reference, "micro_f1")


def run_script(output_dir, *args, **kwargs):
    """Start a script as a user would, its outputs moved to output_dir (tests/isolated_script.py)."""
    command = [sys.executable, "-u", str(PROJECT_ROOT / "tests" / "isolated_script.py"), str(output_dir), *args]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"), **kwargs)


def interrupt_after(process, epoch, signum):
    """Send signum once the run has printed `epoch`; return (stdout, stderr)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("epoch") and int(line.split()[1]) >= epoch:
            process.send_signal(signum)
            break
    out, err = process.communicate(timeout=120)
    return "".join(lines) + out, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_signal_saves_and_printed_command_resumes_exactly(cora_data_dir, tmp_path, signum):
    flags = ["--data_dir", str(cora_data_dir), "--num_of_epochs", "100000", "--patience_period", "100000",
             "--console_log_freq", "1", "--seed", "2"]
    interrupted = run_script(tmp_path / "out", "training_script_cora.py", *flags)
    out, err = interrupt_after(interrupted, 10, signum)
    assert interrupted.returncode == 128 + signum, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("Interrupted at epoch ") and "Resume with: python training_script_cora.py" in err
    epoch = int(err.split()[3].rstrip("."))
    assert epoch >= 10
    saved = the_one(tmp_path / "out" / "checkpoints", "*/last.pth")
    assert load_checkpoint(saved)["training_state"]["epoch"] == epoch
    assert sorted(p.name for p in saved.parent.iterdir()) == ["last.pth"]  # no temp file left
    assert err.rstrip().endswith(f"--resume {saved.parent.name}")  # the run, by its name

    # The printed command, run as printed (plus a stopping point), continues the run to epoch + 5 ...
    command = shlex.split(err.split("Resume with: ")[1])
    assert command[:2] == ["python", "training_script_cora.py"] and "--num_of_epochs" in command
    resumed = run_script(tmp_path / "out", *command[1:], "--num_of_epochs", str(epoch + 5), "--results_json",
                         str(tmp_path / "resumed.json"))
    resumed_out, resumed_err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, resumed_err
    assert f"Reached --num_of_epochs ({epoch + 5})" in resumed_out

    # ... exactly as a run that was never interrupted.
    reference = run_script(tmp_path / "reference", "training_script_cora.py", *flags, "--num_of_epochs",
                           str(epoch + 5), "--results_json", str(tmp_path / "reference.json"))
    _, reference_err = reference.communicate(timeout=120)
    assert reference.returncode == 0, reference_err
    resumed_state = load_checkpoint(saved)
    reference_state = load_checkpoint(the_one(tmp_path / "reference" / "checkpoints", "*/last.pth"))
    results = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("resumed", "reference")]
    assert_same_run(resumed_state, reference_state, *results, "acc")


def test_second_ctrl_c_while_saving_leaves_a_whole_file(cora, isolated_outputs, monkeypatch):
    real_save = torch.save

    def save_with_two_more_signals(obj, f, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # the user keeps pressing Ctrl-C while we write
        real_save(obj, f, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(torch, "save", save_with_two_more_signals)
    with pytest.raises(TrainingInterrupted) as interrupted:
        train_one_graph(dict(QUIET, num_of_epochs=50, last_checkpoint_seconds=0.0), log=no_log, data=cora)
    folder = the_one(isolated_outputs / "checkpoints", "*")
    assert [p.name for p in folder.iterdir()] == ["last.pth"]
    assert load_checkpoint(folder / "last.pth")["training_state"]["epoch"] == interrupted.value.epoch


@pytest.mark.slow
def test_resume_refuses_contradicting_settings(cora_data_dir, isolated_outputs, capsys):
    flags = ["--data_dir", str(cora_data_dir), "--num_of_epochs", "3", "--no_save_binary", "--console_log_freq", "0"]
    training_script_cora.main(flags)
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main([*flags, "--resume", "last", "--lr", "0.01", "--seed", "4", "--attention_type",
                                   "gatv2"])
    message = str(exit_info.value.code)
    assert message.startswith("error: cannot resume") and "--lr 0.01 (checkpoint: 0.005)" in message
    assert "--seed 4 (checkpoint: 0)" in message and "--attention_type gatv2 (checkpoint: gat)" in message

    # Changing what may change is fine, and said.
    training_script_cora.main([*flags, "--resume", "last", "--num_of_epochs", "4", "--layer_type", "IMP1",
                               "--patience_period", "7"])
    output = capsys.readouterr().out
    assert "--layer_type changed on resume: IMP3 -> IMP1" in output and "Reached --num_of_epochs (4)" in output


@pytest.mark.slow
def test_resume_refuses_another_architecture_or_dataset(ppi_dir, cora_data_dir, isolated_outputs):
    flags = ["--data_dir", str(ppi_dir), "--num_of_epochs", "1", "--hidden_features", "8", "--no_save_binary",
             "--console_log_freq", "0"]
    training_script_ppi.main(flags)
    with pytest.raises(SystemExit) as exit_info:
        training_script_ppi.main(["--data_dir", str(ppi_dir), "--hidden_features", "16", "--resume", "last"])
    assert "--hidden_features 16 (checkpoint: 8)" in str(exit_info.value.code)

    ppi_checkpoint = str(checkpoints.resolve_resume_path("last", "ppi"))
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(["--data_dir", str(cora_data_dir), "--resume", ppi_checkpoint])
    assert "is a ppi-generated run; resume it with the script that trains ppi-generated" in str(exit_info.value.code)


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[: len(data) // 2], "not a readable GAT checkpoint"),
    (lambda data: b"PK\x03\x04 not really a checkpoint", "not a readable GAT checkpoint"),
])
@pytest.mark.slow
def test_damaged_checkpoints_give_a_clear_error(cora_data_dir, isolated_outputs, damage, message):
    flags = ["--data_dir", str(cora_data_dir), "--num_of_epochs", "2", "--no_save_binary", "--console_log_freq", "0"]
    training_script_cora.main(flags)
    path = checkpoints.resolve_resume_path("last", "cora")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main([*flags, "--resume", str(path)])
    assert str(exit_info.value.code).startswith("error: ") and message in str(exit_info.value.code)


@pytest.mark.slow
def test_binaries_and_missing_checkpoints_are_not_resumable(cora_data_dir, isolated_outputs):
    flags = ["--data_dir", str(cora_data_dir), "--num_of_epochs", "2", "--console_log_freq", "0"]
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main([*flags, "--resume", "last"])
    assert "--resume last: no cora run in" in str(exit_info.value.code)
    training_script_cora.main(flags)
    with pytest.raises(CheckpointError, match="cannot be resumed: it is a final model"):
        checkpoints.load_resumable(the_one(paths.BINARIES_DIR))


@pytest.mark.slow
def test_early_stopping_is_reported_and_recorded(cora, isolated_outputs):
    logs = []
    result = train_one_graph(dict(QUIET, num_of_epochs=500, patience_period=3, results_json=str(
        isolated_outputs / "r.json")), log=logs.append, data=cora)
    assert result["stop_reason"] == "early_stopping" and result["epochs"] < 500
    assert f"Early stopping at epoch {result['epochs']}: no validation loss or accuracy improvement for 3 epochs." \
        in logs
    assert any(line.startswith(f"The model tested is from epoch {result['best_epoch']}, the last epoch that matched "
                               f"or beat the best so far on both") for line in logs)
    assert json.loads((isolated_outputs / "r.json").read_text())["stop_reason"] == "early_stopping"
