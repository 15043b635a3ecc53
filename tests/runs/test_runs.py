"""Every run is its own: names and folders, finding runs, finished runs, divergence, outputs that cannot be
written, and a full disk while saving."""

import contextlib
import datetime
import errno
import json
import math
import shlex
import signal
import subprocess
import sys

import pytest
import torch
from conftest import the_one
from test_resume import assert_same_run, interrupt_after, run_script

import playground
import training_script_cora
from utils import paths
from utils.cli import run_list
from utils.plumbing import lock
from utils.plumbing.arguments import SettingsError
from utils.runs import checkpoints
from utils.runs import run as runs
from utils.runs.checkpoints import load_checkpoint
from utils.runs.run import TrainingDiverged
from utils.training import distributed
from utils.training.one_graph import train_one_graph

QUIET = dict(console_log_freq=0, checkpoint_freq=0, save_binary=False)


def no_log(*args):
    pass


@pytest.mark.slow
def test_two_runs_at_once_are_interrupted_and_resumed_each_by_its_own_command(cora_data_dir, tmp_path):
    # Two seeds started together in one checkout (one output folder), both stopped with Ctrl-C.
    flags = ["--data_dir", str(cora_data_dir), "--num_of_epochs", "100000", "--patience_period", "100000",
             "--console_log_freq", "1"]
    started = {seed: run_script(tmp_path / "out", "training_script_cora.py", *flags, "--seed", str(seed))
               for seed in (4, 5)}
    stops = {seed: interrupt_after(process, 5, signal.SIGINT) for seed, process in started.items()}
    commands = {}
    for seed, (_, err) in stops.items():
        assert started[seed].returncode == 130, err
        epoch = int(err.split()[3].rstrip("."))
        commands[seed] = (epoch, shlex.split(err.split("Resume with: ")[1]))
    run_names = {seed: command[-1] for seed, (_, command) in commands.items()}
    assert run_names[4] != run_names[5] and all(f"_seed{seed}_" in run_names[seed] for seed in run_names)
    assert sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir()) == sorted(run_names.values())

    # Each printed command continues its own run to epoch + 5, exactly as a run that was never interrupted.
    resumed = {seed: run_script(tmp_path / "out", *command[1:], "--num_of_epochs", str(epoch + 5),
                                "--results_json", str(tmp_path / f"resumed{seed}.json"))
               for seed, (epoch, command) in commands.items()}
    references = {seed: run_script(tmp_path / f"reference{seed}", "training_script_cora.py", *flags, "--seed",
                                   str(seed), "--num_of_epochs", str(epoch + 5), "--results_json",
                                   str(tmp_path / f"reference{seed}.json"))
                  for seed, (epoch, _) in commands.items()}
    for seed in commands:
        for process in (resumed[seed], references[seed]):
            _, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
        results = [json.loads((tmp_path / f"{kind}{seed}.json").read_text()) for kind in ("resumed", "reference")]
        assert results[0]["run_name"] == run_names[seed]
        assert_same_run(load_checkpoint(tmp_path / "out" / "checkpoints" / run_names[seed] / "last.pth"),
                        load_checkpoint(the_one(tmp_path / f"reference{seed}" / "checkpoints", "*/last.pth")),
                        *results, "acc")
        assert (tmp_path / "out" / "binaries" / f"{run_names[seed]}.pth").is_file()


def test_runs_started_in_the_same_second_with_the_same_settings_get_their_own_names(isolated_outputs):
    config = dict(dataset_name="cora", attention_type="gat", seed=0)
    now = datetime.datetime(2026, 12, 2, 1, 30, 0)
    name = runs.default_run_name(config, now)
    assert name == "cora_gat_seed0_20261202-013000"
    assert [runs.claim_run_name(name, chosen_by_user=False) for _ in range(3)] == [name, f"{name}-2", f"{name}-3"]
    assert runs.claim_run_name("mine", chosen_by_user=True) == "mine"
    with pytest.raises(SettingsError, match="--run_name mine: .* exists already; continue that run with --resume"):
        runs.claim_run_name("mine", chosen_by_user=True)
    with pytest.raises(SettingsError, match="letters, digits"):
        runs.claim_run_name("../escape", chosen_by_user=True)


