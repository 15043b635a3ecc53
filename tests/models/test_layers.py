"""The four GAT implementations: one interface, one set of parameters, the same numbers."""

import pytest
import torch

from models import GAT, GATConfig, Graph, LayerType, edge_softmax
from models.gat_layers import GATLayerImp1, GATLayerImp3
from tests.helpers import random_graph
from utils.datasets.graph import sparsify_if_mostly_zero


def make_models(config, **kwargs):
    """One model per layer type, all holding the IMP3 model's weights."""
    models = {layer_type: GAT.from_config(config, layer_type=layer_type, **kwargs) for layer_type in LayerType}
    reference = models[LayerType.IMP3].state_dict()
    for model in models.values():
        model.load_state_dict(reference)
        model.eval()
    return models


def outputs_and_gradients(model, features, edge_index):
    features = features.clone().requires_grad_(True)
    logits = model(features, edge_index)
    (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    grads["input"] = features.grad
    return logits.detach(), grads


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
@pytest.mark.parametrize("skip", [False, True])
def test_all_implementations_agree_on_logits_gradients_and_attention(skip, attention_type):
    features, edge_index = random_graph()
    config = GATConfig(3, [4, 3, 2], [12, 6, 12, 5], add_skip_connection=skip, attention_type=attention_type)
    models = make_models(config, log_attention_weights=True)
    reference_logits, reference_grads = outputs_and_gradients(models[LayerType.IMP3], features, edge_index)
    assert reference_logits.shape == (40, 5)
    for layer_type in (LayerType.IMP1, LayerType.IMP2, LayerType.IMP4):
        logits, grads = outputs_and_gradients(models[layer_type], features, edge_index)
        torch.testing.assert_close(logits, reference_logits, atol=1e-5, rtol=0)
        assert grads.keys() == reference_grads.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], reference_grads[name], atol=1e-4, rtol=0, msg=name)
        for layer, reference_layer in zip(models[layer_type].layers, models[LayerType.IMP3].layers):
            assert layer.attention_weights.shape == (edge_index.shape[1], layer.num_heads)
            torch.testing.assert_close(layer.attention_weights, reference_layer.attention_weights, atol=1e-6, rtol=0)


@pytest.mark.slow
def test_implementations_agree_on_real_cora(cora):
    config = GATConfig(2, [8, 1], [cora.node_features.shape[1], 8, cora.num_classes], add_skip_connection=False)
    models = make_models(config)
    reference_logits, reference_grads = outputs_and_gradients(models[LayerType.IMP3], cora.node_features,
                                                              cora.edge_index)
    for layer_type in (LayerType.IMP1, LayerType.IMP2, LayerType.IMP4):
        logits, grads = outputs_and_gradients(models[layer_type], cora.node_features, cora.edge_index)
        torch.testing.assert_close(logits, reference_logits, atol=1e-5, rtol=0)
        for name in reference_grads:
            torch.testing.assert_close(grads[name], reference_grads[name], atol=1e-4, rtol=0, msg=name)


def test_edge_order_does_not_matter_and_attention_stays_aligned():
    features, edge_index = random_graph()
    permutation = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(3))
    shuffled = edge_index[:, permutation]
    models = make_models(GATConfig(2, [4, 2], [12, 6, 3]), log_attention_weights=True)
    sorted_logits, sorted_grads = outputs_and_gradients(models[LayerType.IMP3], features, edge_index)
    sorted_attention = [layer.attention_weights for layer in models[LayerType.IMP3].layers]
    for layer_type in (LayerType.IMP3, LayerType.IMP1, LayerType.IMP4):
        models[layer_type].zero_grad()
        logits, grads = outputs_and_gradients(models[layer_type], features, shuffled)
        torch.testing.assert_close(logits, sorted_logits, atol=1e-5, rtol=0)
        for name in grads:
            torch.testing.assert_close(grads[name], sorted_grads[name], atol=1e-4, rtol=0)
        for layer, reference in zip(models[layer_type].layers, sorted_attention):
            torch.testing.assert_close(layer.attention_weights, reference[permutation], atol=1e-6, rtol=0)


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_state_dicts_are_identical_across_implementations(attention_type):
    config = GATConfig(2, [8, 1], [10, 8, 3], attention_type=attention_type)
    state_dicts = [GAT.from_config(config, layer_type=t).state_dict() for t in LayerType]
    for state_dict in state_dicts[1:]:
        assert {k: v.shape for k, v in state_dict.items()} == {k: v.shape for k, v in state_dicts[0].items()}
    assert ("layers.0.linear_proj_target.weight" in state_dicts[0]) == (attention_type == "gatv2")


