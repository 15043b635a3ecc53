"""The GAT layer, three times: two dense implementations to read, one edge-list implementation to use.

Every layer computes, for each target node i and head k (Veličković et al., 2018, eqs. 1-5):

    e_ij     = LeakyReLU( a_k^T [W_k h_i || W_k h_j] )      for every edge j -> i        (eq. 1, "gat")
    alpha_ij = softmax_j(e_ij)                              over i's incoming neighbourhood  (eq. 2)
    h_i'     = sigma( sum_j alpha_ij W_k h_j )              concatenated (hidden) or averaged (output)  (eqs. 4-6)

With attention_type="gatv2" (Brody, Alon & Yahav, ICLR 2022) the score applies the non-linearity
*before* the attention vector, with a separate target projection W_t:

    e_ij   = a_k^T LeakyReLU( W_k h_j + W_t,k h_i )                                     ("gatv2")

GAT's score is a_target . W h_i + a_source . W h_j passed through a monotonic function, so every
target ranks its neighbours j in the same order (by a_source . W h_j): its attention is *static*.
GATv2's ranking can depend on i: *dynamic* attention.

`GATLayer` owns the parameters and everything that is the same in all three (dropout, projection,
skip connection, bias, activation). The subclasses differ only in `_attend`: how the attention
scores become a per-neighbourhood softmax and how neighbours are aggregated. IMP1 and IMP2 write it
with dense N x N tensors; IMP3 calls one op per equation from models/fast_ops.py, where each op's
docstring gives the plain PyTorch expression it equals and why the fast version exists.

Shapes: N nodes, E edges, H heads, F_in / F_out features. `edge_index` is a LongTensor [2, E] with
row 0 the source j and row 1 the target i of each edge j -> i. Layers use it as given: self loops
must be in it (the loaders add them) and duplicate edges would be counted twice.
"""

import enum

import torch
import torch.nn as nn

from models.fast_ops import (FastDropout, IdentityCache, TargetSortedEdges, gat_edge_scores, gat_score_halves,
                             gatv2_edge_scores, is_sparse, neighbourhood_softmax, neighbourhood_sum, project,
                             transposed_csr_pattern)


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


ATTENTION_TYPES = ("gat", "gatv2")


