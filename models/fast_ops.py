"""The fast ops behind the GAT layers. Each one equals a plain PyTorch expression; this file is why they are fast.

A reader of models/gat_layers.py needs none of this: every op below is a promise to compute exactly the
plain expression next to its name (tests/models/test_fast_ops.py checks each one against it, forward and gradient,
through one chunk and through many). Shapes: N nodes, E edges, H heads, F features; `edges` is a
TargetSortedEdges, the edge list laid out once per graph.

Each op, the plain expression it equals, and why the fast version exists (what each gains, with the command that
measures it: docs/performance.md, "What makes IMP3 fast"):

    project(weight, x)                         x @ weight.T, for x dense, sparse COO or sparse CSR
        sparse CSR x: two weighted gather-sums instead of torch.sparse.mm, and far cheaper than a dense x
    gat_score_halves(p, a_src, a_tgt)          ((p * a_src).sum(-1), (p * a_tgt).sum(-1))
        large graphs: one [N, H, F] product buffer instead of four fresh tensors (page faults)
    gat_edge_scores(s, t, edges, slope)        leaky_relu(s[edges.source] + t[edges.target], slope)
        backward as segment sums instead of two zero-filled index_add_ scatters
    gatv2_edge_scores(s, t, a, edges, slope)   (leaky_relu(s[edges.source] + t[edges.target], slope) * a).sum(-1)
        the [E, H, F] pre-activation only ever exists one chunk at a time, forward and backward
    neighbourhood_softmax(scores, edges)       edge_softmax(scores, edges.target, N): a softmax per target
        segment reductions over contiguous targets; a 5-kernel backward instead of autograd's dozen
    neighbourhood_sum(att, feat, edges)        zeros(N, H, F).index_add_(0, edges.target,
                                                                         att[..., None] * feat[edges.source])
        never builds [E, H, F]: weighted gather-sums (embedding_bag)
    FastDropout(p)                             nn.Dropout(p): the same distribution (a sparse input: its values)
        rand + compare instead of bernoulli_, whose CPU path costs about twice as much per element; on a GPU
        (whole tensors) PyTorch's fused dropout kernel

Three things recur below:
- *Segment sums* with F.embedding_bag(mode="sum"): the same additions in the same order as index_add_, so
  bit-identical, and much faster on CPU for a few heads per row.
- *Chunks* of at most CHUNK_ELEMENTS floats for every temporary that grows with E: malloc reuses such blocks,
  where a larger one is fresh memory whose pages the kernel must zero on every step.
- *No autograd bookkeeping without gradients*: under torch.no_grad the Functions' forward passes run directly
  (`_run`).
"""

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

# On the CPU, temporaries of at most this many floats (16 MiB): malloc keeps reusing such blocks, where every
# larger one is fresh memory whose pages the kernel must zero on every step.
CHUNK_ELEMENTS = 1 << 22
# On CUDA the caching allocator reuses blocks of any size, so chunks only bound the memory of the largest
# temporaries (1 GiB of float32): one chunk, PyTorch's plain kernels, up to a few 10^7 edges x heads.
CUDA_CHUNK_ELEMENTS = 1 << 28


def chunk_elements(device):
    """How many floats one chunk of a temporary may hold on this device."""
    return CHUNK_ELEMENTS if device.type == "cpu" else CUDA_CHUNK_ELEMENTS


# ----------------------------------------------------------------------------- the ops the layers call

def project(weight, node_features, transposed_pattern=None):
    """node_features @ weight.T, [N, F_in] -> [N, F_out], for a dense, sparse COO or sparse CSR input.

    A sparse CSR input goes through _SparseCSRProjection; `transposed_pattern` (transposed_csr_pattern of the
    input) saves rebuilding what its backward pass needs on every call."""
    if node_features.layout == torch.sparse_csr:
        return _run(_SparseCSRProjection, node_features, node_features.values(), weight,
                    transposed_pattern or transposed_csr_pattern(node_features))
    if is_sparse(node_features):
        return torch.sparse.mm(node_features, weight.t())
    return F.linear(node_features, weight)


def gat_score_halves(projection, a_source, a_target):
    """((projection * a_source).sum(-1), (projection * a_target).sum(-1)): [N, H, F] -> two [N, H].

    Small graphs run exactly that (autograd's own ops are quicker there); large ones the same products and
    sums through one reused buffer (_GATScoreHalves)."""
    if projection.numel() > chunk_elements(projection.device):
        return _run(_GATScoreHalves, projection, projection, a_source, a_target)
    return (projection * a_source).sum(dim=-1), (projection * a_target).sum(dim=-1)


