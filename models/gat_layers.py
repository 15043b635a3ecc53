"""The GAT layer, four times: two dense implementations to read, one edge-list implementation to use, and one
written with PyTorch's sparse API.

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

With edge features (edge_dim=D, and forward(..., edge_attr=[E, D]), PyG's convention) each edge's features
e_ij enter the score through a projection W_e to the heads; GAT's attention vector gains an edge part a_edge:

    e_ij   = LeakyReLU( a_k^T [W_k h_i || W_k h_j || W_e,k e_ij] )                         ("gat")
    e_ij   = a_k^T LeakyReLU( W_k h_j + W_t,k h_i + W_e,k e_ij )                              ("gatv2")

They shape the attention only; what is aggregated is still W_k h_j.

`GATLayer` owns the parameters and everything that is the same in all four (dropout, projection,
skip connection, bias, activation). The subclasses differ only in `_attend`: how the attention
scores become a per-neighbourhood softmax and how neighbours are aggregated. IMP1 and IMP2 write it
with dense N x N tensors; IMP3 calls one op per equation from models/fast_ops.py, each the promise to equal
the plain expression of the same name in models/plain_ops.py; IMP4 puts the scores in a sparse tensor and
lets torch.sparse do the softmax and the aggregation.

Shapes: N nodes, E edges, H heads, F_in / F_out features. The graph is a models.Graph (models/graph.py): an
edge_index [2, E] (row 0 the source j, row 1 the target i of each edge j -> i, self loops, no duplicates),
checked once, and the layouts the layers ask it for, built once. A plain edge_index is wrapped anew per call.
"""

import enum

import torch
import torch.nn as nn

from .dropout import FastDropout
from .fast_ops import (gat_edge_scores, gat_score_halves, gatv2_edge_scores, neighbourhood_softmax, neighbourhood_sum,
                       project, sparse_dense_product)
from .layer_inputs import check_edge_attr, check_node_features, graph_for_layer
from .sparse_features import is_sparse