def test_gatv2_agrees_in_float64_on_wildly_different_score_ranges():
    """Neighbourhoods whose scores lie thousands apart: every implementation normalises per target."""
    features, edge_index = random_graph(num_nodes=30, num_edges=120, num_features=6, seed=4)
    features = features.double() * torch.logspace(-2, 3, 30, dtype=torch.float64).unsqueeze(1)
    config = GATConfig(2, [3, 2], [6, 5, 4], attention_type="gatv2")
    models = {t: GAT.from_config(config, layer_type=t, log_attention_weights=True).double().eval() for t in LayerType}
    reference = models[LayerType.IMP3].state_dict()
    for model in models.values():
        model.load_state_dict(reference)
    reference_logits, reference_grads = outputs_and_gradients(models[LayerType.IMP3], features, edge_index)
    assert reference_logits.abs().max() > 100  # the inputs really span a wide range
    for layer in models[LayerType.IMP3].layers:
        sums = torch.zeros(30, layer.num_heads, dtype=torch.float64).index_add_(0, edge_index[1],
                                                                               layer.attention_weights)
        torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-12, rtol=0)
    for layer_type in (LayerType.IMP1, LayerType.IMP2, LayerType.IMP4):
        logits, grads = outputs_and_gradients(models[layer_type], features, edge_index)
        torch.testing.assert_close(logits, reference_logits, atol=1e-10, rtol=0)
        for name in reference_grads:  # gradients reach ~1e3 here: 1e-10 relative to each one's largest entry
            scale = max(1.0, reference_grads[name].abs().max().item())
            assert (grads[name] - reference_grads[name]).abs().max().item() <= 1e-10 * scale, name


def test_gatv2_attention_can_rank_neighbours_differently_per_target():
    """The point of GATv2: unlike GAT, two targets may prefer different sources."""
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    # targets 0 and 1 both listen to sources 2 and 3 (and themselves)
    edge_index = torch.tensor([[0, 2, 3, 1, 2, 3, 2, 3], [0, 0, 0, 1, 1, 1, 2, 3]])
    layer = GATLayerImp3(2, 2, 1, dropout_prob=0.0, add_skip_connection=False, log_attention_weights=True,
                         attention_type="gatv2")
    with torch.no_grad():
        layer.linear_proj.weight.copy_(torch.eye(2))          # W h_j = h_j
        layer.linear_proj_target.weight.copy_(-torch.eye(2))  # W_t h_i = -h_i
        layer.scoring_fn.copy_(torch.tensor([[[-1.0, -1.0]]]))  # score = -|h_j - h_i|-ish: prefer similar
    layer.eval()(features, edge_index)
    attention = layer.attention_weights[:, 0]
    assert attention[1] > attention[2]  # target 0 (like source 2) prefers source 2
    assert attention[5] > attention[4]  # target 1 (like source 3) prefers source 3


def test_sparse_input_gives_the_same_result_as_dense():
    features, edge_index = random_graph(num_features=30)
    features = features * (torch.rand_like(features) < 0.1)  # mostly zeros, like bag-of-words features
    sparse = sparsify_if_mostly_zero(features)
    assert sparse.layout == torch.sparse_csr
    for layer_type in LayerType:
        model = GAT(2, [4, 1], [30, 8, 3], add_skip_connection=True, layer_type=layer_type).eval()
        dense_logits, dense_grads = outputs_and_gradients(model, features, edge_index)
        model.zero_grad()
        sparse_logits = model(sparse, edge_index)
        torch.testing.assert_close(sparse_logits, dense_logits, atol=1e-5, rtol=0)
        (sparse_logits * torch.linspace(-1, 1, sparse_logits.numel()).view_as(sparse_logits)).sum().backward()
        for name, parameter in model.named_parameters():  # the sparse projection's own backward pass
            torch.testing.assert_close(parameter.grad, dense_grads[name], atol=1e-4, rtol=0, msg=name)


