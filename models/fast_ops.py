"""The fast ops the GAT layers call. Each one equals a plain PyTorch expression; this file says why it is fast.

A reader of models/gat_layers.py needs none of this: every op below is a promise to compute exactly what the
function of the same name in models/plain_ops.py computes (tests/models/test_fast_ops.py checks each pair, forward
and gradient, through one chunk and through many, on every device present). Shapes: N nodes, E edges, H heads,
F features; `edges` is a TargetSortedEdges (models/layouts.py), the edge list laid out once per graph.

Each op and why the fast version exists (what each gains, with the command that measures it: docs/performance.md,
"What makes IMP3 fast"):

    project                  sparse CSR x: two weighted gather-sums instead of torch.sparse.mm, and far cheaper
                             than a dense x
    gat_score_halves         large graphs: one [N, H, F] product buffer instead of four fresh tensors (page faults);
                             small ones run the plain expression itself
    gat_edge_scores          backward as segment sums instead of two zero-filled index_add_ scatters
    gatv2_edge_scores        the [E, H, F] pre-activation only ever exists one chunk at a time, forward and backward
    neighbourhood_softmax    segment reductions over contiguous targets; a 5-kernel backward instead of autograd's
                             dozen
    neighbourhood_sum        never builds [E, H, F]: weighted gather-sums (embedding_bag)
    sparse_dense_product     (IMP4) a backward pass that stays sparse (torch.sparse.sampled_addmm) where autograd's
                             forms all N x N entries

The autograd Functions with the hand-written backward passes are in models/autograd_functions.py; dropout, drawn
faster with the same distribution, in models/dropout.py.
"""

import torch
import torch.nn.functional as F

from . import plain_ops
from .autograd_functions import (GATEdgeScores, GATScoreHalves, GATv2EdgeScores, NeighbourhoodSum, SortedEdgeSoftmax,
                                 SparseCSRProjection, SparseDenseProduct, run)
from .gathers import chunk_elements
from .sparse_features import is_sparse, transposed_pattern_of


def project(weight, node_features, transposed_pattern=None):
    """node_features @ weight.T, [N, F_in] -> [N, F_out], for a dense, sparse COO or sparse CSR input.

    A sparse CSR input goes through SparseCSRProjection; `transposed_pattern` is what its backward pass needs
    (models/sparse_features.py: carried by the features, else built here)."""
    if node_features.layout == torch.sparse_csr:
        return run(SparseCSRProjection, node_features, node_features.values(), weight,
                   transposed_pattern or transposed_pattern_of(node_features))
    if is_sparse(node_features):
        return torch.sparse.mm(node_features, weight.t())
    return F.linear(node_features, weight)


def gat_score_halves(projection, a_source, a_target):
    """((projection * a_source).sum(-1), (projection * a_target).sum(-1)): [N, H, F] -> two [N, H].

    Small graphs run exactly that (autograd's own ops are quicker there); large ones the same products and
    sums through one reused buffer (GATScoreHalves)."""
    if projection.numel() > chunk_elements(projection.device):
        return run(GATScoreHalves, projection, projection, a_source, a_target)
    return plain_ops.gat_score_halves(projection, a_source, a_target)


def gat_edge_scores(source, target, edges, negative_slope, edge_terms=None):
    """[E, H]: leaky_relu(source[j] + target[i]) for every edge j -> i of `edges` (GAT's eq. 1).

    edge_terms (optional, [E, H] in the edges' sorted order, see TargetSortedEdges.in_sorted_order): added to
    each edge's sum before the leaky_relu, leaky_relu(source[j] + target[i] + edge_terms[e]) (edge features)."""
    return run(GATEdgeScores, source, target, edges, negative_slope, edge_terms)


def gatv2_edge_scores(source, target, attention_vector, edges, negative_slope, edge_terms=None):
    """[E, H]: (leaky_relu(source[j] + target[i]) * attention_vector).sum(-1) for every edge j -> i (GATv2).

    source, target: [N, H, F] projections; attention_vector: [1, H, F]. edge_terms (optional, [E, H, F] in the
    edges' sorted order): added to the pre-activation, leaky_relu(source[j] + target[i] + edge_terms[e])."""
    return run(GATv2EdgeScores, source, target, attention_vector, edges, negative_slope, edge_terms)


def neighbourhood_softmax(scores, edges):
    """[E, H]: the softmax of each target's incoming edges' scores; equals edge_softmax(scores, edges.target, N)."""
    return run(SortedEdgeSoftmax, scores, edges.by_target)


def neighbourhood_sum(attention, features, edges):
    """[N, H, F]: out[i] = sum over edges j -> i of attention[e] * features[j] (GAT's eq. 3 before sigma).

    Equals zeros(N, H, F).index_add_(0, edges.target, attention.unsqueeze(-1) * features[edges.source])."""
    return run(NeighbourhoodSum, attention, features, edges)


def sparse_dense_product(values, dense, pattern):
    """torch.bmm(sparse [H, N, N] with `values` [H * P] at pattern.indices, dense [H, N, F]) -> [H, N, F].

    Equals that expression, gradients included; its backward pass stays sparse (SparseDenseProduct)."""
    return SparseDenseProduct.apply(values, dense, pattern)