class LayerType(enum.Enum):
    IMP1 = "IMP1"  # dense, heads first: [H, N, N] scores, batched matmul
    IMP2 = "IMP2"  # dense, heads last: [N, N, H] scores, broadcasting + einsum
    IMP3 = "IMP3"  # edge list: [E, H] scores, scatter softmax and scatter-add (the default)
    IMP4 = "IMP4"  # PyTorch's sparse API: a sparse [H, N, N] score tensor, torch.sparse.softmax, sparse @ dense

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
    """Base class: parameters and the shared parts of the forward pass (inputs and outputs: `forward`).
    With log_attention_weights=True the layer also keeps its last attention as `attention_weights`, detached.

    A graph for some rows only (Graph.needed_rows: a GAT given graph.restricted_to(...) hands each layer one):
    IMP3 with GAT attention then does the per-edge work (scores, softmax, aggregation) only for the edges
    into those rows, and the other rows of its output are not meaningful; every other case computes all rows.
    The needed rows are bit-for-bit those of the full pass.
    """

    def __init__(self, num_in_features, num_out_features, num_heads, concat=True, activation=None,
                 dropout_prob=0.6, add_skip_connection=True, bias=True, log_attention_weights=False,
                 attention_type="gat", edge_dim=None):
        super().__init__()
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"unknown attention type {attention_type!r}; choose one of {', '.join(ATTENTION_TYPES)}")
        if edge_dim is not None and (isinstance(edge_dim, bool) or not isinstance(edge_dim, int) or edge_dim < 1):
            raise ValueError(f"edge_dim must be a positive number of edge features (or None), got {edge_dim!r}")
        self.attention_type = attention_type
        self.edge_dim = edge_dim
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
        if edge_dim is not None:
            # W_e: each edge's features projected to every head, like W h for the nodes. GAT scores the
            # projection with its own part of a, a_edge; GATv2 adds it to W h_j + W_t h_i.
            self.linear_proj_edge = nn.Linear(edge_dim, num_heads * num_out_features, bias=False)
            if attention_type == "gat":
                self.scoring_fn_edge = nn.Parameter(torch.empty(1, num_heads, num_out_features))

        self.leaky_relu = nn.LeakyReLU(0.2)
        self.dropout = FastDropout(p=dropout_prob)  # nn.Dropout's distribution, drawn faster
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
        if self.edge_dim is not None:  # last: a layer without edge features draws what it always drew
            nn.init.xavier_uniform_(self.linear_proj_edge.weight)
            if self.attention_type == "gat":
                nn.init.xavier_uniform_(self.scoring_fn_edge)

    def forward(self, node_features, edge_index, edge_attr=None, needed_rows=None, return_attention_weights=False):
        """One GAT layer: every node attends over its incoming edges, per head, and aggregates its sources.

        node_features: [N, F_in], dense or sparse (COO or CSR). edge_index: a models.Graph, built once (the fast
        path), or a plain edge_index [2, E] (row 0 source j, row 1 target i of each edge j -> i, self loops, no
        duplicates; models.gat_edge_index makes any edge list fit), wrapped in a new Graph, and so checked, on
        every call. edge_attr: [E, D] edge features in edge_index's column order, required with edge_dim=D (a
        Graph built with edge_attr gives its own); they take part in the scores only. needed_rows (optional): a
        bool mask [N] of the rows read, as graph.with_needed_rows(needed_rows) (see the class docstring).

        Each of the H heads computes its own attention and its own F_out features per node. concat=True
        (hidden layers) returns the heads side by side, [N, H * F_out]; concat=False (an output layer) their
        mean, [N, F_out]. Then the skip connection, bias and activation given to the constructor.

        return_attention_weights=True returns (output, attention): attention [E, H], the softmax weights of
        each edge (before dropout) aligned with edge_index's columns, part of the autograd graph.
        """
        num_nodes = node_features.shape[0]
        with_attention = return_attention_weights or self.log_attention_weights
        graph = graph_for_layer(edge_index, num_nodes, needed_rows, self._skips_unneeded_rows(with_attention))
        check_node_features(node_features, self.num_in_features, self.linear_proj.weight.dtype)
        edge_terms = self._edge_terms(graph.edge_attr if edge_attr is None else edge_attr, graph.num_edges,
                                      given=edge_attr is not None)  # None without edge features

        # (a CSR input's pattern for the projection's backward pass: read before dropout, which makes a new tensor)
        sparse_pattern = getattr(node_features, "transposed_pattern", None)
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
        out, attention = self._attend(projected, source_terms, target_terms, graph, edge_terms=edge_terms,
                                      with_attention=with_attention)
        if self.log_attention_weights:
            self.attention_weights = attention.detach()

        out = self._finish(node_features, out, sparse_pattern)
        return (out, attention) if return_attention_weights else out

    def build_layouts(self, graph):
        """Build now the layouts this layer will ask `graph` for (e.g. on the CPU, before the graph moves to a GPU);
        without this, the first forward pass builds them."""

    def _skips_unneeded_rows(self, with_attention):
        """Whether this layer computes only the rows a restricted graph needs (else it is given the whole graph)."""
        return False

    def _edge_terms(self, edge_attr, num_edges, given=True):
        """What each edge's features add to its score (None without edge features), in edge_index's order:
        "gat": a_edge . W_e e_ij [E, H]; "gatv2": W_e e_ij [E, H, F_out]."""
        check_edge_attr(edge_attr, num_edges, self.edge_dim,
                        None if self.edge_dim is None else self.linear_proj_edge.weight.dtype, given)
        if self.edge_dim is None:
            return None
        # [E, D] -> [E, H, F_out]
        projected_edges = self.linear_proj_edge(edge_attr).view(num_edges, self.num_heads, self.num_out_features)
        if self.attention_type == "gat":
            return (projected_edges * self.scoring_fn_edge).sum(dim=-1)  # [E, H]
        return projected_edges

    def _attend(self, projected, source_terms, target_terms, graph, edge_terms=None, with_attention=False):
        """Return (aggregated [N, H, F_out], attention [E, H] aligned with edge_index). The attention is
        needed only when with_attention is set; otherwise it may be None.

        projected: W h after dropout [N, H, F_out]. source_terms, target_terms: what each node brings to the
        scores of its outgoing and incoming edges; "gat": the two halves a_source . W h, a_target . W h [N, H];
        "gatv2": the projections W h, W_t h [N, H, F_out]. graph: the models.Graph, whose layouts an
        implementation asks for. edge_terms: None, or what each edge's features add before the LeakyReLU, in
        edge_index's order ([E, H] for "gat", [E, H, F_out] for "gatv2")."""
        raise NotImplementedError

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
    """Shared by the dense layers: the N x N mask the graph keeps (Graph.attention_mask)."""

    # Refuse graphs whose N x N x H score tensors would not fit comfortably: these layers exist to
    # be read, IMP3 is for scale.
    max_dense_bytes = 4 * 2 ** 30

    def build_layouts(self, graph):
        graph.attention_mask(self.linear_proj.weight.dtype)

    def _attention_mask(self, graph, dtype):
        """[N, N] additive mask: 0 where edge j -> i exists (row i = target, column j = source),
        -inf elsewhere."""
        num_nodes = graph.num_nodes
        per_pair = self.num_heads * (self.num_out_features if self.attention_type == "gatv2" else 1)
        needed = 3 * num_nodes * num_nodes * per_pair * torch.finfo(dtype).bits // 8
        if needed > self.max_dense_bytes:
            raise MemoryError(
                f"{type(self).__name__} would allocate ~{needed / 2 ** 30:.1f} GiB of N x N attention "
                f"for N={num_nodes} nodes and {self.num_heads} heads; use --layer_type IMP3, the "
                f"edge-list implementation, for graphs of this size.")
        return graph.attention_mask(dtype)


