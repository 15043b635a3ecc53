"""The GAT layer, three times: two dense implementations to read, one edge-list implementation to use.

Every layer computes, for each target node i and head k (Veličković et al., 2018, eqs. 1-5):

    e_ij   = LeakyReLU( a_k^T [W_k h_i || W_k h_j] )        for every edge j -> i
    alpha_ij = softmax_j(e_ij)                              over i's incoming neighbourhood
    h_i'   = sigma( sum_j alpha_ij W_k h_j )                concatenated (hidden) or averaged (output)

`GATLayer` owns the parameters and everything that is the same in all three (dropout, projection,
skip connection, bias, activation). The subclasses differ only in `_attend`: how the attention
scores become a per-neighbourhood softmax and how neighbours are aggregated.

Shapes: N nodes, E edges, H heads, F_in / F_out features. `edge_index` is a LongTensor [2, E] with
row 0 the source j and row 1 the target i of each edge j -> i. Layers use it as given: self loops
must be in it (the loaders add them) and duplicate edges would be counted twice.
"""

import enum
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerType(enum.Enum):
    IMP1 = "IMP1"  # dense, heads first: [H, N, N] scores, batched matmul
    IMP2 = "IMP2"  # dense, heads last: [N, N, H] scores, broadcasting + einsum
    IMP3 = "IMP3"  # edge list: [E, H] scores, scatter softmax and scatter-add (the default)

    @classmethod
    def parse(cls, value):
        """'imp3', 'IMP3' or LayerType.IMP3 -> LayerType.IMP3, with a clear error otherwise."""
        if isinstance(value, cls):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            choices = ", ".join(member.name for member in cls)
            raise ValueError(f"unknown layer type {value!r}; choose one of {choices}") from None


class GATLayer(nn.Module):
    """Base class: parameters and the shared parts of the forward pass.

    Input:  node_features [N, F_in] (dense, or a sparse COO/CSR tensor), edge_index [2, E].
    Output: [N, H * F_out] if concat else [N, F_out].
    With log_attention_weights=True the layer keeps its last attention as `attention_weights`,
    a detached tensor [E, H] aligned with the columns of edge_index.
    """

    def __init__(self, num_in_features, num_out_features, num_heads, concat=True, activation=None,
                 dropout_prob=0.6, add_skip_connection=True, bias=True, log_attention_weights=False):
        super().__init__()
        self.num_in_features = num_in_features
        self.num_out_features = num_out_features
        self.num_heads = num_heads
        self.concat = concat
        self.activation = activation
        self.add_skip_connection = add_skip_connection
        self.log_attention_weights = log_attention_weights
        self.attention_weights = None

        # W in the paper: one projection for all heads at once.
        self.linear_proj = nn.Linear(num_in_features, num_heads * num_out_features, bias=False)
        # a in the paper, split into the half that multiplies W h_j (source) and the half that
        # multiplies W h_i (target): a^T [W h_i || W h_j] = a_target . W h_i + a_source . W h_j.
        # Each half is computed once per node and only combined per edge.
        self.scoring_fn_target = nn.Parameter(torch.empty(1, num_heads, num_out_features))
        self.scoring_fn_source = nn.Parameter(torch.empty(1, num_heads, num_out_features))
        out_size = num_heads * num_out_features if concat else num_out_features
        self.bias = nn.Parameter(torch.empty(out_size)) if bias else None
        self.skip_proj = (nn.Linear(num_in_features, num_heads * num_out_features, bias=False)
                          if add_skip_connection else None)

        self.leaky_relu = nn.LeakyReLU(0.2)
        self.dropout = nn.Dropout(p=dropout_prob)
        self.reset_parameters()

    def reset_parameters(self):
        # Glorot (Xavier) uniform, as in the paper's TensorFlow code.
        nn.init.xavier_uniform_(self.linear_proj.weight)
        nn.init.xavier_uniform_(self.scoring_fn_target)
        nn.init.xavier_uniform_(self.scoring_fn_source)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        if self.skip_proj is not None:
            nn.init.xavier_uniform_(self.skip_proj.weight)

    def forward(self, node_features, edge_index):
        num_nodes = node_features.shape[0]
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")

        node_features = self._dropout_input(node_features)
        # [N, F_in] -> [N, H, F_out]
        nodes_features_proj = _apply_linear(self.linear_proj, node_features).view(num_nodes, self.num_heads, self.num_out_features)
        # The paper's code drops out the projected features as well (before aggregation).
        nodes_features_proj = self.dropout(nodes_features_proj)

        # [N, H]: each node's score as a source and as a target of an edge.
        scores_source = (nodes_features_proj * self.scoring_fn_source).sum(dim=-1)
        scores_target = (nodes_features_proj * self.scoring_fn_target).sum(dim=-1)

        # [N, H, F_out] aggregated features, [E, H] attention per edge
        out, attention = self._attend(nodes_features_proj, scores_source, scores_target, edge_index)
        if self.log_attention_weights:
            self.attention_weights = attention.detach()

        return self._finish(node_features, out)

    def _attend(self, nodes_features_proj, scores_source, scores_target, edge_index):
        """Return (aggregated [N, H, F_out], attention [E, H] aligned with edge_index)."""
        raise NotImplementedError

    def _dropout_input(self, node_features):
        if not _is_sparse(node_features):
            return self.dropout(node_features)
        if not self.training or self.dropout.p == 0:
            return node_features
        # Dropout of a sparse matrix touches only its stored values: a zero stays zero either
        # way, so this is the same distribution as dense dropout, at a fraction of the cost.
        if node_features.layout == torch.sparse_csr:
            return _csr_with_values(node_features, self.dropout(node_features.values()))
        node_features = node_features.coalesce()
        return torch.sparse_coo_tensor(node_features.indices(), self.dropout(node_features.values()),
                                       node_features.shape, is_coalesced=True)

    def _finish(self, node_features, out):
        """Skip connection, concat/average heads, bias, activation. out: [N, H, F_out]."""
        num_nodes = out.shape[0]
        if self.add_skip_connection:
            if node_features.shape[-1] == self.num_out_features:
                # Same width: add the input itself to every head.
                dense_input = node_features.to_dense() if _is_sparse(node_features) else node_features
                out = out + dense_input.unsqueeze(1)
            else:
                skip = _apply_linear(self.skip_proj, node_features)
                out = out + skip.view(num_nodes, self.num_heads, self.num_out_features)

        # [N, H, F_out] -> [N, H * F_out] (hidden layers) or [N, F_out] (output layer)
        out = out.reshape(num_nodes, -1) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        return out if self.activation is None else self.activation(out)