def gat_edge_scores(source, target, edges, negative_slope, edge_terms=None):
    """[E, H]: leaky_relu(source[j] + target[i]) for every edge j -> i of `edges` (GAT's eq. 1).

    edge_terms (optional, [E, H] in the edges' sorted order, see TargetSortedEdges.in_sorted_order): added to
    each edge's sum before the leaky_relu, leaky_relu(source[j] + target[i] + edge_terms[e]) (edge features)."""
    return _run(_GATEdgeScores, source, target, edges, negative_slope, edge_terms)


def gatv2_edge_scores(source, target, attention_vector, edges, negative_slope, edge_terms=None):
    """[E, H]: (leaky_relu(source[j] + target[i]) * attention_vector).sum(-1) for every edge j -> i (GATv2).

    source, target: [N, H, F] projections; attention_vector: [1, H, F]. edge_terms (optional, [E, H, F] in the
    edges' sorted order): added to the pre-activation, leaky_relu(source[j] + target[i] + edge_terms[e])."""
    return _run(_GATv2EdgeScores, source, target, attention_vector, edges, negative_slope, edge_terms)


def neighbourhood_softmax(scores, edges):
    """[E, H]: the softmax of each target's incoming edges' scores; equals edge_softmax(scores, edges.target, N)."""
    return _run(_SortedEdgeSoftmax, scores, edges.by_target)


def neighbourhood_sum(attention, features, edges):
    """[N, H, F]: out[i] = sum over edges j -> i of attention[e] * features[j] (GAT's eq. 3 before sigma).

    Equals zeros(N, H, F).index_add_(0, edges.target, attention.unsqueeze(-1) * features[edges.source])."""
    return _run(_NeighbourhoodSum, attention, features, edges)


def edge_softmax(scores, target, num_nodes):
    """Softmax of per-edge scores [E, H] over the edges that share a target node; edges in any order.

    The plain version of neighbourhood_softmax, with scatters. Each neighbourhood subtracts its own maximum
    before exp. One global maximum would be wrong in practice: a neighbourhood whose scores lie far below it
    would underflow to exp(...) = 0 and get zero (or NaN) attention. The maximum is a constant shift, so it
    is detached: the gradient of softmax does not depend on it."""
    num_heads = scores.shape[1]
    index = target.unsqueeze(-1).expand_as(scores)
    max_per_target = scores.new_full((num_nodes, num_heads), float("-inf"))
    max_per_target = max_per_target.scatter_reduce(0, index, scores.detach(), reduce="amax", include_self=False)
    exp_scores = (scores - max_per_target.index_select(0, target)).exp()
    denominator = scores.new_zeros((num_nodes, num_heads)).index_add_(0, target, exp_scores)
    # Every target that has an edge has denominator >= 1 (its max term is exp(0)).
    return exp_scores / denominator.index_select(0, target)


class FastDropout(nn.Dropout):
    """nn.Dropout with the same distribution, drawn with torch.rand instead of bernoulli_.

    On CPU, dropout's bernoulli_ path costs about twice as much per element as rand + compare + multiply.
    The kept fraction is exactly 1 - p up to float32 resolution, as with bernoulli_.

    A sparse input (COO or CSR) has only its stored values dropped out: a zero stays zero either way, so
    this is the same distribution as dense dropout, at a fraction of the cost.
    """

    def forward(self, x, rows=None, num_rows=None):
        """With `rows`: x holds just the rows `rows` of a [num_rows, ...] tensor. The mask is then drawn for all
        num_rows rows, as for the whole tensor (the same random numbers, and the same ones left for what comes
        next), and x gets its rows of it."""
        if not self.training or self.p == 0:
            return x
        if x.layout == torch.sparse_csr:
            return csr_with_values(x, self._dense(x.values()))
        if is_sparse(x):
            x = x.coalesce()
            return torch.sparse_coo_tensor(x.indices(), self._dense(x.values()), x.shape, is_coalesced=True)
        return self._dense(x, rows, num_rows)

    def _dense(self, x, rows=None, num_rows=None):
        if self.p == 1:
            return torch.zeros_like(x)
        if rows is None and x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)  # on a GPU PyTorch's fused kernel is the fast one
        # Uniform numbers in float32 at least: in bf16 or fp16 their coarse steps would shift the kept fraction.
        draw_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        if rows is None:
            uniform = torch.rand_like(x, dtype=draw_dtype)
        else:
            uniform = torch.rand((num_rows,) + tuple(x.shape[1:]), dtype=draw_dtype, device=x.device)
            uniform = uniform.index_select(0, rows)
        # One mask holding 0 or 1/(1-p): a single multiply forward and backward.
        return x * uniform.ge_(self.p).mul_(1.0 / (1.0 - self.p)).to(x.dtype)


def is_sparse(tensor):
    return tensor.layout != torch.strided