def _dense_edge_terms(edge_terms, edge_index, num_nodes):
    """[E, ...] per edge -> [N, N, ...] with entry (i, j) the term of edge j -> i, zero where there is no edge
    (those entries are masked out anyway). Of duplicate edges, one's term lands there."""
    dense = edge_terms.new_zeros((num_nodes, num_nodes) + tuple(edge_terms.shape[1:]))
    return dense.index_put((edge_index[1], edge_index[0]), edge_terms)


class GATLayerImp1(_DenseGATLayer):
    """Dense, heads first. Easiest to map onto the equations: one N x N attention matrix per head."""

    def _attend(self, projected, source_terms, target_terms, graph, edge_terms=None, with_attention=False):
        num_nodes, edge_index = projected.shape[0], graph.edge_index
        mask = self._attention_mask(graph, projected.dtype)
        if self.attention_type == "gat":
            # [H, N, 1] + [H, 1, N] -> [H, N, N]; entry (k, i, j) scores edge j -> i for head k.
            pre_activation = target_terms.t().unsqueeze(-1) + source_terms.t().unsqueeze(1)
            if edge_terms is not None:  # [E, H] -> [N, N, H] -> [H, N, N]
                pre_activation = pre_activation + _dense_edge_terms(edge_terms, edge_index, num_nodes).permute(2, 0, 1)
            all_scores = self.leaky_relu(pre_activation)
        else:
            # [H, N, 1, F] + [H, 1, N, F] -> [H, N, N, F], then a_k . (...) -> [H, N, N]
            pre_activation = target_terms.transpose(0, 1).unsqueeze(2) + source_terms.transpose(0, 1).unsqueeze(1)
            if edge_terms is not None:  # [E, H, F] -> [N, N, H, F] -> [H, N, N, F]
                dense_edge_terms = _dense_edge_terms(edge_terms, edge_index, num_nodes)
                pre_activation = pre_activation + dense_edge_terms.permute(2, 0, 1, 3)
            all_scores = (self.leaky_relu(pre_activation) * self.scoring_fn.view(self.num_heads, 1, 1, -1)).sum(-1)
        # Softmax over each row = over each target's neighbourhood (torch subtracts the row max).
        attention = torch.softmax(all_scores + mask, dim=-1)
        attention_dropped = self.dropout(attention)
        # [H, N, N] @ [H, N, F_out] -> [H, N, F_out] -> [N, H, F_out]
        out = torch.bmm(attention_dropped, projected.transpose(0, 1)).transpose(0, 1)
        return out, attention[:, edge_index[1], edge_index[0]].t()


