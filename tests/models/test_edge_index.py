"""The edge_index contract every implementation checks once per graph, and gat_edge_index, which makes any edge
list fit it."""

import warnings

import pytest
import torch

from models import GAT, GATLayerImp3, Graph, LayerType, check_edge_index, gat_edge_index
from models.gat_layers import LAYER_CLASSES
from tests.helpers import random_graph
from utils.datasets.graph import build_edge_index


@pytest.mark.parametrize("layer_type", list(LayerType))
def test_every_implementation_refuses_ids_out_of_range_and_nodes_without_incoming_edges(layer_type):
    layer = LAYER_CLASSES[layer_type](3, 2, 1)
    features = torch.randn(3, 3)
    for edge_index, expected in ((torch.tensor([[0, 1, 2, 3], [0, 1, 2, 2]]), "outside 0..2"),
                                 (torch.tensor([[0, 1, -1], [0, 1, 2]]), "outside 0..2"),
                                 (torch.tensor([[0, 1, 1], [0, 1, 1]]), "nodes \\[2\\] have no incoming edge")):
        with pytest.raises(ValueError, match=expected) as refused:
            layer(features, edge_index)
        message = str(refused.value)  # one line that says what to do
        assert "\n" not in message and ("gat_edge_index" in message or "fix the ids" in message)


@pytest.mark.parametrize("layer_type", list(LayerType))
def test_a_graph_warns_about_duplicate_edges_once_at_the_callers_line(layer_type):
    features, edge_index = random_graph()
    doubled = torch.cat([edge_index, edge_index[:, :3]], dim=1)
    layer = LAYER_CLASSES[layer_type](12, 4, 2).eval()
    with pytest.warns(UserWarning, match="3 duplicate edges") as caught:
        graph = Graph(doubled, 40)
        layer(features, graph)
        layer(features, graph)  # the same graph: checked once, when it was built
    assert len([w for w in caught if "duplicate" in str(w.message)]) == 1
    assert caught[0].filename == __file__  # it points at the line that built the graph, not into models/
    with pytest.warns(UserWarning, match="holds a duplicate edge,") as caught:
        layer(features, torch.cat([edge_index, edge_index[:, :1]], dim=1))  # a plain edge_index: checked per call
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(features, edge_index)  # a clean graph: no warning


def test_a_graph_is_checked_once_and_a_plain_edge_index_on_every_call(monkeypatch):
    from models import graph as graph_module
    calls = []
    monkeypatch.setattr(graph_module, "check_edge_index", lambda *args: calls.append(args))
    features, edge_index = random_graph()
    layer = GATLayerImp3(12, 4, 2)
    graph = Graph(edge_index, 40)
    for _ in range(3):
        layer(features, graph).sum().backward()
    assert len(calls) == 1
    for _ in range(2):
        layer(features, edge_index)
    assert len(calls) == 3


def test_a_models_layers_check_a_graph_once():
    features, edge_index = random_graph()
    doubled = torch.cat([edge_index, edge_index[:, :2]], dim=1)
    with pytest.warns(UserWarning, match="2 duplicate edges") as caught:
        GAT(3, [2, 2, 1], [12, 4, 4, 3]).eval()(features, doubled)
    assert len([w for w in caught if "duplicate" in str(w.message)]) == 1


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
@pytest.mark.parametrize("layer_type", list(LayerType))
def test_an_edge_index_edited_in_place_is_never_answered_from_the_old_graph(layer_type, attention_type):
    # A user perturbing edges through .numpy() or .data changes the tensor without a version bump. A plain
    # edge_index is laid out anew on every call, so the answer is the edited graph's; a Graph owns a copy of its
    # edge_index, so editing the tensor it was built from changes nothing in it.
    features, edge_index = random_graph()
    model = GAT(2, [2, 1], [12, 4, 3], layer_type=layer_type, attention_type=attention_type).eval()
    graph = Graph(edge_index, 40)
    before = model(features, edge_index)
    assert torch.equal(model(features, graph), before)
    relabelled = torch.randperm(40, generator=torch.Generator().manual_seed(0))[edge_index]  # another valid graph
    edge_index.numpy()[:] = relabelled.numpy()  # in place, without a version bump
    after = model(features, edge_index)
    torch.testing.assert_close(after, model(features, Graph(relabelled, 40)), rtol=0, atol=0)
    assert (after - before).abs().max() > 1e-3
    assert torch.equal(model(features, graph), before)  # the Graph kept its own copy


