"""Data-parallel training under torchrun: 2 gloo processes on the CPU against one process.

Each test launches `python -m torch.distributed.run` (torchrun) on tests/isolated_script.py, so the
scripts run exactly as a user starts them, with their outputs moved out of the checkout."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import the_one

from utils.datasets.ppi_synthetic import write_synthetic_ppi
from utils.paths import PROJECT_ROOT
from utils.runs.checkpoints import load_checkpoint
from utils.training.many_graphs import train_many_graphs

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def torchrun(output_dir, *args, **kwargs):
    command = [*TORCHRUN, str(PROJECT_ROOT / "tests" / "isolated_script.py"), str(output_dir), *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")  # gloo on the CPU
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=240, **kwargs)


@pytest.fixture(scope="module")
def ppi_dir(tmp_path_factory):
    # 5 training graphs with --batch_size 2: the last step has one graph, so one process sits it out.
    folder = tmp_path_factory.mktemp("ppi_data")
    write_synthetic_ppi(folder / "ppi", graphs_per_split=(5, 2, 2), nodes_per_graph=(30, 40))
    return folder


PPI_FLAGS = ["--batch_size", "2", "--num_of_epochs", "3", "--hidden_features", "8", "--console_log_freq", "1",
             "--last_checkpoint_seconds", "0", "--no_save_binary", "--checkpoint_freq", "0"]


@pytest.mark.slow
def test_two_processes_make_the_same_steps_as_one(ppi_dir, tmp_path, isolated_outputs):
    run = torchrun(tmp_path / "ddp", "training_script_ppi.py", "--data_dir", ppi_dir, *PPI_FLAGS,
                   "--results_json", tmp_path / "ddp.json")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("Test micro-F1") == 1            # only rank 0 prints
    assert "Data-parallel training: 2 processes on cpu (gloo)" in run.stdout
    ddp = load_checkpoint(the_one(tmp_path / "ddp" / "checkpoints", "*/last.pth"))

    single = train_many_graphs(dict(data_dir=str(ppi_dir), batch_size=2, num_of_epochs=3, hidden_features=8,
                                console_log_freq=0, last_checkpoint_seconds=0, save_binary=False, checkpoint_freq=0,
                                progress_bar=False), log=lambda *_: None)
    one = load_checkpoint(the_one(isolated_outputs / "checkpoints", "*/last.pth"))
    for name, value in one["model_state"].items():
        torch.testing.assert_close(ddp["model_state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    for ours, theirs in zip(ddp["training_state"]["history"], one["training_state"]["history"]):
        assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-5)   # losses and micro-F1 of whole splits
    results = json.loads((tmp_path / "ddp.json").read_text())
    assert results["processes"] == 2 and results["test_micro_f1"] == pytest.approx(single["test_micro_f1"], abs=1e-4)
    assert sorted(p.relative_to(tmp_path / "ddp").as_posix() for p in (tmp_path / "ddp").rglob("*") if p.is_file()) == [
        f"checkpoints/{results['run_name']}/last.pth", f"checkpoints/{results['run_name']}/results.json"]


@pytest.mark.slow
def test_bad_settings_under_torchrun_are_refused(ppi_dir, tmp_path, cora_data_dir):
    run = torchrun(tmp_path, "training_script_ppi.py", "--data_dir", ppi_dir, "--batch_size", "3")
    assert run.returncode != 0 and "error: --batch_size 3 does not split evenly over 2 processes" in run.stderr
    run = torchrun(tmp_path, "training_script_cora.py", "--data_dir", cora_data_dir)
    assert run.returncode != 0 and "error: full-batch training of one graph cannot be split" in run.stderr


@pytest.mark.slow
def test_sampled_cora_trains_under_torchrun(cora_data_dir, tmp_path):
    run = torchrun(tmp_path / "out", "training_script_cora.py", "--data_dir", cora_data_dir, "--fanouts", "5", "5",
                   "--batch_size", "70", "--num_of_epochs", "3", "--console_log_freq", "1", "--no_save_binary",
                   "--results_json", tmp_path / "cora.json")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("epoch     3") == 1
    assert json.loads((tmp_path / "cora.json").read_text())["processes"] == 2


@pytest.mark.slow
def test_ctrl_c_under_torchrun_stops_every_process_once(ppi_dir, tmp_path):
    output_dir = tmp_path / "out"
    command = [*TORCHRUN, str(PROJECT_ROOT / "tests" / "isolated_script.py"), str(output_dir), "training_script_ppi.py",
               "--data_dir", str(ppi_dir), "--batch_size", "2", "--num_of_epochs", "100000", "--hidden_features", "8",
               "--last_checkpoint_seconds", "0", "--no_save_binary", "--checkpoint_freq", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")  # gloo on the CPU
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(output_dir.glob("checkpoints/*/last.pth")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    last = the_one(output_dir / "checkpoints", "*/last.pth")
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    try:
        _, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("torchrun did not stop after Ctrl-C")
    assert stderr.count("Interrupted at epoch") == 1, stderr[-3000:]
    assert "Resume with: torchrun --nproc_per_node=2 training_script_ppi.py" in stderr
    epoch = load_checkpoint(last)["training_state"]["epoch"]
    assert f"Interrupted at epoch {epoch}." in stderr


def assert_resumed_run_equals_whole_run(tmp_path, flags):
    """flags (with --num_of_epochs 4) run whole, and run for 2 epochs then resumed to 4: the same weights and history."""
    assert torchrun(tmp_path / "whole", *flags).returncode == 0
    half = list(flags)
    half[half.index("--num_of_epochs") + 1] = "2"
    assert torchrun(tmp_path / "split", *half).returncode == 0
    run = torchrun(tmp_path / "split", *flags, "--resume", "last")
    assert run.returncode == 0 and "2 epochs done" in run.stdout, run.stderr[-3000:]
    whole = load_checkpoint(the_one(tmp_path / "whole" / "checkpoints", "*/last.pth"))
    resumed = load_checkpoint(the_one(tmp_path / "split" / "checkpoints", "*/last.pth"))
    for name, value in whole["model_state"].items():
        assert torch.equal(resumed["model_state"][name], value), name
    assert resumed["training_state"]["history"] == whole["training_state"]["history"]


@pytest.mark.slow
def test_resume_under_torchrun_continues_exactly(ppi_dir, tmp_path):
    flags = ["training_script_ppi.py", "--data_dir", ppi_dir, *PPI_FLAGS]
    flags[flags.index("--num_of_epochs") + 1] = "4"
    assert_resumed_run_equals_whole_run(tmp_path, flags)


@pytest.mark.slow
def test_sampled_cora_resumed_under_torchrun_equals_an_uninterrupted_run(cora_data_dir, tmp_path):
    """Each rank's dropout is seeded per step from (seed, epoch, step, rank): the ranks draw different masks, and a
    run stopped after epoch 2 and resumed makes the very steps of a run never stopped."""
    flags = ["training_script_cora.py", "--data_dir", cora_data_dir, "--fanouts", "5", "5", "--batch_size", "64",
             "--num_of_epochs", "4", "--console_log_freq", "1", "--last_checkpoint_seconds", "0", "--no_save_binary",
             "--checkpoint_freq", "0"]
    assert_resumed_run_equals_whole_run(tmp_path, flags)


def test_every_rank_draws_its_own_dropout_masks_and_one_process_keeps_its_stream():
    from utils.training.distributed import DistributedContext, seed_dropout_for_step
    masks = []
    for rank in (0, 1):
        seed_dropout_for_step(DistributedContext(rank=rank, world_size=2), seed=3, epoch=1, step=0)
        masks.append(torch.rand(8))
    assert not torch.equal(masks[0], masks[1])
    seed_dropout_for_step(DistributedContext(rank=1, world_size=2), seed=3, epoch=1, step=0)
    assert torch.equal(torch.rand(8), masks[1])                   # the same (seed, epoch, step, rank): the same masks
    torch.manual_seed(5)
    expected = torch.rand(8)
    torch.manual_seed(5)
    seed_dropout_for_step(DistributedContext(), seed=3, epoch=1, step=0)  # one process: nothing changes
    assert torch.equal(torch.rand(8), expected)


def test_more_processes_than_gpus_is_refused_in_one_line(monkeypatch):
    from utils.plumbing.arguments import SettingsError
    from utils.training import distributed
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(SettingsError, match=r"started 2 processes on this machine, which has 1 GPU: .*--force_cpu"):
        distributed.setup()


def test_a_signal_during_the_agreement_counts_at_the_next_point_on_every_rank():
    """Ctrl-C reaches all ranks at once, often while they sit in the stop-agreement all-reduce. A rank
    must not stop on a signal the others did not agree on, or they wait for it in a collective forever."""
    from utils.plumbing.signals import DeferredSignals
    offered = []

    def agree_while_the_signal_lands(signum):  # stands in for the all-reduce of the other ranks' signals
        offered.append(signum)
        if len(offered) == 1:
            signals.received = signal.SIGINT  # the handler runs as the collective returns, after the vote
            return None                        # ...which, across ranks, found no signal
        return signum

    signals = DeferredSignals(agree_while_the_signal_lands)
    assert signals.stop_requested() is None                  # this point: nobody had a signal to offer
    assert signals.stop_requested() == signal.SIGINT          # next point: offered, agreed, stops everywhere
    assert offered == [None, signal.SIGINT]