class GATLayerImp2(_DenseGATLayer):
    """Dense, heads last. The same computation laid out as [N, N, H] with broadcasting."""

    def _attend(self, projected, source_terms, target_terms, graph, edge_terms=None, with_attention=False):
        num_nodes, edge_index = projected.shape[0], graph.edge_index
        mask = self._attention_mask(graph, projected.dtype)
        # [N, 1, H] + [1, N, H] -> [N, N, H] (GAT), or [N, 1, H, F] + [1, N, H, F] -> [N, N, H, F] (GATv2);
        # entry (i, j, k) belongs to edge j -> i and head k.
        pre_activation = target_terms.unsqueeze(1) + source_terms.unsqueeze(0)
        if edge_terms is not None:  # [E, ...] -> [N, N, ...], laid out as the scores already are
            pre_activation = pre_activation + _dense_edge_terms(edge_terms, edge_index, num_nodes)
        if self.attention_type == "gat":
            all_scores = self.leaky_relu(pre_activation)
        else:
            # a_k . (...) -> [N, N, H]
            all_scores = (self.leaky_relu(pre_activation) * self.scoring_fn).sum(-1)
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

    def build_layouts(self, graph):
        graph.edges_by_target(self.num_heads)

    def _skips_unneeded_rows(self, with_attention):
        # GATv2's backward sums its attention vector's gradient over all edges at once (and W_e's gradient sums
        # over all edges): leaving out edges with zero gradient would change that sum's rounding. Returned or
        # logged attention covers every edge.
        return self.attention_type == "gat" and self.edge_dim is None and not with_attention

    def _attend(self, projected, source_terms, target_terms, graph, edge_terms=None, with_attention=False):
        # The edges sorted by target (only those into the rows needed, for a restricted graph), built once per graph
        # and shared by the graph's layers with the same number of heads.
        edges = graph.edges_by_target(self.num_heads)
        slope = self.leaky_relu.negative_slope
        if edge_terms is not None:  # [E, ...] from edge_index's order to the edges' sorted order
            edge_terms = edges.in_sorted_order(edge_terms)

        if self.attention_type == "gat":
            # eq. (1), [E, H]: e_ij = LeakyReLU(a_target . W h_i + a_source . W h_j (+ a_edge . W_e e_ij))
            scores = gat_edge_scores(source_terms, target_terms, edges, slope, edge_terms)
        else:
            # GATv2, [E, H]: e_ij = a . LeakyReLU(W h_j + W_t h_i (+ W_e e_ij))
            scores = gatv2_edge_scores(source_terms, target_terms, self.scoring_fn, edges, slope, edge_terms)
        # eq. (2), [E, H]: alpha_ij = softmax of e_ij over the edges into i
        attention = neighbourhood_softmax(scores, edges)
        # (with only some edges kept: the dropout mask of the whole [E, H] attention, at the kept edges)
        attention_dropped = self.dropout(attention, edges.kept, edges.num_all_edges)
        # eq. (3) before sigma, [N, H, F_out]: sum over edges j -> i of alpha_ij W h_j
        out = neighbourhood_sum(attention_dropped, projected, edges)

        # Back in edge_index's order only when it is wanted: on an unsorted graph that is a pass over [E, H].
        return out, edges.in_input_order(attention) if with_attention else None


