"""Edge features in the attention, attention as a return value, and IMP4 (the sparse-API layer), in all four
implementations: one set of parameters, the same numbers in float64."""

import pytest
import torch

from models import GAT, GATLayerImp3, GATLayerImp4, LayerType, gat_edge_index
from tests.helpers import random_graph
from utils.paths import PROJECT_ROOT
from utils.runs.checkpoints import load_checkpoint, make_checkpoint, model_from_checkpoint, save


def float64_models(attention_type, edge_dim, **kwargs):
    """One float64 model per implementation, all with IMP3's weights."""
    models = {t: GAT(2, [3, 2], [12, 5, 4], layer_type=t, attention_type=attention_type, edge_dim=edge_dim,
                     **kwargs).double().eval() for t in LayerType}
    reference = models[LayerType.IMP3].state_dict()
    for model in models.values():
        model.load_state_dict(reference)
    return models


def run_with_gradients(model, features, edge_index, edge_attr):
    """(logits, attention per layer, gradient of the input, of edge_attr, of every parameter)."""
    features = features.clone().requires_grad_(True)
    edge_attr = None if edge_attr is None else edge_attr.clone().requires_grad_(True)
    logits, attention = model(features, edge_index, edge_attr, return_attention_weights=True)
    (logits * torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).view_as(logits)).sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    return logits, attention, features.grad, None if edge_attr is None else edge_attr.grad, grads


@pytest.mark.parametrize("edge_dim", [None, 3])
@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_four_implementations_agree_in_float64_with_and_without_edge_features(attention_type, edge_dim):
    features, edge_index = random_graph(shuffle=True)  # unsorted columns: IMP3 reorders edge_attr with its edges
    features = features.double()
    edge_attr = torch.randn(edge_index.shape[1], 3, dtype=torch.float64) if edge_dim else None
    models = float64_models(attention_type, edge_dim)
    reference = run_with_gradients(models[LayerType.IMP3], features, edge_index, edge_attr)
    for layer_type in (LayerType.IMP1, LayerType.IMP2, LayerType.IMP4):
        logits, attention, input_grad, edge_grad, grads = run_with_gradients(models[layer_type], features,
                                                                             edge_index, edge_attr)
        torch.testing.assert_close(logits, reference[0], atol=1e-12, rtol=0)
        for layer_attention, reference_attention in zip(attention, reference[1]):
            assert layer_attention.shape == (edge_index.shape[1], 3 if layer_attention is attention[0] else 2)
            torch.testing.assert_close(layer_attention, reference_attention, atol=1e-12, rtol=0)
        torch.testing.assert_close(input_grad, reference[2], atol=1e-12, rtol=0)
        if edge_dim:
            assert edge_grad.abs().max() > 0
            torch.testing.assert_close(edge_grad, reference[3], atol=1e-12, rtol=0)
        assert grads.keys() == reference[4].keys()
        for name in grads:
            torch.testing.assert_close(grads[name], reference[4][name], atol=1e-12, rtol=0, msg=name)


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_edge_features_change_the_attention_and_only_with_edge_dim(attention_type):
    features, edge_index = random_graph()
    edge_attr = torch.randn(edge_index.shape[1], 4)
    layer = GATLayerImp3(12, 5, 2, edge_dim=4, attention_type=attention_type).eval()
    _, attention = layer(features, edge_index, edge_attr, return_attention_weights=True)
    _, other = layer(features, edge_index, edge_attr * 3, return_attention_weights=True)
    assert (attention - other).abs().max() > 1e-3
    names = {name for name, _ in layer.named_parameters()}
    assert "linear_proj_edge.weight" in names and (("scoring_fn_edge" in names) == (attention_type == "gat"))
    with pytest.raises(ValueError, match="edge_attr"):
        layer(features, edge_index)
    with pytest.raises(ValueError, match=r"\[E, edge_dim\]"):
        layer(features, edge_index, edge_attr[:, :3])
    with pytest.raises(ValueError, match="edge_dim"):
        GATLayerImp3(12, 5, 2)(features, edge_index, edge_attr)
    with pytest.raises(ValueError, match="edge_dim"):
        GAT(2, [2, 1], [12, 4, 3], edge_dim=0)


def test_edge_dim_adds_only_the_edge_parameters():
    """The paper's model (edge_dim=None) holds what it always held; edge_dim adds W_e (and GAT's a_edge)."""
    plain = GAT(2, [4, 1], [12, 6, 3])
    with_edges = GAT(2, [4, 1], [12, 6, 3], edge_dim=2)
    assert plain.config.edge_dim is None and with_edges.config.edge_dim == 2
    assert set(with_edges.state_dict()) - set(plain.state_dict()) == {
        f"layers.{i}.{name}" for i in range(2) for name in ("linear_proj_edge.weight", "scoring_fn_edge")}


def test_output_nodes_with_edge_features_give_the_full_pass_rows():
    features, edge_index = random_graph(shuffle=True)
    edge_attr = torch.randn(edge_index.shape[1], 2)
    model = GAT(2, [3, 1], [12, 5, 4], edge_dim=2).eval()
    rows = torch.tensor([0, 5, 7])
    torch.testing.assert_close(model(features, edge_index, edge_attr, output_nodes=rows),
                               model(features, edge_index, edge_attr)[rows], atol=0, rtol=0)