def csr_with_values(csr, values):
    """The same sparsity pattern as `csr`, with new values (e.g. after dropout)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it works for what we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), values, csr.shape,
                                       check_invariants=False)


def transposed_csr_pattern(features):
    """(crow, column-of-X^T = row of X, order) of X^T: X's nonzeros in column-major order."""
    crow, col = features.crow_indices(), features.col_indices()
    num_rows, num_cols = features.shape
    rows = torch.repeat_interleave(torch.arange(num_rows, device=crow.device), crow.diff())
    order = torch.argsort(col * num_rows + rows)
    crow_t = torch.zeros(num_cols + 1, dtype=torch.long, device=crow.device)
    crow_t[1:] = torch.cumsum(torch.bincount(col, minlength=num_cols), 0)
    return crow_t, rows.index_select(0, order), order


# ----------------------------------------------------------------------------- the edge list, laid out once

class TargetSortedEdges:
    """An edge_index laid out for IMP3, computed once per graph.

    source, target: the edges sorted by target (already so for the loaders' output), with
    target_offsets [N + 1] the CSR offsets of each target's incoming edges; source_order and
    source_offsets: the same for the edges grouped by source (for sums over outgoing edges). For the aggregation,
    `forward_bags` lists, for every (target i, head h) in turn, the rows (j*H + h) of the [N*H, F]
    features to sum and the positions (e*H + h) of their weights in the flattened [E, H] attention;
    `backward_bags` does the same grouped by source, for the transpose in the backward pass.

    With `needed_rows` (a bool mask [N]) only the edges into those nodes are kept: `kept` lists their positions
    among all num_all_edges edges sorted by target (None: every edge is kept). The other nodes' segments are
    empty; each kept segment, and each source's group of kept edges, keeps its edges in the same order.
    """

    def __init__(self, edge_index, num_nodes, num_heads, needed_rows=None):
        source, target, self.order = sort_by_target(edge_index[0], edge_index[1])
        self.num_all_edges, self.kept = target.numel(), None
        if needed_rows is not None:
            self.kept = needed_rows.index_select(0, target).nonzero().squeeze(1)
            source, target = source.index_select(0, self.kept), target.index_select(0, self.kept)
        self.source, self.target = source, target
        self.target_offsets = csr_offsets(target, num_nodes)
        self.by_target = _TargetSegments(target, self.target_offsets)
        # The same edges grouped by source (a stable order, so each group keeps the edges' order).
        self.source_order = torch.argsort(source, stable=True)
        self.source_offsets = csr_offsets(source.index_select(0, self.source_order), num_nodes)
        self.forward_bags = _Bags(*_bags(None, self.target_offsets, source, num_heads))
        self.backward_bags = _Bags(*_bags(self.source_order, self.source_offsets, target, num_heads))
        # With few kept edges: (target nodes, each edge's index among them, the same for sources), so that the
        # backward pass's dot products rearrange only the rows they read (None: all rows, as without targets).
        self.endpoints = None
        if self.kept is not None:
            target_nodes, target_local = torch.unique(target, return_inverse=True)
            source_nodes, source_local = torch.unique(source, return_inverse=True)
            if target_nodes.numel() + source_nodes.numel() < num_nodes:
                self.endpoints = (target_nodes, target_local, source_nodes, source_local)

    def in_input_order(self, per_edge):
        """[E, ...] values in sorted order -> aligned with the columns of the original edge_index."""
        if self.kept is not None:
            raise ValueError("only some edges were kept (targets): there is no value for every edge")
        if self.order is None:
            return per_edge
        return torch.empty_like(per_edge).index_copy_(0, self.order, per_edge)

    def in_sorted_order(self, per_edge):
        """[E, ...] values aligned with the columns of the original edge_index -> in the sorted order of the edges
        (only the kept ones, when some were): the inverse of in_input_order."""
        if self.order is not None:
            per_edge = per_edge.index_select(0, self.order)
        if self.kept is not None:
            per_edge = per_edge.index_select(0, self.kept)
        return per_edge


def sort_by_target(source, target, always=None):
    """(source, target, order): the edges sorted by target (stable), and the permutation applied, or
    None when they already were (the loaders' output is), which costs one comparison pass. On a GPU
    (always=None: anywhere but the CPU) the edges are always sorted: asking whether they already are would
    make the host wait for the device."""
    always = target.device.type != "cpu" if always is None else always
    if always or (target.numel() > 1 and not bool((target[1:] >= target[:-1]).all())):
        order = torch.argsort(target, stable=True)
        return source.index_select(0, order), target.index_select(0, order), order
    return source, target, None