class GATLayerImp4(GATLayer):
    """PyTorch's sparse API: each head's scores are a sparse N x N matrix with an entry per edge.

    The same arithmetic as IMP1, but only the E stored entries exist: the scores are computed per edge (as
    IMP3 does, with plain gathers), put into one batched sparse COO tensor [H, N, N] (entry (k, i, j): edge
    j -> i, head k), `torch.sparse.softmax` normalises each row (a target's incoming edges, over stored entries
    only, so no mask is needed), and one batched sparse @ dense product, `torch.bmm`, aggregates. The sparse
    tensor's index, sorted as a coalesced tensor needs it, is built once per graph (Graph.sparse_pattern).

    Autograd differentiates through all of it but the product: its own backward pass with respect to the
    sparse operand multiplies grad_out @ features^T densely, [H, N, N], and only then keeps the stored entries
    (sparse_mask), memory quadratic in N. `sparse_dense_product` (models/fast_ops.py) gives the product a
    backward pass that stays sparse, with the API's sampled (masked) product, torch.sparse.sampled_addmm.
    """

    def build_layouts(self, graph):
        graph.sparse_pattern(self.num_heads)

    def _attend(self, projected, source_terms, target_terms, graph, edge_terms=None, with_attention=False):
        num_nodes, num_heads = projected.shape[0], self.num_heads
        pattern = graph.sparse_pattern(num_heads)
        source, target = graph.edge_index[0], graph.edge_index[1]

        if self.attention_type == "gat":
            # eq. (1), [E, H]: e_ij = LeakyReLU(a_source . W h_j + a_target . W h_i (+ a_edge . W_e e_ij))
            pre_activation = source_terms.index_select(0, source) + target_terms.index_select(0, target)
            if edge_terms is not None:
                pre_activation = pre_activation + edge_terms
            scores = self.leaky_relu(pre_activation)
        else:
            # GATv2: [E, H, F_out] pre-activation W h_j + W_t h_i (+ W_e e_ij), then a . LeakyReLU(...) -> [E, H]
            pre_activation = source_terms.index_select(0, source) + target_terms.index_select(0, target)
            if edge_terms is not None:
                pre_activation = pre_activation + edge_terms
            scores = (self.leaky_relu(pre_activation) * self.scoring_fn).sum(dim=-1)

        # [E, H] -> one score per distinct edge [P, H] -> heads first, flattened [H * P]: the sparse values, in the
        # coalesced order of the pattern's indices [3, H * P] (head, target, source).
        values = scores.index_select(0, pattern.first_edge).t().reshape(-1)
        score_matrix = torch.sparse_coo_tensor(pattern.indices, values, (num_heads, num_nodes, num_nodes),
                                               is_coalesced=True, check_invariants=False)
        # eq. (2), sparse [H, N, N]: softmax along dim 2, each row i over its stored entries (i's incoming edges)
        attention_matrix = torch.sparse.softmax(score_matrix, dim=2)
        attention = attention_matrix.values()  # [H * P], same indices as the scores
        # eq. (3) before sigma: sparse [H, N, N] (the dropped-out attention) @ dense [H, N, F_out] -> [H, N, F_out]
        # -> [N, H, F_out]
        out = sparse_dense_product(self.dropout(attention), projected.transpose(0, 1), pattern).transpose(0, 1)

        if not with_attention:
            return out, None
        # [H * P] -> [P, H] -> [E, H]: every edge (a duplicate too) gets its pair's attention, in edge_index's order
        return out, attention.view(num_heads, -1).t().index_select(0, pattern.pair_of_edge)


LAYER_CLASSES = {LayerType.IMP1: GATLayerImp1, LayerType.IMP2: GATLayerImp2, LayerType.IMP3: GATLayerImp3,
                 LayerType.IMP4: GATLayerImp4}
