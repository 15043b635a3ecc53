"""Data-parallel training across processes with PyTorch's own torch.distributed, launched by torchrun.

    torchrun --nproc_per_node=2 training_script_ppi.py --batch_size 2

torchrun starts one process per rank and sets RANK, LOCAL_RANK and WORLD_SIZE; `setup()` reads them and
joins the process group: NCCL when the process has a GPU (cuda:LOCAL_RANK), gloo on the CPU. Without
torchrun (no WORLD_SIZE in the environment) everything here is a no-op for one process, so the training
code reads the same either way: `ctx.sum(...)`, `ctx.is_main`, `ctx.agree_on_stop(...)`.

What is shared between processes, all through collectives of torch.distributed:
- gradients: DistributedDataParallel averages them after every backward pass;
- the sums behind every reported number (loss, true/false positives, ...): `sum`, so that each rank
  computes the metrics of the whole split;
- the decision to stop: `agree_on_stop`, so that a signal seen by any rank stops all of them at the
  same step, instead of leaving the others waiting in a collective forever.
"""

import datetime
import gc
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from utils.plumbing.arguments import SettingsError
from utils.training.setup import select_device, step_seed


class DistributedContext:
    """rank / world_size / device of this process, and the few collectives the training loop needs."""

    def __init__(self, rank=0, world_size=1, local_rank=0, device=None, cpu_group=None):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device = device
        # A gloo group beside NCCL's: what is agreed on the host (the stop signal) never waits for the GPU.
        self.cpu_group = cpu_group

    @property
    def is_distributed(self):
        return self.world_size > 1

    @property
    def is_main(self):
        """Rank 0: the only process that prints, writes checkpoints, binaries, TensorBoard and JSON."""
        return self.rank == 0

    def sum(self, values):
        """Element-wise sum over all ranks of a list of numbers; returns a list of floats (float64 on the wire)."""
        if not self.is_distributed:
            return [float(v) for v in values]
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._wire_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def agree_on_stop(self, signum):
        """The signal number any rank has received (None if none has). Every rank must call it at the same point.

        Called before every step, so it stays on the host: a CPU tensor through gloo (the process group itself on
        the CPU, a gloo side group beside NCCL on GPUs), which makes no GPU stream wait."""
        if not self.is_distributed:
            return signum
        tensor = torch.tensor([signum or 0], dtype=torch.int64)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self.cpu_group)
        return int(tensor.item()) or None

    def _wire_device(self):
        # NCCL only moves GPU tensors; gloo moves CPU tensors.
        return self.device if dist.get_backend() == "nccl" else "cpu"


def shutdown(wait_seconds=120):
    """Leave the process group, if this process joined one (the scripts call it on the way out).

    The processes first wait for each other (on gloo for at most wait_seconds, so a process whose peers
    died still exits) and free what still refers to the group. Without both, a run under torchrun on a
    loaded machine was sometimes killed at exit by `terminate called without an active exception`."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=wait_seconds))
        else:
            dist.barrier()
    except RuntimeError:
        pass  # a peer that never arrived: leave anyway
    # Free what still refers to the process group (a DistributedDataParallel wrapper left in a reference
    # cycle) now, not at interpreter exit, when freeing gloo's pending work can abort the process.
    gc.collect()
    dist.destroy_process_group()


def launched_rank():
    """This process's rank as torchrun set it (0 without torchrun), known before joining any process group."""
    return int(os.environ.get("RANK", "0"))