class GATLayer(nn.Module):
    """Base class: parameters and the shared parts of the forward pass.

    Input:  node_features [N, F_in] (dense, or a sparse COO/CSR tensor), edge_index [2, E].
    Output: [N, H * F_out] if concat else [N, F_out].
    With log_attention_weights=True the layer keeps its last attention as `attention_weights`,
    a detached tensor [E, H] aligned with the columns of edge_index.

    needed_rows (optional): a bool mask [N] of the nodes whose output rows are needed (GAT.forward's
    output_nodes sets it). IMP3 with GAT attention then does the per-edge work (scores, softmax,
    aggregation) only for the edges into those nodes, and the other rows of its output are not
    meaningful; every other case computes all rows. The needed rows are bit-for-bit those of the full pass.
    """

    def __init__(self, num_in_features, num_out_features, num_heads, concat=True, activation=None,
                 dropout_prob=0.6, add_skip_connection=True, bias=True, log_attention_weights=False,
                 attention_type="gat"):
        super().__init__()
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"unknown attention type {attention_type!r}; choose one of {', '.join(ATTENTION_TYPES)}")
        self.attention_type = attention_type
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
        if attention_type == "gat":
            # a in the paper, split into the half that multiplies W h_j (source) and the half that
            # multiplies W h_i (target): a^T [W h_i || W h_j] = a_target . W h_i + a_source . W h_j.
            # Each half is computed once per node and only combined per edge.
            self.scoring_fn_target = nn.Parameter(torch.empty(1, num_heads, num_out_features))
            self.scoring_fn_source = nn.Parameter(torch.empty(1, num_heads, num_out_features))
        else:
            # GATv2: W_t projects the target, W (above) the source; a is applied after the LeakyReLU,
            # so it cannot be split into per-node halves: scores need W h_j + W_t h_i per edge.
            self.linear_proj_target = nn.Linear(num_in_features, num_heads * num_out_features, bias=False)
            self.scoring_fn = nn.Parameter(torch.empty(1, num_heads, num_out_features))
        out_size = num_heads * num_out_features if concat else num_out_features
        self.bias = nn.Parameter(torch.empty(out_size)) if bias else None
        self.skip_proj = (nn.Linear(num_in_features, num_heads * num_out_features, bias=False)
                          if add_skip_connection else None)

        self.leaky_relu = nn.LeakyReLU(0.2)
        self.dropout = FastDropout(p=dropout_prob)  # nn.Dropout's distribution, drawn faster
        self._graph_cache = IdentityCache()  # what _graph_data built, per edge_index (and needed_rows)
        self.reset_parameters()

    def reset_parameters(self):
        # Glorot (Xavier) uniform, as in the paper's TensorFlow code.
        nn.init.xavier_uniform_(self.linear_proj.weight)
        if self.attention_type == "gat":
            nn.init.xavier_uniform_(self.scoring_fn_target)
            nn.init.xavier_uniform_(self.scoring_fn_source)
        else:
            nn.init.xavier_uniform_(self.linear_proj_target.weight)
            nn.init.xavier_uniform_(self.scoring_fn)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        if self.skip_proj is not None:
            nn.init.xavier_uniform_(self.skip_proj.weight)

    def forward(self, node_features, edge_index, needed_rows=None):
        num_nodes = node_features.shape[0]
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")

        sparse_pattern = self._sparse_input_pattern(node_features)  # (IMP3's cache; None elsewhere)
        node_features = self.dropout(node_features)
        # W h: [N, F_in] -> [N, H, F_out]
        projected = project(self.linear_proj.weight, node_features, sparse_pattern).view(
            num_nodes, self.num_heads, self.num_out_features)

        if self.attention_type == "gat":
            # [N, H] each: a_source . W h_j and a_target . W h_i, the two halves of eq. (1), once per node.
            source_terms, target_terms = gat_score_halves(projected, self.scoring_fn_source, self.scoring_fn_target)
        else:
            # [N, H, F_out] each: GATv2 combines whole projections per edge, W h_j and W_t h_i.
            source_terms = projected
            target_terms = project(self.linear_proj_target.weight, node_features, sparse_pattern).view(
                num_nodes, self.num_heads, self.num_out_features)
        # As in the paper's code: the scores use the projection before dropout; the features that
        # are aggregated are dropped out (a second dropout, after the one on the layer's input).
        projected = self.dropout(projected)

        # [N, H, F_out] aggregated features, [E, H] attention per edge
        out, attention = self._attend(projected, source_terms, target_terms, edge_index, needed_rows)
        if self.log_attention_weights:
            self.attention_weights = attention.detach()

        return self._finish(node_features, out, sparse_pattern)

    def _attend(self, projected, source_terms, target_terms, edge_index, needed_rows=None):
        """Return (aggregated [N, H, F_out], attention [E, H] aligned with edge_index). The attention is
        needed only when the layer logs it (log_attention_weights); otherwise it may be None.

        projected: W h after dropout [N, H, F_out]. source_terms, target_terms: what each node brings to the
        scores of its outgoing and incoming edges; "gat": the two halves a_source . W h, a_target . W h [N, H];
        "gatv2": the projections W h, W_t h [N, H, F_out]. needed_rows: see the class docstring; an
        implementation may ignore it and compute every row."""
        raise NotImplementedError

    def _graph_data(self, edge_index, key, build, needed_rows=None):
        """Per-graph precomputation (the dense mask, IMP3's edge layout), built on the first forward
        pass and reused for as long as the same, unmodified edge_index (and needed_rows) tensor comes in."""
        return self._graph_cache.get((edge_index, needed_rows), key, build)

    def _sparse_input_pattern(self, node_features):
        """What the projection of a sparse CSR input may reuse from call to call; the readable layers keep
        nothing (project() then builds it each time), IMP3 caches it."""
        return None

    def _finish(self, node_features, out, sparse_pattern=None):
        """Skip connection, concat/average heads, bias, activation. out: [N, H, F_out]."""
        num_nodes = out.shape[0]
        if self.add_skip_connection:
            if node_features.shape[-1] == self.num_out_features:
                # Same width: add the input itself to every head.
                dense_input = node_features.to_dense() if is_sparse(node_features) else node_features
                out = out + dense_input.unsqueeze(1)
            else:
                skip = project(self.skip_proj.weight, node_features, sparse_pattern)
                out = out + skip.view(num_nodes, self.num_heads, self.num_out_features)

        # [N, H, F_out] -> [N, H * F_out] (hidden layers) or [N, F_out] (output layer)
        if self.concat or self.num_heads == 1:  # (the mean of one head is that head, to the bit)
            out = out.reshape(num_nodes, -1)
        else:
            out = out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        return out if self.activation is None else self.activation(out)


