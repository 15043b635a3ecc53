"""torch.compile captures a warm model whole: no graph breaks, forward and backward, GAT and GATv2, given a
models.Graph whose layouts are built (a plain edge_index is checked, with values read back, on every call).

(With dense input features: torch.compile does not trace sparse tensors; on a GPU the sparse input is not needed.)"""

import pytest
import torch

from models import GAT, Graph
from tests.helpers import random_graph


def warm_model(attention_type):
    features, edge_index = random_graph(num_nodes=50, num_edges=200, num_features=8)
    torch.manual_seed(0)
    model = GAT(2, [4, 1], [8, 6, 3], dropout=0.5, attention_type=attention_type)
    graph = model.build_layouts(Graph(edge_index, 50))  # outside any compiled graph
    return model, features, graph


@pytest.mark.slow
@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_a_warm_training_step_has_no_graph_break(attention_type):
    model, features, graph = warm_model(attention_type)
    output_nodes = torch.arange(0, 50, 3)
    labels = torch.zeros(output_nodes.numel(), dtype=torch.long)
    restricted = model.build_layouts(graph.restricted_to(output_nodes, 2))

    def loss_of_some_nodes(features, graph):
        logits = model(features, graph)
        return torch.nn.functional.cross_entropy(logits, labels)
    for mode in (model.train, model.eval):
        mode()
        explained = torch._dynamo.explain(loss_of_some_nodes)(features, restricted)
        assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


@pytest.mark.slow
@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_the_compiled_model_computes_what_the_eager_one_does(attention_type):
    model, features, graph = warm_model(attention_type)
    model.eval()
    eager = model(features, graph)
    eager.square().sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)(features, graph)
    compiled.square().sum().backward()
    torch.testing.assert_close(compiled, eager)
    for grad, expected in zip((p.grad for p in model.parameters()), eager_grads):
        torch.testing.assert_close(grad, expected)
