"""--precision: mixed precision with torch.autocast (bf16, fp16 with a gradient scaler), tested on the CPU."""

import pytest
import torch

from models import GAT, LayerType
from tests.helpers import random_graph
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.runs import checkpoints
from utils.runs.checkpoints import CheckpointError, load_checkpoint
from utils.training.one_graph import train_one_graph
from utils.training.precision import Precision

QUIET = dict(console_log_freq=0, checkpoint_freq=0, last_checkpoint_seconds=0, save_binary=False)


@pytest.mark.parametrize("layer_type", list(LayerType))
@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
@pytest.mark.parametrize("sparse_input", [False, True])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_every_implementation_runs_under_cpu_autocast(layer_type, attention_type, sparse_input, dtype):
    """Forward and backward under autocast, close to float32 (the projections in low precision, the attention in
    float32: the custom Functions declare it)."""
    features, edge_index = random_graph(num_features=30)
    features = features.relu()  # mostly zero: the sparse input is worth it
    inputs = sparsify_if_mostly_zero(features) if sparse_input else features
    model = GAT(2, [4, 1], [30, 6, 3], add_skip_connection=True, dropout=0.0, layer_type=layer_type,
                attention_type=attention_type)
    reference = model(inputs, edge_index)
    with torch.autocast("cpu", dtype=dtype):
        mixed = model(inputs, edge_index)
    mixed.float().square().sum().backward()
    assert torch.isfinite(mixed.float()).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    torch.testing.assert_close(mixed.float(), reference, rtol=0.05, atol=0.05)


def test_fp32_uses_no_scaler_and_no_autocast():
    precision = Precision("fp32", "cpu")
    assert precision.scaler is None and precision.state_dict() is None
    with precision.autocast():
        assert not torch.is_autocast_enabled("cpu")
    with Precision("bf16", "cpu").autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert Precision("fp16", "cpu").scaler is not None


def test_a_bf16_run_learns_and_its_precision_is_kept_on_resume(cora, isolated_outputs):
    said = []
    first = train_one_graph(dict(QUIET, precision="bf16", num_of_epochs=20, run_name="mixed"), log=said.append,
                            data=cora)
    assert first["history"][-1]["val_acc"] > 0.5
    assert any(line.startswith("Model: ") and line.endswith("; precision bf16") for line in said), said
    last = checkpoints.last_checkpoint_path("mixed")
    assert load_checkpoint(last)["training_state"]["settings"]["precision"] == "bf16"
    resumed = train_one_graph(dict(QUIET, resume="mixed", num_of_epochs=25), log=lambda *_: None, data=cora)
    assert resumed["epochs"] == 25
    assert load_checkpoint(last)["training_state"]["settings"]["precision"] == "bf16"
    with pytest.raises(CheckpointError, match=r"--precision fp32 \(checkpoint: bf16\)"):
        train_one_graph(dict(QUIET, resume="mixed", num_of_epochs=30, precision="fp32"), log=lambda *_: None,
                        data=cora)


def test_an_fp16_run_keeps_its_gradient_scaler_in_the_checkpoint(cora, isolated_outputs):
    train_one_graph(dict(QUIET, precision="fp16", num_of_epochs=3, run_name="half"), log=lambda *_: None, data=cora)
    scaler = load_checkpoint(checkpoints.last_checkpoint_path("half"))["training_state"]["grad_scaler"]
    assert scaler["scale"] > 0 and "_growth_tracker" in scaler