def test_sparse_dropout_keeps_the_sparsity_pattern_and_scales_survivors():
    layer = GATLayerImp3(100, 4, 2, dropout_prob=0.5).train()
    features = sparsify_if_mostly_zero(torch.eye(100))
    dropped = layer.dropout(features).to_dense()
    assert ((dropped != 0) <= (torch.eye(100) != 0)).all()
    assert set(dropped[dropped != 0].tolist()) == {2.0}
    assert 20 < int((dropped != 0).sum()) < 80


def test_attention_is_a_distribution_over_each_neighbourhood():
    features, edge_index = random_graph()
    for layer_type in LayerType:
        model = GAT(2, [4, 2], [12, 6, 3], layer_type=layer_type, log_attention_weights=True).eval()
        model(features, edge_index)
        for layer in model.layers:
            attention = layer.attention_weights
            assert attention.min() >= 0 and attention.max() <= 1
            sums = torch.zeros(features.shape[0], layer.num_heads).index_add_(0, edge_index[1], attention)
            torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-5, rtol=0)


def test_edge_softmax_is_per_target_even_when_score_ranges_differ_by_1000():
    # Node 0's neighbourhood scores sit near +1000, node 1's near -1000 and node 2's near 0. With one
    # global max, nodes 1 and 2 would underflow to zero attention.
    target = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    scores = torch.tensor([[1000.0, 1.0], [999.0, 2.0], [1001.0, 3.0], [-1000.0, 4.0], [-1001.5, 5.0],
                           [-999.0, 6.0], [0.0, -3.0], [0.5, -1000.0]], requires_grad=True)
    attention = edge_softmax(scores, target, num_nodes=3)
    sums = torch.zeros(3, 2).index_add_(0, target, attention)
    torch.testing.assert_close(sums, torch.ones(3, 2), atol=1e-5, rtol=0)
    assert torch.isfinite(attention).all()
    expected = torch.softmax(torch.tensor([-1000.0, -1001.5, -999.0]), dim=0)
    torch.testing.assert_close(attention[3:6, 0], expected)
    attention[:, 0].pow(2).sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_hand_written_backward_passes_match_numerical_gradients():
    # IMP3's autograd Functions (score halves, scores, sorted softmax, neighbourhood sum, sparse projection)
    # against finite differences in float64, on a graph with a node that has no outgoing edge (node 5).
    from models.autograd_functions import (GATEdgeScores, GATScoreHalves, GATv2EdgeScores, NeighbourhoodSum,
                                           SortedEdgeSoftmax, SparseCSRProjection)
    from models.layouts import TargetSortedEdges
    from models.sparse_features import transposed_csr_pattern
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 0, 2, 4, 1, 3, 0],
                               [0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 5]])
    num_nodes, heads, width = 6, 2, 3
    edges = TargetSortedEdges(edge_index, num_nodes, heads)
    generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)

    projection, a_source, a_target = rand(num_nodes, heads, width), rand(1, heads, width), rand(1, heads, width)
    assert torch.autograd.gradcheck(lambda p, s, t: GATScoreHalves.apply(p, p, s, t), (projection, a_source, a_target))
    source, target = rand(num_nodes, heads), rand(num_nodes, heads)
    assert torch.autograd.gradcheck(lambda s, t: GATEdgeScores.apply(s, t, edges, 0.2), (source, target))
    scores = rand(edge_index.shape[1], heads)
    assert torch.autograd.gradcheck(lambda x: SortedEdgeSoftmax.apply(x, edges.by_target), (scores,))
    torch.testing.assert_close(SortedEdgeSoftmax.apply(scores, edges.by_target), edge_softmax(scores, edge_index[1], num_nodes))
    attention, features = rand(edge_index.shape[1], heads), rand(num_nodes, heads, width)
    assert torch.autograd.gradcheck(lambda a, f: NeighbourhoodSum.apply(a, f, edges), (attention, features))
    source_v2, target_v2, vector = rand(num_nodes, heads, width), rand(num_nodes, heads, width), rand(1, heads, width)
    assert torch.autograd.gradcheck(lambda s, t, a: GATv2EdgeScores.apply(s, t, a, edges, 0.2),
                                    (source_v2, target_v2, vector))
    sparse = (torch.rand(num_nodes, 7, generator=generator, dtype=torch.float64) > 0.6).double().to_sparse_csr()
    weight = rand(4, 7)
    assert torch.autograd.gradcheck(
        lambda w: SparseCSRProjection.apply(sparse, sparse.values(), w, transposed_csr_pattern(sparse)), (weight,))


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_work_in_chunks_gives_the_same_results(monkeypatch, attention_type):
    # Large graphs go through IMP3's temporaries chunk by chunk; with tiny chunks this small graph does too
    # (unsorted edges, nodes without outgoing edges, bags split at many places), and nothing may change.
    from models import gathers
    features, edge_index = random_graph(num_nodes=60, num_edges=150)
    edge_index = edge_index[:, torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(1))]

    def forward_and_gradients():
        torch.manual_seed(0)
        layer = GATLayerImp3(12, 5, 3, attention_type=attention_type, log_attention_weights=True)
        out = layer(features, edge_index)
        out.square().sum().backward()
        return [out.detach(), layer.attention_weights] + [p.grad for p in layer.parameters()]

    whole = forward_and_gradients()
    monkeypatch.setattr(gathers, "CHUNK_ELEMENTS", 7)
    chunked = forward_and_gradients()
    if attention_type == "gat":
        assert all(torch.equal(a, b) for a, b in zip(whole, chunked))
    else:
        # GATv2's scores add up their attention vector's gradient per chunk: equal up to rounding only.
        assert torch.equal(whole[0], chunked[0]) and torch.equal(whole[1], chunked[1])
        for a, b in zip(whole[2:], chunked[2:]):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_without_gradients_imp3_skips_autograd_but_computes_the_same(attention_type):
    features, edge_index = random_graph()
    sparse_features = sparsify_if_mostly_zero(features.relu().pow(4).round())  # ~24 % non-zero: CSR
    model = GAT(2, [4, 1], [12, 6, 3], attention_type=attention_type).eval()
    with_autograd = model(sparse_features, edge_index)
    assert with_autograd.grad_fn is not None
    with torch.no_grad():
        without = model(sparse_features, edge_index)
    assert torch.equal(with_autograd.detach(), without)


