"""Every op of models/fast_ops.py against the plain PyTorch expression its docstring promises, forward and
gradient, in float64: once as it runs on a small graph (one chunk) and once with chunks of a few floats, so
that every chunked path (gathers, bag runs, GATv2's pre-activation, score-halves buffer) runs too."""

import pytest
import torch
import torch.nn.functional as F

from models import fast_ops
from models.fast_ops import TargetSortedEdges
from tests.helpers import random_graph

NUM_NODES, HEADS, WIDTH = 9, 2, 3
SLOPE = 0.2


def graph(device="cpu"):
    """Directed, unsorted edges with self loops; node 8 has no outgoing edge but its self loop, node 7 a high degree."""
    return random_graph(NUM_NODES, 30, seed=3, undirected=False, hub=7, sink=True, shuffle=True)[1].to(device)


def rand(*shape, seed, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device).requires_grad_()


@pytest.fixture(params=["one chunk", "many chunks"])
def chunks(request, monkeypatch):
    if request.param == "many chunks":
        monkeypatch.setattr(fast_ops, "CHUNK_ELEMENTS", 5)
        monkeypatch.setattr(fast_ops, "CUDA_CHUNK_ELEMENTS", 5)
    return request.param


def assert_same_values_and_gradients(fast, plain, inputs):
    """fast(*inputs) == plain(*inputs), and so are the gradients of a random linear function of the output."""
    fast_out, plain_out = fast(*inputs), plain(*inputs)
    fast_out = fast_out if isinstance(fast_out, tuple) else (fast_out,)
    plain_out = plain_out if isinstance(plain_out, tuple) else (plain_out,)
    weights = [torch.randn_like(out) for out in plain_out]
    for a, b in zip(fast_out, plain_out):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    fast_grads = torch.autograd.grad(sum((w * o).sum() for w, o in zip(weights, fast_out)), inputs)
    plain_grads = torch.autograd.grad(sum((w * o).sum() for w, o in zip(weights, plain_out)), inputs)
    for a, b in zip(fast_grads, plain_grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(fast, inputs)


def plain_neighbourhood_sum(edges):
    """What neighbourhood_sum equals: index_add of each edge's attention-weighted source features into its target."""
    def plain(attention, features):
        weighted = attention.unsqueeze(-1) * features[edges.source]
        empty = torch.zeros(NUM_NODES, HEADS, WIDTH, dtype=features.dtype, device=features.device)
        return empty.index_add(0, edges.target, weighted)
    return plain


def test_project_equals_a_matmul_for_dense_and_sparse_inputs(chunks, device):
    generator = torch.Generator().manual_seed(0)
    dense = (torch.rand(NUM_NODES, 7, generator=generator, dtype=torch.float64) > 0.6).double().to(device)
    weight = rand(4, 7, seed=1, device=device)

    def plain(w):
        return dense @ w.t()
    for features in (dense, dense.to_sparse(), dense.to_sparse_csr()):
        assert_same_values_and_gradients(lambda w: fast_ops.project(w, features), plain, (weight,))
    csr = dense.to_sparse_csr()
    pattern = fast_ops.transposed_csr_pattern(csr)
    assert_same_values_and_gradients(lambda w: fast_ops.project(w, csr, pattern), plain, (weight,))


def test_gat_score_halves_equal_two_products(chunks, device):
    inputs = (rand(NUM_NODES, HEADS, WIDTH, seed=0, device=device), rand(1, HEADS, WIDTH, seed=1, device=device),
              rand(1, HEADS, WIDTH, seed=2, device=device))
    assert_same_values_and_gradients(fast_ops.gat_score_halves,
                                     lambda p, s, t: ((p * s).sum(-1), (p * t).sum(-1)), inputs)


def test_gat_edge_scores_equal_leaky_relu_of_gathered_halves(chunks, device):
    edge_index = graph(device)
    edges = TargetSortedEdges(edge_index, NUM_NODES, HEADS)

    def plain(source, target):
        return F.leaky_relu(source[edges.source] + target[edges.target], SLOPE)
    assert_same_values_and_gradients(lambda s, t: fast_ops.gat_edge_scores(s, t, edges, SLOPE), plain,
                                     (rand(NUM_NODES, HEADS, seed=0, device=device),
                                      rand(NUM_NODES, HEADS, seed=1, device=device)))


def test_gatv2_edge_scores_equal_the_attention_vector_after_leaky_relu(chunks, device):
    edges = TargetSortedEdges(graph(device), NUM_NODES, HEADS)

    def plain(source, target, vector):
        return (F.leaky_relu(source[edges.source] + target[edges.target], SLOPE) * vector).sum(-1)
    inputs = (rand(NUM_NODES, HEADS, WIDTH, seed=0, device=device),
              rand(NUM_NODES, HEADS, WIDTH, seed=1, device=device),
              rand(1, HEADS, WIDTH, seed=2, device=device))
    assert_same_values_and_gradients(lambda s, t, a: fast_ops.gatv2_edge_scores(s, t, a, edges, SLOPE), plain, inputs)


def test_neighbourhood_softmax_equals_the_plain_edge_softmax(chunks, device):
    edges = TargetSortedEdges(graph(device), NUM_NODES, HEADS)
    scores = rand(edges.source.numel(), HEADS, seed=0, device=device)
    assert_same_values_and_gradients(lambda x: fast_ops.neighbourhood_softmax(x, edges),
                                     lambda x: fast_ops.edge_softmax(x, edges.target, NUM_NODES), (scores,))


def test_edge_softmax_equals_torch_softmax_per_neighbourhood(device):
    edge_index = graph(device)
    scores = rand(edge_index.shape[1], HEADS, seed=0, device=device)
    attention = fast_ops.edge_softmax(scores, edge_index[1], NUM_NODES)
    for node in range(NUM_NODES):
        into = edge_index[1] == node
        torch.testing.assert_close(attention[into], torch.softmax(scores[into], dim=0))


def test_neighbourhood_sum_equals_index_add_of_weighted_sources(chunks, device):
    edges = TargetSortedEdges(graph(device), NUM_NODES, HEADS)

    inputs = (rand(edges.source.numel(), HEADS, seed=0, device=device),
              rand(NUM_NODES, HEADS, WIDTH, seed=1, device=device))
    assert_same_values_and_gradients(lambda a, f: fast_ops.neighbourhood_sum(a, f, edges),
                                     plain_neighbourhood_sum(edges), inputs)


def test_ops_on_kept_edges_equal_the_plain_expressions_on_those_edges(chunks, device):
    # With `targets`, TargetSortedEdges keeps only the edges into some nodes; every op then equals its plain
    # expression over those edges (including the backward's rearranged rows, `endpoints`).
    targets = torch.zeros(NUM_NODES, dtype=torch.bool, device=device)
    targets[[1, 3]] = True
    edges = TargetSortedEdges(graph(device), NUM_NODES, HEADS, targets)
    assert edges.endpoints is not None and bool(targets[edges.target].all())

    inputs = (rand(edges.source.numel(), HEADS, seed=0, device=device),
              rand(NUM_NODES, HEADS, WIDTH, seed=1, device=device))
    assert_same_values_and_gradients(lambda a, f: fast_ops.neighbourhood_sum(a, f, edges),
                                     plain_neighbourhood_sum(edges), inputs)
    scores = rand(edges.source.numel(), HEADS, seed=2, device=device)
    assert_same_values_and_gradients(lambda x: fast_ops.neighbourhood_softmax(x, edges),
                                     lambda x: fast_ops.edge_softmax(x, edges.target, NUM_NODES), (scores,))


def test_ops_without_gradients_compute_the_same_values(chunks, device):
    edges = TargetSortedEdges(graph(device), NUM_NODES, HEADS)
    source, target = rand(NUM_NODES, HEADS, seed=0, device=device), rand(NUM_NODES, HEADS, seed=1, device=device)
    features = rand(NUM_NODES, HEADS, WIDTH, seed=2, device=device)
    with_grad = fast_ops.neighbourhood_sum(fast_ops.neighbourhood_softmax(
        fast_ops.gat_edge_scores(source, target, edges, SLOPE), edges), features, edges)
    with torch.no_grad():
        without = fast_ops.neighbourhood_sum(fast_ops.neighbourhood_softmax(
            fast_ops.gat_edge_scores(source, target, edges, SLOPE), edges), features, edges)
    assert with_grad.grad_fn is not None and without.grad_fn is None
    assert torch.equal(with_grad.detach(), without)


def test_fast_dropout_has_dropouts_distribution_and_scale(device):
    dropout = fast_ops.FastDropout(0.6).train()
    values = torch.ones(200_000, device=device)
    dropped = dropout(values)
    assert set(torch.unique(dropped).tolist()) == {0.0, 2.5}
    assert abs((dropped != 0).double().mean().item() - 0.4) < 0.01
    dropout.eval()
    assert dropout(values) is values