@pytest.mark.slow
def test_resume_last_takes_the_newest_run_of_the_dataset_and_a_name_takes_that_run(cora, isolated_outputs):
    first = train_one_graph(dict(QUIET, num_of_epochs=2, run_name="first"), log=no_log, data=cora)
    train_one_graph(dict(QUIET, num_of_epochs=2, run_name="second"), log=no_log, data=cora)
    logs = []
    train_one_graph(dict(QUIET, resume="last", num_of_epochs=3), log=logs.append, data=cora)
    assert any(line.startswith("Resuming run second ") for line in logs), logs
    logs.clear()
    resumed = train_one_graph(dict(QUIET, resume="first", num_of_epochs=4), log=logs.append, data=cora)
    assert any(line.startswith("Resuming run first ") for line in logs) and resumed["run_name"] == "first"
    assert resumed["epochs"] == 4 and first["epochs"] == 2
    with pytest.raises(checkpoints.CheckpointError, match="no run of that name .* Runs there: first, second"):
        train_one_graph(dict(QUIET, resume="third"), log=no_log, data=cora)


@pytest.mark.slow
def test_resuming_a_finished_run_says_so_and_writes_nothing(cora_data_dir, isolated_outputs, capsys):
    flags = ["--data_dir", str(cora_data_dir), "--console_log_freq", "0"]
    training_script_cora.main([*flags, "--num_of_epochs", "3", "--enable_tensorboard"])
    training_script_cora.main([*flags, "--num_of_epochs", "300", "--patience_period", "2", "--seed", "1"])
    capsys.readouterr()
    def every_file():
        return {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in isolated_outputs.rglob("*")
                if path.is_file()}
    files = every_file()

    assert training_script_cora.main([*flags, "--resume", "last", "--seed", "1"]) is None  # exit status 0
    out = capsys.readouterr().out
    assert "is finished: early stopping at epoch" in out and "a larger --patience_period" in out, out
    name = the_one(isolated_outputs / "checkpoints", "cora_gat_seed0_*").name
    assert training_script_cora.main([*flags, "--resume", name]) is None
    out = capsys.readouterr().out
    assert f"Run {name} is finished: it trained its 3 epochs" in out and "a larger --num_of_epochs" in out, out
    assert every_file() == files


@pytest.mark.slow
def test_divergence_stops_the_run_and_keeps_the_last_finite_checkpoint(cora, isolated_outputs):
    results_path = isolated_outputs / "diverged.json"
    with pytest.raises(TrainingDiverged) as diverged:
        train_one_graph(dict(QUIET, lr=1e9, num_of_epochs=200, last_checkpoint_seconds=0.0, run_name="boom",
                            results_json=str(results_path)), log=no_log, data=cora)
    message = str(diverged.value)
    assert message.startswith("training diverged at epoch ") and "Try a lower --lr (now 1e+09)" in message
    epoch = int(message.split()[4].rstrip(":"))
    assert epoch < 200 and ("became nan" in message or "became inf" in message)

    results = json.loads(results_path.read_text())
    assert results["stop_reason"] == "diverged" and results["epochs"] == epoch
    kept = load_checkpoint(checkpoints.last_checkpoint_path("boom"))
    assert kept["training_state"]["epoch"] == epoch - 1  # the last finite state, not the diverged one
    assert all(torch.isfinite(value).all() for value in kept["model_state"].values())
    assert kept["training_state"]["stop_reason"] == "diverged"
    assert [row["status"] for row in run_list.list_runs()] == ["diverged"]
    with pytest.raises(TrainingDiverged, match="resuming it would repeat that"):
        train_one_graph(dict(QUIET, resume="boom", num_of_epochs=300), log=no_log, data=cora)
    # The name again, with a sane --lr: the refusal says the run diverged and what to do, not "--resume" it.
    with pytest.raises(SettingsError) as refused:
        train_one_graph(dict(QUIET, run_name="boom", num_of_epochs=3), log=no_log, data=cora)
    assert str(refused.value).startswith(f"--run_name boom: that run diverged at epoch {epoch} and cannot be continued")
    assert "choose another name, or delete " in str(refused.value) and "--resume" not in str(refused.value)


