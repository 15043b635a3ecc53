"""What every run is built from: the device, the seeds, the model from an architecture, the optimizer."""

import random

import numpy as np
import torch

from models import GAT

ATTENTION_NAMES = {"gat": "GAT", "gatv2": "GATv2"}  # how the console says them


def select_device(force_cpu=False, log=print):
    if not force_cpu and torch.cuda.is_available():
        device = torch.device("cuda")
        log(f"Using device: cuda ({torch.cuda.get_device_name(0)})")
    else:
        device = torch.device("cpu")
        reason = " (--force_cpu)" if force_cpu else "" if torch.cuda.is_available() else " (no CUDA device found)"
        log(f"Using device: cpu{reason}")
    return device


def set_seed(seed):
    """Seed Python, numpy and torch. Together with the deterministic CPU kernels used by the layers
    (index_add_, scatter_reduce), this makes CPU runs repeatable (with the same thread count)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(architecture, num_in_features, num_out_features, layer_type, log_attention_weights=False,
                attention_type="gat"):
    features = [num_in_features] + list(architecture["hidden_features"]) + [num_out_features]
    return GAT(num_of_layers=architecture["num_of_layers"], num_heads_per_layer=architecture["num_heads_per_layer"],
               num_features_per_layer=features, add_skip_connection=architecture["add_skip_connection"],
               bias=architecture["bias"], dropout=architecture["dropout"], layer_type=layer_type,
               log_attention_weights=log_attention_weights, attention_type=attention_type)


def make_optimizer(model, lr, weight_decay=0.0):
    """Adam, with PyTorch's fused kernel (one kernel per parameter instead of a dozen) where the device has
    one. Same update up to float rounding."""
    devices = {parameter.device.type for parameter in model.parameters()}
    fused = devices <= {"cpu", "cuda"}
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused or None)


def step_seed(*numbers):
    """One seed from a few small non-negative integers (seed, epoch, step, rank), distinct for distinct inputs."""
    seed = 0
    for number in numbers:
        seed = (seed * 1_000_003 + number) % 2 ** 63
    return seed


def to_device(value, device):
    """A CPU tensor or models.Graph on the run's device: to a GPU through pinned memory, without making the host
    wait."""
    if device.type == "cuda":
        return value.pin_memory().to(device, non_blocking=True)
    return value.to(device)


def silent(*args, **kwargs):
    """A log function that prints nothing (every process but rank 0 under torchrun)."""
