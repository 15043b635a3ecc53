"""Every op of models/fast_ops.py against the function of the same name in models/plain_ops.py, the plain PyTorch
expression it promises to equal, forward and gradient, in float64, on every device present: once as it runs on a
small graph (one chunk) and once with chunks of a few floats, so that every chunked path (gathers, bag runs,
GATv2's pre-activation, score-halves buffer) runs too."""

import inspect

import pytest
import torch

from models import fast_ops, gathers, layouts, plain_ops
from models.dropout import FastDropout
from models.layouts import SparseAttentionPattern, TargetSortedEdges
from models.sparse_features import csr_features
from tests.helpers import random_graph

NUM_NODES, HEADS, WIDTH = 9, 2, 3
SLOPE = 0.2


def graph(device="cpu"):
    """Directed, unsorted edges with self loops; node 8 has no outgoing edge but its self loop, node 7 a high degree."""
    return random_graph(NUM_NODES, 30, seed=3, undirected=False, hub=7, sink=True, shuffle=True)[1].to(device)


def rand(*shape, seed, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device).requires_grad_()


@pytest.fixture(params=["one chunk", "many chunks", "hubs in pieces"])
def chunks(request, monkeypatch):
    """How the ops run: in one chunk; through chunks of a few floats; or with every segment longer than 2 rows (a
    target's edges, a node's outgoing edges, a (node, head) bag) reduced in pieces, as a hub is on a GPU."""
    if request.param == "many chunks":
        monkeypatch.setattr(gathers, "CHUNK_ELEMENTS", 5)
        monkeypatch.setattr(gathers, "CUDA_CHUNK_ELEMENTS", 5)
    if request.param == "hubs in pieces":
        monkeypatch.setitem(layouts.MAX_SEGMENT, "cpu", 2)
        monkeypatch.setitem(layouts.MAX_SEGMENT, "cuda", 2)
    return request.param


def assert_fast_equals_plain(name, inputs, *constants, call=None):
    """fast_ops.<name>(*inputs, *constants) == plain_ops.<name>(...) (or call(op, *inputs) for each), and so are
    the gradients of a random linear function of the output with respect to the inputs; the fast op also passes
    gradcheck."""
    fast_op, plain_op = getattr(fast_ops, name), getattr(plain_ops, name)
    call = call or (lambda op, *values: op(*values, *constants))

    def fast(*values):
        return call(fast_op, *values)

    def plain(*values):
        return call(plain_op, *values)
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


def test_every_fast_op_has_its_plain_expression_as_code():
    fast = {name for name, value in vars(fast_ops).items()
            if inspect.isfunction(value) and value.__module__ == fast_ops.__name__ and not name.startswith("_")}
    assert fast and fast <= set(vars(plain_ops)), fast - set(vars(plain_ops))
    for name in fast:
        assert inspect.signature(getattr(fast_ops, name)) == inspect.signature(getattr(plain_ops, name)), name


def test_project_equals_a_matmul_for_dense_and_sparse_inputs(chunks, device):
    generator = torch.Generator().manual_seed(0)
    dense = (torch.rand(NUM_NODES, 7, generator=generator, dtype=torch.float64) > 0.6).double().to(device)
    weight = rand(4, 7, seed=1, device=device)
    for features in (dense, dense.to_sparse(), dense.to_sparse_csr(), csr_features(dense)):
        assert_fast_equals_plain("project", (weight,), features)


def test_gat_score_halves_equal_two_products(chunks, device):
    inputs = (rand(NUM_NODES, HEADS, WIDTH, seed=0, device=device), rand(1, HEADS, WIDTH, seed=1, device=device),
              rand(1, HEADS, WIDTH, seed=2, device=device))
    assert_fast_equals_plain("gat_score_halves", inputs)


@pytest.mark.parametrize("with_edge_terms", [False, True])
def test_gat_edge_scores_equal_leaky_relu_of_gathered_halves(chunks, device, with_edge_terms):
    edges = TargetSortedEdges(graph(device), NUM_NODES, HEADS)
    inputs = (rand(NUM_NODES, HEADS, seed=0, device=device), rand(NUM_NODES, HEADS, seed=1, device=device))
    if not with_edge_terms:
        assert_fast_equals_plain("gat_edge_scores", inputs, edges, SLOPE)
    else:
        inputs += (rand(edges.source.numel(), HEADS, seed=2, device=device),)
        assert_fast_equals_plain("gat_edge_scores", inputs, call=lambda op, s, t, e: op(s, t, edges, SLOPE, e))