@pytest.mark.slow
def test_divergence_through_the_script_is_one_line_and_a_non_zero_exit(cora_data_dir, isolated_outputs, capsys):
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(["--data_dir", str(cora_data_dir), "--lr", "1e9", "--console_log_freq", "0",
                                   "--no_save_binary"])
    assert str(exit_info.value.code).startswith("error: training diverged at epoch ")


@pytest.mark.parametrize("blocker", ["binaries", "results"])
def test_outputs_that_cannot_be_written_stop_the_run_before_any_epoch(cora_data_dir, isolated_outputs, monkeypatch,
                                                                      blocker):
    from utils.training import harness
    monkeypatch.setattr(harness, "fit", lambda *a, **k: pytest.fail("training started"))
    flags = ["--data_dir", str(cora_data_dir)]
    if blocker == "binaries":
        isolated_outputs.joinpath("binaries").write_text("a file where the folder should be")
        expected = "binaries is a file, not a folder"
    else:
        isolated_outputs.joinpath("results").write_text("")
        flags += ["--results_json", str(isolated_outputs / "results" / "r.json")]
        expected = "results is a file, not a folder"
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(flags)
    message = str(exit_info.value.code)
    assert message.startswith("error: cannot write into ") and expected in message and "\n" not in message


@contextlib.contextmanager
def disk_full_for(paths_to_fail):
    """checkpoints.save raises ENOSPC, as a full disk does, while paths_to_fail(path) says so; the real
    atomic_write runs underneath, so a temp file is created and must be cleaned away."""
    real = checkpoints.atomic_write

    @contextlib.contextmanager
    def failing(path, mode="wb", exclusive=False):
        with real(path, mode, exclusive) as f:
            if paths_to_fail(path):
                raise OSError(errno.ENOSPC, "No space left on device")
            yield f

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(checkpoints, "atomic_write", failing)
        yield


@pytest.mark.slow
def test_a_full_disk_on_periodic_saves_warns_once_and_training_goes_on(cora, isolated_outputs):
    saves = []

    def fail_third_and_fourth(path):
        saves.append(path)
        return path.name == "last.pth" and len(saves) in (3, 4)

    logs = []
    with disk_full_for(fail_third_and_fourth):
        result = train_one_graph(dict(QUIET, num_of_epochs=8, last_checkpoint_seconds=0.0, run_name="full"),
                                log=logs.append, data=cora)
    warnings = [line for line in logs if line.startswith("warning:")]
    assert len(warnings) == 1 and "last.pth (No space left on device); training goes on" in warnings[0]
    assert any(line.endswith("last.pth again.") for line in logs)
    assert result["stop_reason"] == "num_of_epochs"
    folder = checkpoints.run_folder("full")
    assert sorted(p.name for p in folder.iterdir()) == ["last.pth", "results.json"]  # no temp file left behind
    assert load_checkpoint(folder / "last.pth")["training_state"]["epoch"] == 8