class _DenseGATLayer(GATLayer):
    """Shared by the dense layers: the N x N mask built from edge_index, cached per graph."""

    # Refuse graphs whose N x N x H score tensors would not fit comfortably: these layers exist to
    # be read, IMP3 is for scale.
    max_dense_bytes = 4 * 2 ** 30

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cached_graph = None  # (edge_index, its version, N)
        self._cached_mask = None

    def _attention_mask(self, edge_index, num_nodes, device, dtype):
        """[N, N] additive mask: 0 where edge j -> i exists (row i = target, column j = source),
        -inf elsewhere. Built once per graph and reused while edge_index is the same tensor."""
        key = (edge_index, edge_index._version, num_nodes)
        if self._cached_graph is not None and self._cached_graph[0] is key[0] \
                and self._cached_graph[1:] == key[1:] and self._cached_mask.dtype == dtype:
            return self._cached_mask

        needed = 3 * num_nodes * num_nodes * self.num_heads * torch.finfo(dtype).bits // 8
        if needed > self.max_dense_bytes:
            raise MemoryError(
                f"{type(self).__name__} would allocate ~{needed / 2 ** 30:.1f} GiB of N x N attention "
                f"for N={num_nodes} nodes and {self.num_heads} heads; use --layer_type IMP3, the "
                f"edge-list implementation, for graphs of this size.")
        mask = torch.full((num_nodes, num_nodes), float("-inf"), device=device, dtype=dtype)
        mask[edge_index[1], edge_index[0]] = 0.0
        has_incoming = torch.isfinite(mask).any(dim=1)
        if not bool(has_incoming.all()):
            missing = (~has_incoming).nonzero().flatten()[:5].tolist()
            raise ValueError(f"nodes {missing}... have no incoming edge, so their attention is "
                             f"undefined; add self loops to edge_index")
        self._cached_graph, self._cached_mask = key, mask
        return mask