def csr_offsets(sorted_ids, num_nodes, by_search=None):
    """[num_nodes + 1] offsets: the entries of id i are sorted_ids[offsets[i]:offsets[i + 1]].

    The same integers either way: counted with bincount on the CPU; on a GPU (by_search=None: anywhere but the
    CPU) found by binary search in the sorted ids, since bincount there reads the largest id back to the host."""
    device = sorted_ids.device
    by_search = device.type != "cpu" if by_search is None else by_search
    if by_search:
        return torch.searchsorted(sorted_ids, torch.arange(num_nodes + 1, device=device, dtype=sorted_ids.dtype))
    offsets = torch.zeros(num_nodes + 1, dtype=torch.long, device=device)
    offsets[1:] = torch.cumsum(torch.bincount(sorted_ids, minlength=num_nodes), 0)
    return offsets


def _bags(order, offsets, gather_from, num_heads):
    """(rows, weight positions, bag starts) to sum, for each (node n, head h), the features of the
    `gather_from` end of the edges grouped under n, weighted by those edges' attention.

    order: the edge ids in group order (None: the edges already are), offsets: the groups' CSR offsets.
    Bag (n, h) holds n's edges e in order, at positions offsets[n] * H + h * degree(n) + rank of e in n:
    written directly, one head at a time, so no [E * H] sort or temporary is needed. The indices are int32
    whenever E * H and N * H allow (half the memory of int64; embedding_bag and index_select take either)."""
    num_edges, device = gather_from.numel(), gather_from.device
    largest_index = max(num_edges, offsets.numel() - 1) * num_heads  # weight positions, feature rows
    dtype = torch.int32 if largest_index < 2 ** 31 else torch.long
    edge_ids = torch.arange(num_edges, device=device) if order is None else order
    degrees = offsets.diff()
    groups = torch.repeat_interleave(torch.arange(degrees.numel(), device=device), degrees, output_size=num_edges)
    group_first = offsets[:-1].index_select(0, groups)
    position = group_first * (num_heads - 1) + torch.arange(num_edges, device=device)  # head 0's bag slot
    step = degrees.index_select(0, groups)  # head h's slot is h * degree further on
    del groups, group_first
    gathered = gather_from.index_select(0, edge_ids)
    rows = torch.empty(num_edges * num_heads, dtype=dtype, device=device)
    weight_positions = torch.empty(num_edges * num_heads, dtype=dtype, device=device)
    for head in range(num_heads):
        slots = position + head * step
        rows[slots] = (gathered * num_heads + head).to(dtype)
        weight_positions[slots] = (edge_ids * num_heads + head).to(dtype)
    heads = torch.arange(num_heads, device=device)
    starts = (offsets[:-1].unsqueeze(1) * num_heads + heads * degrees.unsqueeze(1)).reshape(-1).to(dtype)
    return rows, weight_positions, starts


class _Bags:
    """What _bags built (rows, weight positions, bag starts), and where a long list of bags is cut into runs of
    whole bags of about one chunk each: worked out once per graph and chunk size, since it reads the starts
    back to the host."""

    def __init__(self, rows, weight_positions, starts):
        self.rows, self.weight_positions, self.starts = rows, weight_positions, starts
        self._runs = {}

    def runs(self, chunk):
        """[(first bag, end bag, first entry, end entry)] covering every bag, each run ~`chunk` entries."""
        if chunk not in self._runs:
            starts, total = self.starts, self.rows.numel()
            # The first bag of each run: the first bag starting at or after a multiple of `chunk`.
            marks = torch.arange(0, total, chunk, dtype=starts.dtype, device=starts.device)
            bounds = sorted(set(torch.searchsorted(starts, marks).tolist()) | {starts.numel()})
            with_end = torch.cat([starts, starts.new_tensor([total])])
            entries = with_end.index_select(0, torch.tensor(bounds, device=starts.device)).tolist()
            self._runs[chunk] = [(bounds[i], bounds[i + 1], entries[i], entries[i + 1]) for i in range(len(bounds) - 1)]
        return self._runs[chunk]


class _TargetSegments:
    """Edges sorted by target as contiguous segments: sums and maxima of per-edge values per target."""

    def __init__(self, target, offsets):
        self.target, self.offsets = target, offsets
        self.lengths = offsets.diff()
        self.edge_ids = torch.arange(target.numel(), device=target.device)

    def max(self, per_edge):
        # unsafe: no validity checks of the lengths (valid by construction), which would read them back to the host
        return torch.segment_reduce(per_edge, "max", lengths=self.lengths, axis=0, unsafe=True)

    def sum(self, per_edge):
        return _segment_sum(per_edge, self.edge_ids, self.offsets)

    def expand(self, per_target):
        """[N, ...] -> [E, ...]: each edge gets its target's value."""
        return _index_rows(per_target, self.target)

    def expanded_in_chunks(self, per_target):
        """expand(per_target), one chunk of edges at a time: (edge slice, its rows), see _gathered_in_chunks."""
        return _gathered_in_chunks(per_target, self.target)