@pytest.mark.slow
def test_a_full_disk_on_the_final_save_keeps_the_last_good_checkpoint(cora_data_dir, isolated_outputs):
    last_saves = []

    def fail_from_epoch_6(path):  # (one save per epoch, then the final one)
        if path.name == "last.pth":
            last_saves.append(path)
        return path.name == "last.pth" and len(last_saves) >= 6

    flags = ["--data_dir", str(cora_data_dir), "--num_of_epochs", "8", "--last_checkpoint_seconds", "0",
             "--console_log_freq", "0", "--run_name", "final"]
    with disk_full_for(fail_from_epoch_6), pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(flags)
    message = str(exit_info.value.code)
    assert message.startswith("error: could not save the run's final state to ") and "No space left" in message
    assert "holds epoch 5" in message and "The kept model was saved" in message
    folder = checkpoints.run_folder("final")
    assert sorted(p.name for p in folder.iterdir()) == ["last.pth", "results.json"]
    assert load_checkpoint(folder / "last.pth")["training_state"]["epoch"] == 5  # whole, and not replaced
    assert (paths.BINARIES_DIR / "final.pth").is_file()


def test_the_run_list_says_what_each_run_did(cora, isolated_outputs, capsys):
    train_one_graph(dict(QUIET, num_of_epochs=3, save_binary=True, run_name="done"), log=no_log, data=cora)
    v2 = train_one_graph(dict(QUIET, num_of_epochs=2, attention_type="gatv2", seed=3, run_name="v2",
                              precision="bf16"), log=no_log, data=cora)  # (no binary: its test metric is listed too)
    train_one_graph(dict(QUIET, num_of_epochs=2, run_name="untested", should_test=False), log=no_log, data=cora)
    rows = run_list.list_runs()[:2]
    assert [(r["name"], r["dataset"], r["attention"], r["seed"], r["epochs"], r["status"]) for r in rows] == [
        ("done", "cora", "gat", 0, 3, "finished"), ("v2", "cora", "gatv2", 3, 2, "finished")]
    assert 0 < rows[0]["test"] <= 1 and rows[1]["test"] == v2["test_acc"] and 0 < rows[1]["best_val"] <= 1
    assert [row["precision"] for row in rows] == ["fp32", "bf16"] and run_list.list_runs()[2]["test"] is None
    assert run_list.list_runs("ppi") == []
    run_list.main([])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["name", "dataset", "layer", "attention", "seed", "model", "split", "sampling",
                                "precision", "epochs", "status", "best_val", "test"]
    assert table[1].split()[:5] == ["done", "cora", "IMP3", "gat", "0"]
    assert "8x8 1, dropout 0.6  public  full-batch  fp32       3       finished" in table[1]
    run_list.main(["--dataset_name", "ppi"])
    said = capsys.readouterr().out
    assert said.startswith("No ppi runs in ") and "there are runs of cora (python -m utils.runs" in said


@pytest.mark.slow
def test_visualize_gat_takes_a_run_name_and_says_which_binary_it_chose(cora, cora_data_dir, isolated_outputs, capsys):
    train_one_graph(dict(QUIET, num_of_epochs=2, save_binary=True, run_name="look"), log=no_log, data=cora)
    common = ["--visualization_type", "entropy", "--data_dir", str(cora_data_dir), "--output_dir",
              str(isolated_outputs / "figures")]
    playground.main(["visualize_gat", "--model_name", "look", *common])
    playground.main(["visualize_gat", *common])
    out = capsys.readouterr().out
    assert "Using the newest model: " in out and "look.pth (pick another with --model_name RUN" in out