class GATLayerImp1(_DenseGATLayer):
    """Dense, heads first. Easiest to map onto the equations: one N x N attention matrix per head."""

    def _attend(self, nodes_features_proj, scores_source, scores_target, edge_index):
        num_nodes = nodes_features_proj.shape[0]
        mask = self._attention_mask(edge_index, num_nodes, nodes_features_proj.device,
                                    nodes_features_proj.dtype)
        # [H, N, 1] + [H, 1, N] -> [H, N, N]; entry (k, i, j) scores edge j -> i for head k.
        all_scores = self.leaky_relu(scores_target.t().unsqueeze(-1) + scores_source.t().unsqueeze(1))
        # Softmax over each row = over each target's neighbourhood (torch subtracts the row max).
        attention = torch.softmax(all_scores + mask, dim=-1)
        attention_dropped = self.dropout(attention)
        # [H, N, N] @ [H, N, F_out] -> [H, N, F_out] -> [N, H, F_out]
        out = torch.bmm(attention_dropped, nodes_features_proj.transpose(0, 1)).transpose(0, 1)
        return out, attention[:, edge_index[1], edge_index[0]].t()


class GATLayerImp2(_DenseGATLayer):
    """Dense, heads last. The same computation laid out as [N, N, H] with broadcasting."""

    def _attend(self, nodes_features_proj, scores_source, scores_target, edge_index):
        num_nodes = nodes_features_proj.shape[0]
        mask = self._attention_mask(edge_index, num_nodes, nodes_features_proj.device,
                                    nodes_features_proj.dtype)
        # [N, 1, H] + [1, N, H] -> [N, N, H]; entry (i, j, k) scores edge j -> i for head k.
        all_scores = self.leaky_relu(scores_target.unsqueeze(1) + scores_source.unsqueeze(0))
        attention = torch.softmax(all_scores + mask.unsqueeze(-1), dim=1)  # over sources j
        attention_dropped = self.dropout(attention)
        # sum_j alpha_ijk * Wh_jk : [N, N, H] x [N, H, F_out] -> [N, H, F_out]
        out = torch.einsum("ijh,jhf->ihf", attention_dropped, nodes_features_proj)
        return out, attention[edge_index[1], edge_index[0]]


class GATLayerImp3(GATLayer):
    """Edge list: scores only where edges exist, softmax per target by scatter, scatter-add.

    Memory and time grow with E instead of N^2; this is the implementation to train with.
    """

    def _attend(self, nodes_features_proj, scores_source, scores_target, edge_index):
        num_nodes = nodes_features_proj.shape[0]
        source, target = edge_index[0], edge_index[1]
        # [E, H]: the two halves of a^T [W h_i || W h_j], gathered per edge.
        scores_per_edge = self.leaky_relu(scores_source.index_select(0, source)
                                          + scores_target.index_select(0, target))
        attention = edge_softmax(scores_per_edge, target, num_nodes)
        attention_dropped = self.dropout(attention)
        # [E, H, F_out]: each neighbour's projected features weighted by its attention.
        weighted = nodes_features_proj.index_select(0, source) * attention_dropped.unsqueeze(-1)
        out = nodes_features_proj.new_zeros(nodes_features_proj.shape)
        out.index_add_(0, target, weighted)  # sum over each target's incoming edges
        return out, attention


def edge_softmax(scores, target, num_nodes):
    """Softmax of per-edge scores [E, H] over the edges that share a target node.

    Each neighbourhood subtracts its own maximum before exp. One global maximum would be wrong in
    practice: a neighbourhood whose scores lie far below it would underflow to exp(...) = 0 and
    get zero (or NaN) attention. The maximum is a constant shift, so it is detached: the gradient
    of softmax does not depend on it.
    """
    num_heads = scores.shape[1]
    index = target.unsqueeze(-1).expand_as(scores)
    max_per_target = scores.new_full((num_nodes, num_heads), float("-inf"))
    max_per_target = max_per_target.scatter_reduce(0, index, scores.detach(), reduce="amax",
                                                   include_self=False)
    exp_scores = (scores - max_per_target.index_select(0, target)).exp()
    denominator = scores.new_zeros((num_nodes, num_heads)).index_add_(0, target, exp_scores)
    # Every target that has an edge has denominator >= 1 (its max term is exp(0)).
    return exp_scores / denominator.index_select(0, target)


def _is_sparse(tensor):
    return tensor.layout != torch.strided


def _apply_linear(linear, node_features):
    """linear(x) for a dense x; a sparse-dense product for a sparse x (same result, far fewer FLOPs)."""
    if _is_sparse(node_features):
        return torch.sparse.mm(node_features, linear.weight.t())
    return linear(node_features)


def _csr_with_values(csr, values):
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it works for what we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), values, csr.shape,
                                       check_invariants=False)


LAYER_CLASSES = {LayerType.IMP1: GATLayerImp1, LayerType.IMP2: GATLayerImp2, LayerType.IMP3: GATLayerImp3}
