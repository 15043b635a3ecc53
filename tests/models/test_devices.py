"""Every implementation on every device present gives the CPU's numbers (float64: logits and gradients)."""

import pytest
import torch

from models import GAT, LayerType
from tests.helpers import random_graph
from utils.datasets.graph import sparsify_if_mostly_zero


def logits_and_gradients(layer_type, attention_type, device, sparse_input):
    features, edge_index = random_graph(num_nodes=40, num_edges=160, num_features=12)
    features = features.relu().double()
    inputs = sparsify_if_mostly_zero(features) if sparse_input else features
    torch.manual_seed(0)
    model = GAT(2, [4, 2], [12, 5, 3], dropout=0.0, layer_type=layer_type, attention_type=attention_type)
    model = model.double().to(device)
    logits = model(inputs.to(device), edge_index.to(device))
    logits.square().sum().backward()
    return [logits.detach().cpu()] + [p.grad.cpu() for p in model.parameters()]


@pytest.mark.parametrize("layer_type", list(LayerType))
@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_each_implementation_on_each_device_equals_imp3_on_the_cpu(layer_type, attention_type, sparse_input, device):
    reference = logits_and_gradients(LayerType.IMP3, attention_type, torch.device("cpu"), sparse_input)
    for ours, expected in zip(logits_and_gradients(layer_type, attention_type, device, sparse_input), reference):
        torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-10)