class _DenseGATLayer(GATLayer):
    """Shared by the dense layers: the N x N mask built from edge_index, once per graph."""

    # Refuse graphs whose N x N x H score tensors would not fit comfortably: these layers exist to
    # be read, IMP3 is for scale.
    max_dense_bytes = 4 * 2 ** 30

    def _attention_mask(self, edge_index, num_nodes, device, dtype):
        """[N, N] additive mask: 0 where edge j -> i exists (row i = target, column j = source),
        -inf elsewhere."""
        per_pair = self.num_heads * (self.num_out_features if self.attention_type == "gatv2" else 1)
        needed = 3 * num_nodes * num_nodes * per_pair * torch.finfo(dtype).bits // 8
        if needed > self.max_dense_bytes:
            raise MemoryError(
                f"{type(self).__name__} would allocate ~{needed / 2 ** 30:.1f} GiB of N x N attention "
                f"for N={num_nodes} nodes and {self.num_heads} heads; use --layer_type IMP3, the "
                f"edge-list implementation, for graphs of this size.")
        return self._graph_data(edge_index, (num_nodes, device, dtype),
                                lambda: _build_attention_mask(edge_index, num_nodes, device, dtype))


def _build_attention_mask(edge_index, num_nodes, device, dtype):
    mask = torch.full((num_nodes, num_nodes), float("-inf"), device=device, dtype=dtype)
    mask[edge_index[1], edge_index[0]] = 0.0
    has_incoming = torch.isfinite(mask).any(dim=1)
    if not bool(has_incoming.all()):
        missing = (~has_incoming).nonzero().flatten()[:5].tolist()
        raise ValueError(f"nodes {missing}... have no incoming edge, so their attention is "
                         f"undefined; add self loops to edge_index")
    return mask


class GATLayerImp1(_DenseGATLayer):
    """Dense, heads first. Easiest to map onto the equations: one N x N attention matrix per head."""

    def _attend(self, projected, source_terms, target_terms, edge_index, needed_rows=None):
        num_nodes = projected.shape[0]
        mask = self._attention_mask(edge_index, num_nodes, projected.device, projected.dtype)
        if self.attention_type == "gat":
            # [H, N, 1] + [H, 1, N] -> [H, N, N]; entry (k, i, j) scores edge j -> i for head k.
            all_scores = self.leaky_relu(target_terms.t().unsqueeze(-1) + source_terms.t().unsqueeze(1))
        else:
            # [H, N, 1, F] + [H, 1, N, F] -> [H, N, N, F], then a_k . (...) -> [H, N, N]
            pre_activation = target_terms.transpose(0, 1).unsqueeze(2) + source_terms.transpose(0, 1).unsqueeze(1)
            all_scores = (self.leaky_relu(pre_activation) * self.scoring_fn.view(self.num_heads, 1, 1, -1)).sum(-1)
        # Softmax over each row = over each target's neighbourhood (torch subtracts the row max).
        attention = torch.softmax(all_scores + mask, dim=-1)
        attention_dropped = self.dropout(attention)
        # [H, N, N] @ [H, N, F_out] -> [H, N, F_out] -> [N, H, F_out]
        out = torch.bmm(attention_dropped, projected.transpose(0, 1)).transpose(0, 1)
        return out, attention[:, edge_index[1], edge_index[0]].t()