def _training_steps(model, features, graph, labels, output_nodes, prune, steps=3):
    """Logits of `steps` Adam steps with dropout, the weights after them and the random state they left. prune:
    "restricted" gives the model graph.restricted_to(output_nodes), "keyword" output_nodes=output_nodes."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    restricted = graph.restricted_to(output_nodes, len(model.layers))
    all_logits = []
    for _ in range(steps):
        optimizer.zero_grad()
        logits = (model(features, restricted) if prune == "restricted"
                  else model(features, graph, output_nodes=output_nodes) if prune == "keyword"
                  else model(features, graph)[output_nodes])
        torch.nn.functional.cross_entropy(logits, labels[output_nodes]).backward()
        optimizer.step()
        all_logits.append(logits.detach())
    generator_state = (torch.cuda.get_rng_state(features.device) if features.device.type == "cuda"
                       else torch.get_rng_state())
    return all_logits, [p.detach().clone() for p in model.parameters()], generator_state


def _assert_bit_identical(full, pruned):
    (full_logits, full_weights, full_rng), (pruned_logits, pruned_weights, pruned_rng) = full, pruned
    assert all(torch.equal(a, b) for a, b in zip(full_logits, pruned_logits))
    assert all(torch.equal(a, b) for a, b in zip(full_weights, pruned_weights))
    assert torch.equal(full_rng, pruned_rng)  # the same random numbers drawn: what comes next is the same too


@pytest.mark.slow
def test_output_nodes_train_bit_for_bit_like_the_full_pass_on_cora(cora):
    # The transductive trainer asks only for the training nodes' logits; its accuracy table depends on
    # this being the very same computation, dropout masks, gradients and Adam steps included.
    features = sparsify_if_mostly_zero(cora.node_features)
    config = GATConfig(2, [8, 1], [cora.node_features.shape[1], 8, cora.num_classes], add_skip_connection=False)
    graph = Graph(cora.edge_index, cora.num_nodes)
    runs = []
    for prune in (False, "restricted"):
        torch.manual_seed(0)
        model = GAT.from_config(config).train()
        runs.append(_training_steps(model, features, graph, cora.labels, cora.train_indices, prune))
    _assert_bit_identical(*runs)
    # ... and the pruned run did skip edges: the first layer kept only the edges into the training
    # nodes' receptive field, the second only those into the training nodes.
    restricted = graph.restricted_to(cora.train_indices, 2)
    kept = [len(layer_graph.edges_by_target(layer.num_heads).source)
            for layer, layer_graph in zip(model.layers, restricted.layers)]
    into_train = torch.isin(cora.edge_index[1], cora.train_indices).sum()
    assert kept[1] == into_train < kept[0] < cora.edge_index.shape[1]


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.slow
def test_output_nodes_give_the_full_pass_rows_and_gradients_for_every_implementation(skip, device):
    features, edge_index = random_graph(num_nodes=60, num_edges=150)
    edge_index = edge_index[:, torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(1))]
    labels = torch.randint(0, 5, (60,), generator=torch.Generator().manual_seed(2)).to(device)
    output_nodes = torch.tensor([3, 17, 17, 41, 0], device=device)  # any order, repeats allowed, like indexing
    config = GATConfig(3, [4, 3, 2], [12, 6, 12, 5], add_skip_connection=skip)
    graph, features = Graph(edge_index.to(device), 60), features.to(device)
    for layer_type in LayerType:
        runs = []
        for prune in (False, "restricted", "keyword"):
            torch.manual_seed(0)
            model = GAT.from_config(config, layer_type=layer_type).to(device).train()
            runs.append(_training_steps(model, features, graph, labels, output_nodes, prune, steps=2))
        for pruned in runs[1:]:
            if layer_type == LayerType.IMP3:
                _assert_bit_identical(runs[0], pruned)
            else:  # the dense layers compute every row anyway
                torch.testing.assert_close(runs[0][0], pruned[0], atol=0, rtol=0)


def test_receptive_field_walks_back_one_hop_per_layer():
    from models.layouts import receptive_field

    # A path 0 -> 1 -> 2 -> 3 -> 4 with self loops: node 4's output after 3 layers depends on nodes 1-4.
    path = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    loops = torch.arange(5).repeat(2, 1)
    needed = receptive_field(torch.cat([path, loops], dim=1), torch.tensor([4]), 5, 3)
    assert [mask.nonzero().flatten().tolist() for mask in needed] == [[2, 3, 4], [3, 4], [4]]
    assert receptive_field(torch.cat([path, loops], dim=1), torch.tensor([4]), 5, 5)[0] is None  # all nodes


def test_dropout_of_rows_draws_the_whole_tensor_mask(device):
    # (on CUDA the whole tensor goes through PyTorch's fused kernel, and some rows through the same kernel's mask
    # of the whole shape: the restricted pass stays bit for bit the whole pass there too)
    from models.dropout import FastDropout
    dropout = FastDropout(0.6).train()
    values, rows = torch.randn(50, 3, device=device), torch.tensor([2, 3, 9, 40], device=device)
    torch.manual_seed(5)
    whole = dropout(values)
    after_whole = torch.rand(1, device=device)
    torch.manual_seed(5)
    assert torch.equal(dropout(values[rows], rows, 50), whole[rows])
    assert torch.equal(torch.rand(1, device=device), after_whole)


def test_layer_attention_sums_to_one_with_huge_score_ranges():
    features, edge_index = random_graph()
    features[:20] *= 1000.0  # half of the graph gets scores ~1000x larger than the other half
    for layer_type in LayerType:
        model = GAT(1, [3], [12, 4], layer_type=layer_type, log_attention_weights=True).eval()
        with torch.no_grad():
            model.layers[0].scoring_fn_source.mul_(50)
        model(features, edge_index)
        attention = model.layers[0].attention_weights
        sums = torch.zeros(features.shape[0], 3).index_add_(0, edge_index[1], attention)
        torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-5, rtol=0)


def test_dense_layers_build_the_mask_once_per_graph(monkeypatch):
    from models import graph as graph_module
    built = []
    build = graph_module.attention_mask
    monkeypatch.setattr(graph_module, "attention_mask", lambda *args: built.append(args) or build(*args))
    features, edge_index = random_graph()
    layer = GATLayerImp1(12, 4, 2).eval()
    graph = Graph(edge_index, 40)
    layer(features, graph)
    layer(features, graph)
    assert len(built) == 1
    _, other_edges = random_graph(seed=1)
    layer(features, Graph(other_edges, 40))
    assert len(built) == 2
    layer(features, edge_index)  # a plain edge_index: a new Graph, a new mask
    assert len(built) == 3


def test_dense_layers_refuse_graphs_too_big_for_memory(monkeypatch):
    features, edge_index = random_graph()
    monkeypatch.setattr(GATLayerImp1, "max_dense_bytes", 1000)
    with pytest.raises(MemoryError, match="IMP3"):
        GATLayerImp1(12, 4, 2)(features, edge_index)


def test_dense_layers_reject_nodes_without_incoming_edges():
    edge_index = torch.tensor([[0, 1], [1, 1]])  # node 0 has no incoming edge
    with pytest.raises(ValueError, match="self loops"):
        GATLayerImp1(3, 2, 1)(torch.randn(2, 3), edge_index)


def test_model_shapes_and_config_validation():
    features, edge_index = random_graph()
    model = GAT(2, [8, 1], [12, 8, 7])
    assert model(features, edge_index).shape == (40, 7)
    assert len(model.layers) == 2 and model.layers[0].concat and not model.layers[1].concat
    with pytest.raises(ValueError, match="num_features_per_layer"):
        GAT(2, [8, 1], [12, 7])
    with pytest.raises(ValueError, match="num_heads_per_layer"):
        GAT(2, [8], [12, 8, 7])
    with pytest.raises(ValueError, match="unknown layer type"):
        GAT(2, [8, 1], [12, 8, 7], layer_type="IMP5")


@pytest.mark.slow
def test_layers_work_under_torch_compile():
    features, edge_index = random_graph()
    model = GAT(2, [4, 1], [12, 6, 3]).eval()
    compiled = torch.compile(model, backend="eager")  # checks graph capture, not codegen (fast)
    torch.testing.assert_close(compiled(features, edge_index), model(features, edge_index))


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_a_hub_reduced_in_pieces_gives_the_same_layer_up_to_rounding(monkeypatch, attention_type, device):
    # On a GPU a target with more in-edges than MAX_SEGMENT has them summed in pieces (deterministically); on the CPU
    # the bound is far above any graph of the results, whose bits stay as they were.
    from models import layouts
    features, edge_index = random_graph(num_nodes=60, num_edges=300, hub=45)
    features, edge_index = features.to(device), edge_index.to(device)

    def forward_and_gradients():
        torch.manual_seed(0)
        layer = GATLayerImp3(12, 5, 3, attention_type=attention_type, dropout_prob=0.0).to(device)
        graph = Graph(edge_index, 60)
        out = layer(features, graph)
        out.square().sum().backward()
        return graph.edges_by_target(3), [out.detach()] + [p.grad for p in layer.parameters()]

    whole_layout, whole = forward_and_gradients()
    for bound in (4, 1):
        monkeypatch.setitem(layouts.MAX_SEGMENT, device.type if device.type == "cpu" else "cuda", bound)
        pieces_layout, pieces = forward_and_gradients()
        assert whole_layout.by_target.pieces is None and pieces_layout.by_target.pieces is not None
        for a, b in zip(whole, pieces):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # (float32 sums in another order)


def test_the_graphs_of_the_results_are_reduced_whole_on_the_cpu(cora):
    layout = Graph(cora.edge_index, cora.num_nodes).edges_by_target(8)
    assert layout.by_target.pieces is None and layout.by_source.pieces is None
    assert layout.forward_bags.pieces is None and layout.backward_bags.pieces is None
