"""The arithmetic a run trains in (--precision): float32, or mixed precision with PyTorch's torch.autocast.

    fp32   every op in float32: the paper's setup, and what every number in the results is measured with
    bf16   autocast to bfloat16 on the run's device (matrix products in bf16; softmax, sums, the loss in float32)
    fp16   autocast to float16, with a gradient scaler so that small gradients do not underflow to zero

In the layers, the projections follow autocast; the attention (the fast ops of models/fast_ops.py, which declare
their precision with torch.amp.custom_fwd) is computed in float32. Both CPUs and GPUs run all three. On a 2-core
AMD EPYC CPU (torch 2.13.0) neither is faster than fp32: 200 Cora epochs took 1.8-2.0 s in fp32, 1.9-2.0 s in
bf16, 2.1-2.2 s in fp16 (training_script_cora.py --num_of_epochs 200 --precision X, the script's clock). On a GPU
only the projections can gain (tensor cores); no GPU number has been measured.
"""

import contextlib

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """How a training step runs its forward pass, backward pass and optimizer step in the chosen precision."""

    def __init__(self, name, device):
        if name not in DTYPES:
            raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
        self.name, self.device_type, self.dtype = name, torch.device(device).type, DTYPES[name]
        # (fp16 only: bf16 has float32's range, so its gradients do not underflow)
        self.scaler = torch.amp.GradScaler(self.device_type) if name == "fp16" else None

    def autocast(self):
        """The context forward passes (training and evaluation) run in."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss):
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer):
        """optimizer.step(); with fp16, the scaler's step (skipped when a gradient overflowed) and its update."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def state_dict(self):
        """What a checkpoint keeps of it: the gradient scaler's state (fp16), else nothing."""
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state):
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