def test_gat_edge_index_adds_self_loops_removes_duplicates_and_sorts_by_target():
    edge_index = torch.tensor([[1, 1, 2, 0, 3], [0, 0, 1, 1, 3]])  # a duplicate, an existing self loop (3 -> 3)
    fitted = gat_edge_index(edge_index, 4)
    assert fitted.tolist() == [[0, 1, 0, 1, 2, 2, 3], [0, 0, 1, 1, 1, 2, 3]]
    check_edge_index(fitted, 4)
    undirected = gat_edge_index(edge_index, 4, undirected=True)
    pairs = set(map(tuple, undirected.t().tolist()))
    assert {(0, 1), (1, 0), (1, 2), (2, 1), (0, 0), (3, 3)} <= pairs and len(pairs) == undirected.shape[1] == 8


def test_gat_edge_index_undirected_is_what_the_loaders_build():
    generator = torch.Generator().manual_seed(0)
    sources, targets = torch.randint(0, 30, (2, 90), generator=generator)
    expected = build_edge_index(sources.numpy(), targets.numpy(), 30)
    assert torch.equal(gat_edge_index(torch.stack([sources, targets]), 30, undirected=True), expected)


def test_self_loops_get_the_mean_of_the_nodes_incoming_edge_features():
    """As PyG's add_self_loops(fill_value="mean"): a node's new self loop gets the mean of its incoming edges'
    features; a node without any gets zeros; duplicates become one edge with their mean; a self loop that was
    already there keeps its own features."""
    edge_index = torch.tensor([[1, 2, 2, 0, 3], [0, 0, 0, 1, 3]])
    edge_attr = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 9.0]])
    fitted, fitted_attr = gat_edge_index(edge_index, 5, edge_attr=edge_attr)
    by_edge = {tuple(edge): attr.tolist() for edge, attr in zip(fitted.t().tolist(), fitted_attr)}
    assert by_edge == {
        (0, 0): [2.5, 3.5],  # mean of 1 -> 0 ([1, 2]) and the merged duplicate 2 -> 0 ([4, 5])
        (1, 0): [1.0, 2.0], (2, 0): [4.0, 5.0],
        (0, 1): [7.0, 8.0], (1, 1): [7.0, 8.0],
        (2, 2): [0.0, 0.0],  # no incoming edge
        (3, 3): [9.0, 9.0],  # its own
        (4, 4): [0.0, 0.0]}
    model = GAT(1, [2], [3, 2], edge_dim=2)
    assert model(torch.randn(5, 3), fitted, fitted_attr).shape == (5, 2)


def test_gat_edge_index_refuses_what_it_cannot_fix():
    with pytest.raises(ValueError, match="outside 0..3"):
        gat_edge_index(torch.tensor([[0, 4], [1, 1]]), 4)
    with pytest.raises(ValueError, match="edge_attr"):
        gat_edge_index(torch.tensor([[0, 1], [1, 1]]), 4, edge_attr=torch.ones(3, 2))


@pytest.mark.parametrize("layer_type", list(LayerType))
def test_features_of_the_wrong_dtype_or_width_are_one_line_before_any_work(layer_type):
    features, edge_index = random_graph()
    edge_index, edge_attr = gat_edge_index(edge_index, 40, edge_attr=torch.rand(edge_index.shape[1], 2))
    model = GAT(2, [2, 1], [12, 4, 3], layer_type=layer_type, edge_dim=2)
    for bad_features, bad_edge_attr, expected in (
            (features.double(), edge_attr, "node_features are torch.float64 but the layer's weights are torch.float32"),
            (features[:, :5], edge_attr, r"node_features must be \[N, 12\] for this layer"),
            (features, edge_attr.double(), "edge_attr is torch.float64 but the layer's weights are torch.float32"),
            (features, edge_attr[:, :1], r"edge_attr must be \[E, edge_dim\]")):
        with pytest.raises(ValueError, match=expected) as refused:
            model(bad_features, edge_index, bad_edge_attr)
        assert "\n" not in str(refused.value)
    assert model.double()(features.double(), edge_index, edge_attr.double()).dtype == torch.float64