@pytest.mark.parametrize("with_edge_terms", [False, True])
def test_gatv2_edge_scores_equal_the_attention_vector_after_leaky_relu(chunks, device, with_edge_terms):
    edges = TargetSortedEdges(graph(device), NUM_NODES, HEADS)
    inputs = (rand(NUM_NODES, HEADS, WIDTH, seed=0, device=device),
              rand(NUM_NODES, HEADS, WIDTH, seed=1, device=device),
              rand(1, HEADS, WIDTH, seed=2, device=device))
    if not with_edge_terms:
        assert_fast_equals_plain("gatv2_edge_scores", inputs, edges, SLOPE)
    else:
        inputs += (rand(edges.source.numel(), HEADS, WIDTH, seed=3, device=device),)
        assert_fast_equals_plain("gatv2_edge_scores", inputs, call=lambda op, s, t, a, e: op(s, t, a, edges, SLOPE, e))


def test_neighbourhood_softmax_equals_the_plain_edge_softmax(chunks, device):
    edges = TargetSortedEdges(graph(device), NUM_NODES, HEADS)
    if chunks == "hubs in pieces":  # (the hub's segment, node 7's, and its bags are cut into pieces)
        assert edges.by_target.pieces is not None and edges.forward_bags.pieces is not None
    assert_fast_equals_plain("neighbourhood_softmax", (rand(edges.source.numel(), HEADS, seed=0, device=device),),
                             edges)


def test_edge_softmax_equals_torch_softmax_per_neighbourhood(device):
    edge_index = graph(device)
    scores = rand(edge_index.shape[1], HEADS, seed=0, device=device)
    attention = plain_ops.edge_softmax(scores, edge_index[1], NUM_NODES)
    for node in range(NUM_NODES):
        into = edge_index[1] == node
        torch.testing.assert_close(attention[into], torch.softmax(scores[into], dim=0))


def test_neighbourhood_sum_equals_index_add_of_weighted_sources(chunks, device):
    edges = TargetSortedEdges(graph(device), NUM_NODES, HEADS)
    inputs = (rand(edges.source.numel(), HEADS, seed=0, device=device),
              rand(NUM_NODES, HEADS, WIDTH, seed=1, device=device))
    assert_fast_equals_plain("neighbourhood_sum", inputs, edges)


def test_sparse_dense_product_equals_torch_bmm(device):
    edge_index = graph(device)
    pattern = SparseAttentionPattern(edge_index, NUM_NODES, HEADS)
    inputs = (rand(pattern.indices.shape[1], seed=0, device=device), rand(HEADS, NUM_NODES, WIDTH, seed=1,
                                                                          device=device))
    fast, plain = fast_ops.sparse_dense_product(*inputs, pattern), plain_ops.sparse_dense_product(*inputs, pattern)
    torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(plain)
    for a, b in zip(torch.autograd.grad((fast * weights).sum(), inputs),
                    torch.autograd.grad((plain * weights).sum(), inputs)):
        torch.testing.assert_close(a, b.to_dense() if b.layout != torch.strided else b, rtol=1e-12, atol=1e-12)


def test_ops_on_kept_edges_equal_the_plain_expressions_on_those_edges(chunks, device):
    # With `needed_rows`, TargetSortedEdges keeps only the edges into some nodes; every op then equals its plain
    # expression over those edges (including the backward's rearranged rows, `endpoints`).
    needed_rows = torch.zeros(NUM_NODES, dtype=torch.bool, device=device)
    needed_rows[[1, 3]] = True
    edges = TargetSortedEdges(graph(device), NUM_NODES, HEADS, needed_rows)
    assert edges.endpoints is not None and bool(needed_rows[edges.target].all())
    inputs = (rand(edges.source.numel(), HEADS, seed=0, device=device),
              rand(NUM_NODES, HEADS, WIDTH, seed=1, device=device))
    assert_fast_equals_plain("neighbourhood_sum", inputs, edges)
    assert_fast_equals_plain("neighbourhood_softmax", (rand(edges.source.numel(), HEADS, seed=2, device=device),),
                             edges)


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
    dropout = FastDropout(0.6).train()
    values = torch.ones(200_000, device=device)
    dropped = dropout(values)
    assert set(torch.unique(dropped).tolist()) == {0.0, 2.5}
    assert abs((dropped != 0).double().mean().item() - 0.4) < 0.01
    dropout.eval()
    assert dropout(values) is values

