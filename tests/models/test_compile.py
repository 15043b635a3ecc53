"""torch.compile captures a warm model whole: no graph breaks, forward and backward, GAT and GATv2.

(With dense input features: torch.compile does not trace sparse tensors; on a GPU the sparse input is not needed.)"""

import pytest
import torch

from models import GAT
from tests.helpers import random_graph


def warm_model(attention_type):
    features, edge_index = random_graph(num_nodes=50, num_edges=200, num_features=8)
    torch.manual_seed(0)
    model = GAT(2, [4, 1], [8, 6, 3], dropout=0.5, attention_type=attention_type)
    model(features, edge_index)  # the first pass builds the edge layout, outside any compiled graph
    return model, features, edge_index


@pytest.mark.slow
@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_a_warm_training_step_has_no_graph_break(attention_type):
    model, features, edge_index = warm_model(attention_type)
    output_nodes = torch.arange(0, 50, 3)
    labels = torch.zeros(output_nodes.numel(), dtype=torch.long)

    def loss_of_some_nodes(features, edge_index):
        logits = model(features, edge_index, output_nodes=output_nodes)
        return torch.nn.functional.cross_entropy(logits, labels)
    loss_of_some_nodes(features, edge_index)  # (and the receptive field, once)
    for mode in (model.train, model.eval):
        mode()
        explained = torch._dynamo.explain(loss_of_some_nodes)(features, edge_index)
        assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


@pytest.mark.slow
@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_the_compiled_model_computes_what_the_eager_one_does(attention_type):
    model, features, edge_index = warm_model(attention_type)
    model.eval()
    eager = model(features, edge_index)
    eager.square().sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)(features, edge_index)
    compiled.square().sum().backward()
    torch.testing.assert_close(compiled, eager)
    for grad, expected in zip((p.grad for p in model.parameters()), eager_grads):
        torch.testing.assert_close(grad, expected)