@pytest.mark.parametrize("layer_type", list(LayerType))
def test_attention_as_a_return_value_is_what_the_flag_logs(layer_type):
    features, edge_index = random_graph(shuffle=True)
    model = GAT(2, [4, 2], [12, 6, 3], layer_type=layer_type, log_attention_weights=True).eval()
    plain = model(features, edge_index)
    logits, attention = model(features, edge_index, return_attention_weights=True)
    assert torch.equal(logits, plain)
    assert [a.shape for a in attention] == [(edge_index.shape[1], 4), (edge_index.shape[1], 2)]
    for layer_attention, layer in zip(attention, model.layers):
        assert torch.equal(layer_attention.detach(), layer.attention_weights)
        sums = torch.zeros(40, layer.num_heads).index_add_(0, edge_index[1], layer_attention.detach())
        torch.testing.assert_close(sums, torch.ones_like(sums))
    # one layer alone, and through output_nodes (logits of those rows, attention of every edge)
    out, layer_attention = model.layers[0](features, edge_index, return_attention_weights=True)
    assert out.shape == (40, 24) and torch.equal(layer_attention, attention[0])
    rows = torch.tensor([1, 2, 3])
    some_logits, same_attention = model(features, edge_index, output_nodes=rows, return_attention_weights=True)
    torch.testing.assert_close(some_logits, logits[rows], atol=0, rtol=0)
    assert torch.equal(same_attention[1], attention[1])


def test_returned_attention_carries_gradients():
    """A loss on the attention itself (e.g. a regulariser) trains the scoring parameters."""
    features, edge_index = random_graph()
    for layer_type in LayerType:
        model = GAT(1, [2], [12, 3], layer_type=layer_type).train()
        _, (attention,) = model(features, edge_index, return_attention_weights=True)
        attention[:, 0].pow(2).sum().backward()
        assert model.layers[0].scoring_fn_source.grad.abs().max() > 0, layer_type


def test_imp4_builds_its_sparse_pattern_once_per_graph_and_its_scores_are_a_sparse_tensor(monkeypatch):
    from models import Graph
    from models import graph as graph_module
    built, seen = [], []
    pattern_class = graph_module.SparseAttentionPattern
    monkeypatch.setattr(graph_module, "SparseAttentionPattern", lambda *a: built.append(a) or pattern_class(*a))
    softmax = torch.sparse.softmax
    monkeypatch.setattr(torch.sparse, "softmax", lambda t, dim: seen.append((t.layout, t.shape)) or softmax(t, dim))
    features, edge_index = random_graph()
    layer = GATLayerImp4(12, 5, 3).eval()
    graph = Graph(edge_index, 40)
    layer(features, graph)
    layer(features, graph)
    assert len(built) == 1 and seen == [(torch.sparse_coo, (3, 40, 40))] * 2


def test_imp4_counts_a_duplicate_edge_once_as_the_dense_layers_do():
    features, edge_index = random_graph()
    doubled = torch.cat([edge_index, edge_index[:, :5]], dim=1)
    models = {t: GAT(1, [2], [12, 3], layer_type=t).eval() for t in (LayerType.IMP1, LayerType.IMP4)}
    models[LayerType.IMP4].load_state_dict(models[LayerType.IMP1].state_dict())
    with pytest.warns(UserWarning, match="duplicate"):  # (once: the graph is checked once)
        expected = models[LayerType.IMP1](features, doubled)
        torch.testing.assert_close(models[LayerType.IMP4](features, doubled), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(models[LayerType.IMP4](features, edge_index), expected, atol=1e-5, rtol=0)


def test_a_model_with_edge_dim_saves_and_loads_it_and_old_binaries_still_load(tmp_path):
    features, edge_index = random_graph()
    edge_index, edge_attr = gat_edge_index(edge_index, 40, edge_attr=torch.randn(edge_index.shape[1], 2))
    model = GAT(2, [2, 1], [12, 4, 3], edge_dim=2).eval()
    save(make_checkpoint(model), tmp_path / "edges.pth")
    loaded, checkpoint = model_from_checkpoint(tmp_path / "edges.pth", layer_type="IMP4")
    assert checkpoint["config"]["edge_dim"] == 2 and loaded.config.edge_dim == 2
    torch.testing.assert_close(loaded.eval()(features, edge_index, edge_attr), model(features, edge_index, edge_attr))
    old = load_checkpoint(PROJECT_ROOT / "models" / "pretrained" / "cora_gat_seed0.pth")
    assert "edge_dim" not in old["config"]
    old_model, _ = model_from_checkpoint(old)
    assert old_model.config.edge_dim is None


def test_imp4_sparse_product_has_autograds_gradients_without_its_dense_n_by_n_step():
    from models.fast_ops import sparse_dense_product
    from models.layouts import SparseAttentionPattern
    _, edge_index = random_graph(shuffle=True)
    pattern = SparseAttentionPattern(edge_index, 40, 3)
    values = torch.rand(pattern.indices.shape[1], dtype=torch.float64, requires_grad=True)
    dense = torch.randn(3, 40, 5, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 40, 5, dtype=torch.float64)
    (sparse_dense_product(values, dense, pattern) * weights).sum().backward()
    expected_values, expected_dense = values.grad, dense.grad
    values.grad = dense.grad = None
    matrix = torch.sparse_coo_tensor(pattern.indices, values, (3, 40, 40), check_invariants=False).coalesce()
    (torch.bmm(matrix, dense) * weights).sum().backward()  # autograd's own backward: dense [H, N, N], then masked
    torch.testing.assert_close(expected_values, values.grad, atol=1e-12, rtol=0)
    torch.testing.assert_close(expected_dense, dense.grad, atol=1e-12, rtol=0)