def test_a_bad_flag_prints_one_usage_line_not_the_flag_list(capsys):
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(["--lr", "abc"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("usage: ") and err[0].endswith(" [options]   (--help lists them all)")
    assert err[1].endswith(": error: argument --lr: must be a number, got 'abc'")


@pytest.mark.slow
def test_a_resumed_run_takes_its_device_setting_from_the_checkpoint(cora, isolated_outputs, monkeypatch):
    asked = []
    real_setup = distributed.setup
    monkeypatch.setattr(distributed, "setup", lambda force_cpu=False: asked.append(force_cpu) or real_setup(force_cpu))
    train_one_graph(dict(QUIET, num_of_epochs=1, force_cpu=True, run_name="cpu"), log=no_log, data=cora)
    train_one_graph(dict(QUIET, num_of_epochs=2, resume="cpu"), log=no_log, data=cora)
    assert asked == [True, True]


@pytest.mark.slow
def test_interrupted_runs_are_listed_as_interrupted(cora, isolated_outputs, monkeypatch):
    import os

    from utils.plumbing.signals import TrainingInterrupted
    from utils.training import harness
    from utils.training import loop as training_loop
    real_fit = training_loop.fit

    def fit_with_ctrl_c(model, optimizer, train_one_epoch, *args, **kwargs):
        def train_then_interrupt(epoch, check_stop):
            if epoch == 4:  # Ctrl-C during epoch 4: full-batch training stops at the end of that epoch
                os.kill(os.getpid(), signal.SIGINT)
            return train_one_epoch(epoch, check_stop)
        return real_fit(model, optimizer, train_then_interrupt, *args, **kwargs)

    monkeypatch.setattr(harness, "fit", fit_with_ctrl_c)
    with pytest.raises(TrainingInterrupted):
        train_one_graph(dict(QUIET, num_of_epochs=50, run_name="stopped"), log=no_log, data=cora)
    assert [(r["name"], r["status"], r["epochs"]) for r in run_list.list_runs()] == [("stopped", "interrupted", 4)]
    assert not math.isnan(run_list.list_runs()[0]["best_val"])


@pytest.mark.slow
def test_checkpoints_from_before_runs_had_names_still_resume(cora, isolated_outputs):
    # What the previous version wrote: models/checkpoints/gat_cora_last.pth, no run name in it.
    train_one_graph(dict(QUIET, num_of_epochs=3, run_name="new"), log=no_log, data=cora)
    checkpoint = load_checkpoint(checkpoints.last_checkpoint_path("new"))
    del checkpoint["training_state"]["run_name"], checkpoint["training_state"]["settings"]["run_name"]
    legacy = paths.CHECKPOINTS_DIR / "gat_cora_last.pth"
    checkpoints.save(checkpoint, legacy)
    (checkpoints.last_checkpoint_path("new")).unlink()
    logs = []
    resumed = train_one_graph(dict(QUIET, resume="last", num_of_epochs=5), log=logs.append, data=cora)
    assert any("Resuming run (a checkpoint of the older unnamed layout" in line for line in logs), logs
    assert resumed["epochs"] == 5 and resumed["run_name"].startswith("cora_gat_seed0_")
    assert load_checkpoint(checkpoints.last_checkpoint_path(resumed["run_name"]))["training_state"]["epoch"] == 5
    assert load_checkpoint(legacy)["training_state"]["epoch"] == 3  # the old file is left as it was


def test_a_run_that_saved_nothing_does_not_keep_its_name(cora, cora_data_dir, isolated_outputs):
    # Diverged before its first save: no folder is left to block the name.
    with pytest.raises(TrainingDiverged):
        train_one_graph(dict(QUIET, lr=1e9, num_of_epochs=50, run_name="boom", last_checkpoint_seconds=3600.0),
                        log=no_log, data=cora)
    assert not checkpoints.run_folder("boom").exists()
    train_one_graph(dict(QUIET, num_of_epochs=2, run_name="boom"), log=no_log, data=cora)
    assert load_checkpoint(checkpoints.last_checkpoint_path("boom"))["training_state"]["epoch"] == 2

    # Killed before its first save: its folder holds only the lock file of a process that is gone.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = checkpoints.run_folder("killed")
    folder.mkdir(parents=True)
    (folder / lock.LOCK_NAME).write_text(dead.stdout)
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(["--data_dir", str(cora_data_dir), "--resume", "killed"])
    assert "run killed saved nothing before it stopped" in str(exit_info.value.code)
    assert "--run_name killed" in str(exit_info.value.code)
    train_one_graph(dict(QUIET, num_of_epochs=2, run_name="killed"), log=no_log, data=cora)
    assert sorted(p.name for p in folder.iterdir()) == ["last.pth", "results.json"]  # (no lock file: it went)


@pytest.mark.slow
def test_a_run_being_trained_cannot_be_resumed_by_a_second_process(cora, cora_data_dir, isolated_outputs):
    train_one_graph(dict(QUIET, num_of_epochs=2, run_name="shared"), log=no_log, data=cora)
    first = run_script(isolated_outputs, "training_script_cora.py", "--data_dir", str(cora_data_dir), "--resume",
                       "shared", "--num_of_epochs", "100000", "--patience_period", "100000", "--console_log_freq", "1",
                       "--last_checkpoint_seconds", "0")
    try:
        for line in first.stdout:
            if line.startswith("epoch"):
                break
        with pytest.raises(SystemExit) as exit_info:
            training_script_cora.main(["--data_dir", str(cora_data_dir), "--resume", "shared"])
        message = str(exit_info.value.code)
        assert message == (f"error: run shared is being trained right now by another process (pid {first.pid}); "
                           f"wait for it to end (or stop it with Ctrl-C) before resuming it, or start a new run")
        assert [row["status"] for row in run_list.list_runs()] == [f"training (pid {first.pid})"]
    finally:
        first.kill()  # as kill -9 would: its lock file stays, and blocks nothing
        first.communicate(timeout=60)
    assert (checkpoints.run_folder("shared") / lock.LOCK_NAME).is_file()
    assert [row["status"] for row in run_list.list_runs()] == ["killed"]
    epochs = load_checkpoint(checkpoints.last_checkpoint_path("shared"))["training_state"]["epoch"]
    resumed = train_one_graph(dict(QUIET, resume="shared", num_of_epochs=epochs + 1), log=no_log, data=cora)
    assert resumed["epochs"] == epochs + 1


def test_a_resume_that_fails_before_training_leaves_the_run_as_it_was(tmp_path, isolated_outputs):
    """The run's data has gone: the resume says so in one line, and the run is not left looking killed (the lock
    is taken only when the data and the model are ready)."""
    from helpers import write_own_graph
    graph = write_own_graph(tmp_path / "mine.npz")
    flags = ["--dataset_name", str(graph), "--split", "random", "--train_per_class", "5", "--val_per_class", "5",
             "--console_log_freq", "0", "--checkpoint_freq", "0"]
    training_script_cora.main([*flags, "--num_of_epochs", "2", "--run_name", "gone"])
    graph.rename(tmp_path / "moved.npz")
    with pytest.raises(SystemExit) as exit_info:
        training_script_cora.main(["--resume", "gone", "--num_of_epochs", "4"])
    assert "mine.npz does not exist" in str(exit_info.value.code)
    assert not (checkpoints.run_folder("gone") / lock.LOCK_NAME).exists()
    assert [row["status"] for row in run_list.list_runs()] == ["finished"]


def test_a_run_saved_with_flags_that_did_nothing_still_resumes_and_predicts(cora, cora_data_dir, isolated_outputs,
                                                                            tmp_path):
    """Runs saved before --train_per_class (public split) and --batch_size (no --fanouts) were refused kept those
    values; they meant nothing there, and they do not block the run now."""
    train_one_graph(dict(QUIET, num_of_epochs=2, run_name="old"), log=no_log, data=cora)
    path = checkpoints.last_checkpoint_path("old")
    saved = torch.load(path, weights_only=True)
    saved["training_state"]["settings"].update(train_per_class=5, batch_size=16)
    torch.save(saved, path)
    resumed = train_one_graph(dict(QUIET, resume="old", num_of_epochs=3, save_binary=True), log=no_log, data=cora)
    assert resumed["epochs"] == 3 and resumed["split"] == {"split": "public"}
    output = tmp_path / "old.csv"
    playground.main(["predict", "--model_name", "old", "--data_dir", str(cora_data_dir), "--output", str(output)])
    assert sum(line.split(",")[1] == "test" for line in output.read_text().splitlines()) == 1000