class IdentityCache:
    """What was built for a few tensors, by their identity and version (`tensor._version` counts in-place
    changes): get((tensor, ...), key, build) returns build() of the first call for those very tensors, while
    none of them changed. It keeps the `size` most recently used entries (training and validation on one
    graph each need one) and holds their tensors, so their ids cannot be reused while they are in it.
    Not for parameters: an optimizer's fused step (Adam(fused=True)) changes them without counting a version.

    The entries are found by identity alone (a dict of ints, which torch.compile traces through without a graph
    break) and the versions compared after; a compiled model skips that comparison, since it cannot read them."""

    def __init__(self, size=2):
        self.size, self.entries = size, {}

    def get(self, tensors, key, build):
        full_key = tuple(id(t) if t is not None else None for t in tensors) + tuple(key)
        entry = self.entries.pop(full_key, None)  # (re)inserted below: the newest entry is the last one
        # A tensor changed in place since: build again. (Under torch.compile versions cannot be read; a compiled
        # model is handed the same unchanged graph every step, as the trainers do.)
        if entry is not None and not torch.compiler.is_compiling() and entry[2] != _versions(tensors):
            entry = None
        if entry is None:
            entry = (tensors, build(), _versions(tensors))
            while len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))
        self.entries[full_key] = entry
        return entry[1]


def _versions(tensors):
    return tuple(t._version if t is not None else None for t in tensors)


# ----------------------------------------------------------------------------- gathers and sums

def _index_rows(values, index, out=None):
    """values.index_select(0, index) (into `out` if given); rows of a single value (one head) go through a
    flat view, which PyTorch's CPU kernel gathers much faster than one-element rows."""
    if values.dim() == 2 and values.shape[1] == 1 and values.is_contiguous():
        flat_out = None if out is None else out.view(-1)
        return torch.index_select(values.view(-1), 0, index, out=flat_out).view(-1, 1)
    return torch.index_select(values, 0, index, out=out)