def setup(force_cpu=False, timeout_seconds=1800):
    """Join the process group when started by torchrun with more than one process; otherwise one process.

    Returns a DistributedContext whose device is cuda:LOCAL_RANK when CUDA is available (and not
    force_cpu), else the CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and not force_cpu
    if use_cuda and world_size > 1:
        per_node, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", world_size)), torch.cuda.device_count()
        if per_node > gpus:  # two processes on one GPU: NCCL refuses them
            raise SettingsError(f"torchrun started {per_node} processes on this machine, which has {gpus} GPU"
                                f"{'s' if gpus > 1 else ''}: start one process per GPU (--nproc_per_node={gpus}), "
                                f"or add --force_cpu to train every process on the CPU (gloo)")
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    cpu_group = None
    if world_size > 1 and not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if use_cuda else "gloo",
                                timeout=datetime.timedelta(seconds=timeout_seconds))
    if world_size > 1 and use_cuda:
        cpu_group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout_seconds))
    return DistributedContext(rank, world_size, local_rank, device, cpu_group)


def launched_world_size():
    return int(os.environ.get("WORLD_SIZE", "1"))


def newest_checkpoint(ctx, found):
    """The checkpoint every rank resumes from, where the nodes may not share a filesystem: found is this rank's
    (path, bytes, epoch) or None (nothing under that name on this node). Every rank says how far its copy got; the
    newest (lowest rank among equals) is sent as bytes, over gloo, to every rank. Returns (path, bytes), or None
    when no rank has one (then every rank raises its own CheckpointError). Every rank must call it."""
    progress = [-1.0] * ctx.world_size
    progress[ctx.rank] = float(found[2]) if found else -1.0
    progress = ctx.sum(progress)
    newest = max(progress)
    if newest < 0:
        return None
    source = progress.index(newest)
    if not ctx.is_distributed:
        return found[:2]
    mine = ctx.rank == source
    data = _broadcast_bytes(found[1] if mine else None, source, ctx.cpu_group)
    path = _broadcast_bytes(str(found[0]).encode() if mine else None, source, ctx.cpu_group)
    return path.decode(), data


def _broadcast_bytes(payload, source, group):
    """payload (bytes, on rank source; None elsewhere) on every rank: its length, then its bytes."""
    size = torch.tensor([len(payload) if payload else 0], dtype=torch.int64)
    dist.broadcast(size, src=source, group=group)
    buffer = (torch.frombuffer(bytearray(payload), dtype=torch.uint8) if payload else
              torch.empty(int(size), dtype=torch.uint8))
    dist.broadcast(buffer, src=source, group=group)
    return bytes(buffer.numpy())


# ----------------------------------------------------------------------------- what the trainers call

def config_for_rank(config, ctx):
    """Under torchrun, every rank but 0 computes the same run and writes nothing."""
    if ctx.is_main:
        return config
    return dict(config, last_checkpoint_seconds=None, checkpoint_freq=0, enable_tensorboard=False,
                save_binary=False, results_json=None)


def device_for(ctx, config, log):
    if not ctx.is_distributed:
        return select_device(config["force_cpu"], log=log)
    log(f"Data-parallel training: {ctx.world_size} processes on {ctx.device.type} "
        f"({'NCCL' if ctx.device.type == 'cuda' else 'gloo'}), each with its share of every step's batch")
    return ctx.device


def data_parallel(model, ctx, device):
    """The module the training steps call: DistributedDataParallel under torchrun, else the model itself.
    Checkpoints, evaluation and early stopping keep using the plain model (the same parameters)."""
    if not ctx.is_distributed:
        return model
    # DDP broadcasts rank 0's parameters when it wraps the model: every rank starts from the same weights.
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def seed_dropout_for_step(ctx, seed, epoch, step):
    """Under torchrun, seed this process's dropout for one training step from (seed, epoch, step, rank): each
    rank draws its own masks, and a resumed run draws the very masks it would have drawn (no random state of the
    other ranks needs saving). One process keeps its single stream, so its runs are as they always were."""
    if ctx.is_distributed:
        torch.manual_seed(step_seed(seed, epoch, step, ctx.rank, 1))


def agreement(ctx):
    return ctx.agree_on_stop if ctx.is_distributed else None


def join_step_without_data(ddp_model, num_features, device):
    """A rank with no data in this step still joins the gradient all-reduce, as DistributedDataParallel
    requires: a forward pass on a one-node graph (so DDP expects the backward) and zero gradients.
    The other ranks' gradients make the step."""
    one_node = torch.zeros(1, num_features, device=device)
    self_loop = torch.zeros(2, 1, dtype=torch.long, device=device)
    (ddp_model(one_node, self_loop).sum() * 0.0).backward()