class GATLayerImp2(_DenseGATLayer):
    """Dense, heads last. The same computation laid out as [N, N, H] with broadcasting."""

    def _attend(self, projected, source_terms, target_terms, edge_index, needed_rows=None):
        num_nodes = projected.shape[0]
        mask = self._attention_mask(edge_index, num_nodes, projected.device, projected.dtype)
        if self.attention_type == "gat":
            # [N, 1, H] + [1, N, H] -> [N, N, H]; entry (i, j, k) scores edge j -> i for head k.
            all_scores = self.leaky_relu(target_terms.unsqueeze(1) + source_terms.unsqueeze(0))
        else:
            # [N, 1, H, F] + [1, N, H, F] -> [N, N, H, F], then a_k . (...) -> [N, N, H]
            all_scores = (self.leaky_relu(target_terms.unsqueeze(1) + source_terms.unsqueeze(0))
                          * self.scoring_fn).sum(-1)
        attention = torch.softmax(all_scores + mask.unsqueeze(-1), dim=1)  # over sources j
        attention_dropped = self.dropout(attention)
        # sum_j alpha_ijk * Wh_jk : [N, N, H] x [N, H, F_out] -> [N, H, F_out]
        out = torch.einsum("ijh,jhf->ihf", attention_dropped, projected)
        return out, attention[edge_index[1], edge_index[0]]


class GATLayerImp3(GATLayer):
    """Edge list: scores only where edges exist, a softmax per target neighbourhood, a weighted sum.

    Memory and time grow with E instead of N^2; this is the implementation to train with. The
    arithmetic is the same as IMP1's. Each step below is one op of models/fast_ops.py; what makes them
    fast is laying the edges out by target once per graph (`TargetSortedEdges`), so that the softmax is a
    segment reduction and the aggregation a gather-sum that never materialises an [E, H, F_out] tensor.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._input_cache = None  # (sparse input features, their transposed pattern)

    def _sparse_input_pattern(self, node_features):
        """For a sparse CSR input: the transposed pattern the projection's backward pass needs, built
        once and reused while the same input tensor comes in (dropout changes values, not the pattern)."""
        if node_features.layout != torch.sparse_csr:
            return None
        cached = self._input_cache
        if cached is None or cached[0] is not node_features:
            self._input_cache = cached = (node_features, transposed_csr_pattern(node_features))
        return cached[1]

    def _attend(self, projected, source_terms, target_terms, edge_index, needed_rows=None):
        num_nodes = projected.shape[0]
        if self.attention_type != "gat" or self.log_attention_weights:
            # GATv2's backward sums its attention vector's gradient over all edges at once: leaving out
            # edges with zero gradient would change that sum's rounding. Logged attention covers every edge.
            needed_rows = None
        # The edges sorted by target (only those into the needed rows, when given), built once per graph.
        edges = self._graph_data(edge_index, (num_nodes, self.num_heads),
                                 lambda: TargetSortedEdges(edge_index, num_nodes, self.num_heads, needed_rows),
                                 needed_rows)
        slope = self.leaky_relu.negative_slope

        if self.attention_type == "gat":
            # eq. (1), [E, H]: e_ij = LeakyReLU(a_target . W h_i + a_source . W h_j)
            scores = gat_edge_scores(source_terms, target_terms, edges, slope)
        else:
            # GATv2, [E, H]: e_ij = a . LeakyReLU(W h_j + W_t h_i)
            scores = gatv2_edge_scores(source_terms, target_terms, self.scoring_fn, edges, slope)
        # eq. (2), [E, H]: alpha_ij = softmax of e_ij over the edges into i
        attention = neighbourhood_softmax(scores, edges)
        # (with only some edges kept: the dropout mask of the whole [E, H] attention, at the kept edges)
        attention_dropped = self.dropout(attention, edges.kept, edges.num_all_edges)
        # eq. (3) before sigma, [N, H, F_out]: sum over edges j -> i of alpha_ij W h_j
        out = neighbourhood_sum(attention_dropped, projected, edges)

        # Back in edge_index's order only when it is logged: on an unsorted graph that is a pass over [E, H].
        return out, edges.in_input_order(attention) if self.log_attention_weights else None


LAYER_CLASSES = {LayerType.IMP1: GATLayerImp1, LayerType.IMP2: GATLayerImp2, LayerType.IMP3: GATLayerImp3}