def _gathered_in_chunks(values, index):
    """Yield (chunk, values.index_select(0, index[chunk])) for consecutive slices `chunk` of the index,
    each gathered into the same buffer (valid until the next chunk)."""
    num_rows, row_elements = index.numel(), max(1, values[0].numel())
    step = max(1, min(num_rows, chunk_elements(values.device) // row_elements))
    if step == num_rows:  # one chunk (Cora): a plain gather is quicker than the buffer's bookkeeping
        yield slice(None), _index_rows(values, index)
        return
    buffer = values.new_empty((step,) + values.shape[1:])
    for start in range(0, num_rows, step):
        chunk = slice(start, min(start + step, num_rows))
        yield chunk, _index_rows(values, index[chunk], out=buffer[:chunk.stop - start])


def _segment_sum(per_edge, edge_ids, offsets):
    """Segment sums of the rows of per_edge [E, H] listed in edge_ids: segment i sums the rows
    edge_ids[offsets[i]:offsets[i + 1]] (arange(E): consecutive rows; an edge order: a grouping).

    F.embedding_bag gathers and adds the rows in order: the same additions in the same order as
    index_add_ (bit-identical results), and much faster on CPU for a few heads per row."""
    return F.embedding_bag(edge_ids, per_edge, offsets[:-1], mode="sum")


def _weighted_bag_sum(features, attention, bags):
    """Sum each bag's feature rows, weighted by their attention. A long list of bags is cut into runs of
    whole bags of about one chunk (bags.runs), so the gathered weights fit one reused buffer."""
    num_nodes, num_heads, num_features = features.shape
    rows, weight_positions, starts = bags.rows, bags.weight_positions, bags.starts
    table, flat_attention = features.reshape(num_nodes * num_heads, num_features), attention.reshape(-1)
    chunk = chunk_elements(features.device)
    if rows.numel() <= chunk:
        weights = flat_attention.index_select(0, weight_positions)
        out = F.embedding_bag(rows, table, starts, mode="sum", per_sample_weights=weights)
        return out.view(num_nodes, num_heads, num_features)
    out = features.new_empty(num_nodes * num_heads, num_features)
    buffer = None
    for first_bag, end_bag, first, end in bags.runs(chunk):
        if buffer is None or buffer.numel() < end - first:
            buffer = flat_attention.new_empty(max(end - first, chunk))
        weights = torch.index_select(flat_attention, 0, weight_positions[first:end], out=buffer[:end - first])
        out[first_bag:end_bag] = F.embedding_bag(rows[first:end], table, starts[first_bag:end_bag] - first,
                                                 mode="sum", per_sample_weights=weights)
    return out.view(num_nodes, num_heads, num_features)


def _edge_dot_products(at_target, at_source, edges):
    """[E, H]: <at_target[i, h], at_source[j, h]> for every edge j -> i and head h.

    Works through the edges in chunks of at most CHUNK_ELEMENTS gathered floats, so memory stays bounded however
    many edges there are; the two chunk buffers are allocated once per call and refilled (fresh buffers per
    chunk would be new pages for the kernel to zero on every step). The features are laid out [N, F, H] first:
    summing over F then adds whole rows of H heads (vectorised), where summing the last axis of [E, H, F] would
    reduce a few floats at a time."""
    target_ids, source_ids = edges.target, edges.source
    if edges.endpoints is not None:  # only some edges were kept: lay out just the rows they read
        target_nodes, target_ids, source_nodes, source_ids = edges.endpoints
        at_target, at_source = at_target.index_select(0, target_nodes), at_source.index_select(0, source_nodes)
    at_target, at_source = at_target.transpose(1, 2).contiguous(), at_source.transpose(1, 2).contiguous()
    out = at_source.new_empty(edges.source.numel(), at_source.shape[2])
    # Both gathers have rows of the same size, so they cut the edges into the same chunks.
    for (chunk, at_targets), (_, at_sources) in zip(_gathered_in_chunks(at_target, target_ids),
                                                    _gathered_in_chunks(at_source, source_ids)):
        torch.sum(at_targets.mul_(at_sources), dim=1, out=out[chunk])
    return out


def _gatv2_chunks(source, target, edges, edge_terms=None):
    """(slice of edges, their pre-activation [C, H, F]) for chunks of at most CHUNK_ELEMENTS floats; edge_terms
    [E, H, F] (optional) are added to it."""
    num_heads, num_features = source.shape[1], source.shape[2]
    step = max(1, chunk_elements(source.device) // (num_heads * num_features))
    for start in range(0, edges.source.numel(), step):
        chunk = slice(start, start + step)
        pre = source.index_select(0, edges.source[chunk]) + target.index_select(0, edges.target[chunk])
        yield chunk, pre if edge_terms is None else pre.add_(edge_terms[chunk])


# ----------------------------------------------------------------------------- hand-written backward passes

def _computed_in_float32(function):
    """Declare an autograd Function's precision, as torch.amp asks custom Functions to: under autocast (on the CPU
    or on CUDA) its floating inputs are cast to float32 and it runs without autocast, and its backward pass runs as
    its forward did. The attention (scores, softmax, weighted sums) is then computed in float32 under --precision
    bf16 or fp16, while the projections before it follow autocast."""
    forward, backward = function.forward, function.backward
    for device_type in ("cpu", "cuda"):
        forward = torch.amp.custom_fwd(forward, device_type=device_type, cast_inputs=torch.float32)
        backward = torch.amp.custom_bwd(backward, device_type=device_type)
    function.forward, function.backward = staticmethod(forward), staticmethod(backward)
    return function


def _run(function, *args):
    """function.apply(*args) for the autograd Functions below; without gradients (evaluation, torch.no_grad)
    their forward alone, the same computation without autograd's bookkeeping."""
    if torch.is_grad_enabled():
        return function.apply(*args)
    return function.forward(_NoGradContext(), *args)


def _needs_grad(ctx, position):
    """Whether the input at `position` needs a gradient (False for an optional input left out of apply())."""
    return len(ctx.needs_input_grad) > position and ctx.needs_input_grad[position]


class _NoGradContext:
    """What the Functions' forward passes use of `ctx`, when there will be no backward pass."""

    def save_for_backward(self, *tensors):
        pass


@_computed_in_float32
class _SparseCSRProjection(torch.autograd.Function):
    """y = X @ W^T for a constant sparse CSR X (the input features) and a trainable W.

    Both directions are one weighted gather-sum over X's nonzeros (F.embedding_bag with
    per-sample weights, faster than torch.sparse.mm): forward sums rows of W^T
    picked by X's column indices; backward does the same with X^T, whose pattern (X's nonzeros in
    column-major order, from transposed_csr_pattern) the layer computes once per input.
    """

    @staticmethod
    def forward(ctx, features, values, weight, transposed_pattern):
        crow, col = features.crow_indices(), features.col_indices()
        ctx.save_for_backward(values)
        ctx.transposed_pattern = transposed_pattern
        # (embedding_bag is much slower with a non-contiguous weight than this copy costs)
        return F.embedding_bag(col, weight.t().contiguous(), crow[:-1], mode="sum", per_sample_weights=values)

    @staticmethod
    def backward(ctx, grad_output):
        (values,) = ctx.saved_tensors
        crow_t, rows_t, order = ctx.transposed_pattern
        grad_weight_t = F.embedding_bag(rows_t, grad_output, crow_t[:-1], mode="sum",
                                        per_sample_weights=values.index_select(0, order))
        return None, None, grad_weight_t.t(), None


@_computed_in_float32
class _GATScoreHalves(torch.autograd.Function):
    """(source, target) [N, H]: each node's two halves of GAT's score, sum over f of
    projection[n, h, f] * a[h, f], for a = a_source and a = a_target.

    The same products and sums as `(projection * a).sum(-1)` written twice, through one [N, H, F] buffer
    forward and backward where autograd makes a fresh tensor for each product (on a large graph every
    fresh tensor costs page faults). The projection is passed twice, `projection` and `same_projection`,
    so that its gradient still arrives in two parts, target half first: autograd adds them to the
    projection's other gradient (through dropout) in the order it did for the two separate products,
    which keeps training bit-for-bit what it was.
    """

    @staticmethod
    def forward(ctx, projection, same_projection, a_source, a_target):
        products = torch.mul(projection, a_source)
        source = products.sum(dim=-1)
        target = torch.mul(projection, a_target, out=products).sum(dim=-1)
        ctx.save_for_backward(projection, a_source, a_target)
        return source, target

    @staticmethod
    def backward(ctx, grad_source, grad_target):
        projection, a_source, a_target = ctx.saved_tensors
        grad_source, grad_target = grad_source.unsqueeze(-1), grad_target.unsqueeze(-1)
        products = torch.mul(grad_source, projection)
        grad_a_source = products.sum(dim=0, keepdim=True)
        grad_a_target = torch.mul(grad_target, projection, out=products).sum(dim=0, keepdim=True)
        through_target = grad_target * a_target
        through_source = torch.mul(grad_source, a_source, out=products)
        return through_target, through_source, grad_a_source, grad_a_target


@_computed_in_float32
class _GATEdgeScores(torch.autograd.Function):
    """scores[e, h] = LeakyReLU(source[j, h] + target[i, h]) for every edge e = (j -> i): GAT's score.

    The backward pass sums each edge's gradient into its source and its target as segment sums
    (edges grouped by target as they come, by source through TargetSortedEdges.source_order)
    instead of autograd's two zero-filled index_add_ scatters.
    """

    @staticmethod
    def forward(ctx, source, target, edges, negative_slope, edge_terms=None):
        # One [E, H] tensor, updated in place (on a large graph every fresh one costs page faults).
        scores = _index_rows(source, edges.source)
        for chunk, at_target in edges.by_target.expanded_in_chunks(target):
            scores[chunk].add_(at_target)
        if edge_terms is not None:  # edge features' part of the score
            scores.add_(edge_terms)
        F.leaky_relu(scores, negative_slope, inplace=True)
        # The scores have the sign of the pre-activation (slope > 0): enough for the backward pass.
        ctx.save_for_backward(scores)
        ctx.edges, ctx.negative_slope = edges, negative_slope
        return scores

    @staticmethod
    def backward(ctx, grad_scores):
        (scores,) = ctx.saved_tensors
        edges = ctx.edges
        grad_pre = torch.ops.aten.leaky_relu_backward(grad_scores, scores, ctx.negative_slope, True)
        # Sums over each source's edges: embedding_bag gathers the rows in source order as it adds.
        grad_source = _segment_sum(grad_pre, edges.source_order, edges.source_offsets)
        grad_target = edges.by_target.sum(grad_pre)
        # (edge_terms enter the pre-activation as they are: their gradient is grad_pre itself)
        return grad_source, grad_target, None, None, grad_pre if _needs_grad(ctx, 4) else None


@_computed_in_float32
class _GATv2EdgeScores(torch.autograd.Function):
    """scores[e, h] = a[h] . LeakyReLU(source[j, h] + target[i, h]) for every edge e = (j -> i).

    The [E, H, F] pre-activation is what makes GATv2 costly in memory. Here it only ever exists one
    chunk of edges at a time: forward computes the scores chunk by chunk, backward recomputes each
    chunk's pre-activation instead of keeping it. The backward pass sums each edge's gradient into its source
    and target as segment sums (the edges of one node added in a fixed order), not with index_add_, whose
    atomic additions on a GPU would make the sums' rounding, and so training, differ from run to run.
    """

    @staticmethod
    def forward(ctx, source, target, scoring_fn, edges, negative_slope, edge_terms=None):
        ctx.save_for_backward(source, target, scoring_fn, edge_terms)
        ctx.edges, ctx.negative_slope = edges, negative_slope
        attention_vector = scoring_fn.squeeze(0)
        return torch.cat([(F.leaky_relu(pre, negative_slope) * attention_vector).sum(-1)
                          for _, pre in _gatv2_chunks(source, target, edges, edge_terms)])

    @staticmethod
    def backward(ctx, grad_scores):
        source, target, scoring_fn, edge_terms = ctx.saved_tensors
        edges, slope = ctx.edges, ctx.negative_slope
        attention_vector = scoring_fn.squeeze(0)
        grad_source, grad_target = torch.zeros_like(source), torch.zeros_like(target)
        grad_attention_vector = torch.zeros_like(attention_vector)
        grad_edge_terms = torch.empty_like(edge_terms) if _needs_grad(ctx, 5) else None
        for chunk, pre in _gatv2_chunks(source, target, edges, edge_terms):
            grad = grad_scores[chunk].unsqueeze(-1)  # [C, H, 1]
            grad_attention_vector += (F.leaky_relu(pre, slope) * grad).sum(0)
            # d LeakyReLU(x) / dx is 1 where x > 0, else the slope.
            grad_pre = torch.where(pre > 0, grad, grad * slope) * attention_vector  # [C, H, F]
            if pre.shape[0] == edges.source.numel():  # one chunk: every edge's gradient at once
                flat = grad_pre.reshape(pre.shape[0], -1)
                grad_source = _segment_sum(flat, edges.source_order, edges.source_offsets).view_as(source)
                grad_target = edges.by_target.sum(flat).view_as(target)
            else:
                _add_chunk_sums(grad_source, grad_pre, edges.source[chunk])
                _add_chunk_sums(grad_target, grad_pre, edges.target[chunk])
            if grad_edge_terms is not None:
                grad_edge_terms[chunk] = grad_pre
        return grad_source, grad_target, grad_attention_vector.unsqueeze(0), None, None, grad_edge_terms


def _add_chunk_sums(out, per_edge, node_ids):
    """out[n] += the sum of per_edge's rows whose node_ids is n, each node's rows added in their order (a stable
    sort groups them, a segment sum adds them): deterministic on every device, unlike index_add_."""
    order = torch.argsort(node_ids, stable=True)
    nodes, counts = torch.unique_consecutive(node_ids.index_select(0, order), return_counts=True)
    offsets = torch.zeros(counts.numel() + 1, dtype=torch.long, device=counts.device)
    offsets[1:] = torch.cumsum(counts, 0)
    sums = _segment_sum(per_edge.reshape(per_edge.shape[0], -1), order, offsets)
    out[nodes] += sums.view((-1,) + out.shape[1:])


@_computed_in_float32
class _SortedEdgeSoftmax(torch.autograd.Function):
    """edge_softmax for edges sorted by target (`segments`: their _TargetSegments).

    Forward does what the general path does, over contiguous segments. Backward is the softmax's
    own formula, grad_scores = attention * (grad - sum over the target's edges of attention * grad),
    five kernels instead of the dozen autograd would run through the forward's steps.
    """

    @staticmethod
    def forward(ctx, scores, segments):
        # One fresh [E, H] tensor becomes the output; the denominators are gathered chunk by chunk.
        shifted = segments.expand(segments.max(scores))
        attention = torch.sub(scores, shifted, out=shifted).exp_()
        # Every target that has an edge has denominator >= 1 (its max term is exp(0)).
        for chunk, denominators in segments.expanded_in_chunks(segments.sum(attention)):
            attention[chunk].div_(denominators)
        ctx.save_for_backward(attention)
        ctx.segments = segments
        return attention

    @staticmethod
    def backward(ctx, grad_attention):
        (attention,) = ctx.saved_tensors
        segments = ctx.segments
        weighted = grad_attention * attention
        for chunk, sums in segments.expanded_in_chunks(segments.sum(weighted)):
            weighted[chunk].sub_(sums.mul_(attention[chunk]))
        return weighted, None


@_computed_in_float32
class _NeighbourhoodSum(torch.autograd.Function):
    """out[i, h] = sum over edges e = (j -> i) of attention[e, h] * features[j, h]   ([N, H, F]).

    Forward and the features' gradient are weighted gather-sums (F.embedding_bag with per-sample
    weights) over the bags of TargetSortedEdges, one grouped by target, one by source (the
    transpose). The attention's gradient is one dot product per edge and head, computed in chunks:
    no [E, H, F] tensor is ever kept for the backward pass.
    """

    @staticmethod
    def forward(ctx, attention, features, edges):
        ctx.save_for_backward(attention, features)
        ctx.edges = edges
        # (detached: embedding_bag then skips the bookkeeping for a backward pass of its own)
        return _weighted_bag_sum(features.detach(), attention, edges.forward_bags)

    @staticmethod
    def backward(ctx, grad_out):
        attention, features = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_attention = grad_features = None
        if ctx.needs_input_grad[1]:
            grad_features = _weighted_bag_sum(grad_out, attention, ctx.edges.backward_bags)
        if ctx.needs_input_grad[0]:
            grad_attention = _edge_dot_products(grad_out, features, ctx.edges)
        return grad_attention, grad_features, None
