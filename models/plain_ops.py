"""The plain PyTorch expression of every op in models/fast_ops.py, as code: what each fast op promises to equal.

Same names, same arguments. tests/models/test_fast_ops.py compares each pair, forward and gradient, on every device
present. These are also the ops to read first: a few lines of gathers, scatters and sums each, differentiated by
autograd. Shapes: N nodes, E edges, H heads, F features; `edges` is a models.layouts.TargetSortedEdges (the edges
sorted by target: edges.source, edges.target), `pattern` a models.layouts.SparseAttentionPattern.
"""

import torch
import torch.nn.functional as F


def project(weight, node_features, transposed_pattern=None):
    """x @ weight.T, [N, F_in] -> [N, F_out]; a sparse x as its dense matrix."""
    dense = node_features.to_dense() if node_features.layout != torch.strided else node_features
    return dense @ weight.t()


def gat_score_halves(projection, a_source, a_target):
    """[N, H, F] -> two [N, H]: each node's half of GAT's score as a source and as a target."""
    return (projection * a_source).sum(dim=-1), (projection * a_target).sum(dim=-1)


def gat_edge_scores(source, target, edges, negative_slope, edge_terms=None):
    """[E, H]: leaky_relu(source[j] + target[i] (+ edge_terms[e])) for every edge e = j -> i (GAT's eq. 1)."""
    pre_activation = source[edges.source] + target[edges.target]
    if edge_terms is not None:
        pre_activation = pre_activation + edge_terms
    return F.leaky_relu(pre_activation, negative_slope)


def gatv2_edge_scores(source, target, attention_vector, edges, negative_slope, edge_terms=None):
    """[E, H]: a . leaky_relu(source[j] + target[i] (+ edge_terms[e])) for every edge e = j -> i (GATv2)."""
    pre_activation = source[edges.source] + target[edges.target]
    if edge_terms is not None:
        pre_activation = pre_activation + edge_terms
    return (F.leaky_relu(pre_activation, negative_slope) * attention_vector).sum(dim=-1)


def neighbourhood_softmax(scores, edges):
    """[E, H]: the softmax of the scores of each target's incoming edges."""
    return edge_softmax(scores, edges.target, edges.target_offsets.numel() - 1)


def neighbourhood_sum(attention, features, edges):
    """[N, H, F]: out[i] = sum over edges j -> i of attention[e] * features[j] (GAT's eq. 3 before sigma)."""
    weighted = attention.unsqueeze(-1) * features[edges.source]
    return features.new_zeros(features.shape).index_add_(0, edges.target, weighted)


def sparse_dense_product(values, dense, pattern):
    """torch.bmm(sparse [H, N, N] with `values` [H * P] at pattern.indices, dense [H, N, F]) -> [H, N, F]."""
    matrix = torch.sparse_coo_tensor(pattern.indices, values, pattern.shape, is_coalesced=True, check_invariants=True)
    return torch.bmm(matrix, dense)


def edge_softmax(scores, target, num_nodes):
    """Softmax of per-edge scores [E, H] over the edges that share a target node; edges in any order.

    Each neighbourhood subtracts its own maximum before exp. One global maximum would be wrong in practice: a
    neighbourhood whose scores lie far below it would underflow to exp(...) = 0 and get zero (or NaN) attention.
    The maximum is a constant shift, so it is detached: the gradient of softmax does not depend on it."""
    num_heads = scores.shape[1]
    index = target.unsqueeze(-1).expand_as(scores)
    max_per_target = scores.new_full((num_nodes, num_heads), float("-inf"))
    max_per_target = max_per_target.scatter_reduce(0, index, scores.detach(), reduce="amax", include_self=False)
    exp_scores = (scores - max_per_target.index_select(0, target)).exp()
    denominator = scores.new_zeros((num_nodes, num_heads)).index_add_(0, target, exp_scores)
    # Every target that has an edge has denominator >= 1 (its max term is exp(0)).
    return exp_scores / denominator.index_select(0, target)
