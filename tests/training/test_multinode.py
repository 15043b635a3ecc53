"""Several nodes under torchrun's c10d rendezvous, on one host: two launchers on 127.0.0.1, one process each, train
a graph on disk as one launcher with two processes does. Each "node" has its own output folder, as machines that
share no filesystem have: a run's checkpoint is only on the node whose process was rank 0, and --resume on both
nodes still continues it (the newest copy goes to every rank). What one host cannot show: network cost, speed-up,
and two real machines' clocks and paths."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from utils.datasets.disk_graph import write_disk_graph
from utils.paths import PROJECT_ROOT
from utils.runs.checkpoints import load_checkpoint

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")  # gloo on the CPU
SCRIPT = [str(PROJECT_ROOT / "tests" / "isolated_script.py")]


@pytest.fixture(scope="module")
def cora_on_disk(cora, tmp_path_factory):
    return write_disk_graph(cora, tmp_path_factory.mktemp("graph") / "cora")


def flags(graph, epochs):
    return ["training_script_cora.py", "--dataset_name", str(graph), "--fanouts", "5", "5", "--batch_size", "64",
            "--num_of_epochs", str(epochs), "--console_log_freq", "1", "--last_checkpoint_seconds", "0",
            "--no_save_binary", "--checkpoint_freq", "0", "--run_name", "multi"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nodes(node_dirs, args, rendezvous):
    """One torchrun per node (1 process each), meeting at the c10d rendezvous on 127.0.0.1."""
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nnodes={len(node_dirs)}", "--nproc_per_node=1",
                "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{rendezvous}", f"--rdzv_id=test{rendezvous}"]
    return [subprocess.Popen([*launcher, *SCRIPT, str(folder), *map(str, args)], cwd=PROJECT_ROOT, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
            for folder in node_dirs]


def finish(processes, timeout=240):
    outputs = []
    for process in processes:
        try:
            outputs.append((process.wait(timeout=timeout), *process.communicate()))
        except subprocess.TimeoutExpired:
            for p in processes:
                os.killpg(p.pid, signal.SIGKILL)
            pytest.fail("the nodes did not finish")
    return outputs


def run_nodes(node_dirs, args):
    outputs = finish(start_nodes(node_dirs, args, free_port()))
    assert all(code == 0 for code, _, _ in outputs), [err[-2000:] for _, _, err in outputs]
    return outputs


def checkpoints_on(node_dirs):
    return [path for folder in node_dirs for path in folder.glob("checkpoints/multi/last.pth")]


def assert_same_training(ours, theirs):
    for name, value in theirs["model_state"].items():
        torch.testing.assert_close(ours["model_state"][name], value, rtol=1e-5, atol=1e-5, msg=name)
    assert ours["training_state"]["history"] == pytest.approx(theirs["training_state"]["history"], rel=1e-5,
                                                              abs=1e-5)


@pytest.mark.slow
def test_two_nodes_train_as_one_node_with_two_processes_and_resume_across_nodes(cora_on_disk, tmp_path):
    one_node = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               *SCRIPT, str(tmp_path / "one"), *flags(cora_on_disk, 4)], cwd=PROJECT_ROOT, env=ENV,
                              capture_output=True, text=True, timeout=240)
    assert one_node.returncode == 0, one_node.stderr[-3000:]
    reference = load_checkpoint(tmp_path / "one" / "checkpoints" / "multi" / "last.pth")

    nodes = [tmp_path / "node_a", tmp_path / "node_b"]
    outputs = run_nodes(nodes, flags(cora_on_disk, 4))
    assert sum(out.count("Test accuracy") for _, out, _ in outputs) == 1  # rank 0 alone prints and writes,
    (written,) = checkpoints_on(nodes)                                      # on its own node
    assert_same_training(load_checkpoint(written), reference)

    # Stopped after 2 epochs, then resumed on both nodes: the checkpoint is on one node only.
    stopped = [tmp_path / "stop_a", tmp_path / "stop_b"]
    run_nodes(stopped, flags(cora_on_disk, 2))
    (half,) = checkpoints_on(stopped)
    assert load_checkpoint(half)["training_state"]["epoch"] == 2
    outputs = run_nodes(stopped, [*flags(cora_on_disk, 4), "--resume", "multi"])
    assert sum("Resuming run multi" in out for _, out, _ in outputs) == 1
    newest = max(checkpoints_on(stopped), key=lambda p: load_checkpoint(p)["training_state"]["epoch"])
    assert_same_training(load_checkpoint(newest), reference)


@pytest.mark.slow
def test_ctrl_c_on_one_node_stops_both_and_the_run_resumes_across_nodes(cora_on_disk, tmp_path):
    nodes = [tmp_path / "node_a", tmp_path / "node_b"]
    args = flags(cora_on_disk, 100000)
    args[args.index("--run_name"):args.index("--run_name")] = ["--patience_period", "100000"]
    processes = start_nodes(nodes, args, free_port())
    deadline = time.monotonic() + 120
    while not checkpoints_on(nodes) and time.monotonic() < deadline and all(p.poll() is None for p in processes):
        time.sleep(0.2)
    assert checkpoints_on(nodes), "no checkpoint was written"
    os.killpg(processes[1].pid, signal.SIGINT)  # Ctrl-C in the second node's terminal only
    outputs = finish(processes, timeout=120)
    stderr = "".join(err for _, _, err in outputs)
    assert stderr.count("Interrupted at epoch") == 1, stderr[-3000:]
    assert "Resume with: torchrun --nnodes=2 --nproc_per_node=1 --rdzv_backend=c10d --rdzv_endpoint=HOST:PORT" in stderr
    (last,) = checkpoints_on(nodes)
    epochs = load_checkpoint(last)["training_state"]["epoch"]

    outputs = run_nodes(nodes, [*flags(cora_on_disk, epochs + 2), "--resume", "multi"])
    assert sum(f"{epochs} epochs done" in out for _, out, _ in outputs) == 1
    assert max(load_checkpoint(p)["training_state"]["epoch"] for p in checkpoints_on(nodes)) == epochs + 2


def _newest_on_rank(rank, init_file, copies, results):
    import torch.distributed as dist

    from utils.training.distributed import DistributedContext, newest_checkpoint
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        results[rank] = newest_checkpoint(DistributedContext(rank=rank, world_size=2), copies[rank])
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("copies, expected", [
    ([None, ("b/last.pth", b"B" * 100_000, 3)], ("b/last.pth", b"B" * 100_000)),   # rank 0 has none: rank 1's
    ([("a/last.pth", b"A", 5), ("b/last.pth", b"B", 3)], ("a/last.pth", b"A")),   # the newer copy wins
    ([("a/last.pth", b"A", 3), ("b/last.pth", b"B", 3)], ("a/last.pth", b"A")),   # equals: the lowest rank's
    ([None, None], None),
])
def test_every_rank_resumes_from_the_newest_copy_any_rank_holds(tmp_path, copies, expected):
    import torch.multiprocessing as mp
    results = mp.Manager().dict()
    mp.spawn(_newest_on_rank, args=(tmp_path / "init", copies, results), nprocs=2)
    assert results[0] == results[1] == expected
