"""The autograd Functions behind models/fast_ops.py: each op's forward pass and a hand-written backward pass.

Why by hand: autograd's backward of the plain expressions (models/plain_ops.py) scatters with index_add_ into
zero-filled tensors, keeps [E, H, F] temporaries alive, or, for a sparse @ dense product, forms all N x N entries.
The passes below sum over each node's edges as segment sums (models/gathers.py) in a fixed order, keep nothing
that grows with E x F, and run chunk by chunk. Under autocast each one computes in float32
(`computed_in_float32`); without gradients (evaluation) only its forward pass runs (`run`).

`edges` is a models.layouts.TargetSortedEdges; `pattern` a models.layouts.SparseAttentionPattern.
"""

import warnings

import torch
import torch.nn.functional as F

from .gathers import chunk_elements, gathered_in_chunks, index_rows, segment_sum


def _weighted_bag_sum(features, attention, bags):
    """Sum each bag's feature rows, weighted by their attention. A long list of bags is cut into runs of
    whole bags of about one chunk (bags.runs), so the gathered weights fit one reused buffer."""
    num_nodes, num_heads, num_features = features.shape
    rows, weight_positions, starts = bags.rows, bags.weight_positions, bags.starts
    table, flat_attention = features.reshape(num_nodes * num_heads, num_features), attention.reshape(-1)
    chunk = chunk_elements(features.device)
    if rows.numel() <= chunk:
        weights = flat_attention.index_select(0, weight_positions)
        if bags.pieces is None:
            out = F.embedding_bag(rows, table, starts, mode="sum", per_sample_weights=weights)
        else:  # (long bags, a hub's: summed piece by piece, then over their pieces)
            out = bags.pieces.sum(F.embedding_bag(rows, table, bags.pieces.piece_offsets[:-1], mode="sum",
                                                  per_sample_weights=weights))
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
    for (chunk, at_targets), (_, at_sources) in zip(gathered_in_chunks(at_target, target_ids),
                                                    gathered_in_chunks(at_source, source_ids)):
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


def computed_in_float32(function):
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


def run(function, *args):
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


@computed_in_float32
class SparseCSRProjection(torch.autograd.Function):
    """y = X @ W^T for a constant sparse CSR X (the input features) and a trainable W.

    Both directions are one weighted gather-sum over X's nonzeros (F.embedding_bag with
    per-sample weights, faster than torch.sparse.mm): forward sums rows of W^T
    picked by X's column indices; backward does the same with X^T, whose pattern (X's nonzeros in
    column-major order, models/sparse_features.py) the features carry, built once.
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


@computed_in_float32
class GATScoreHalves(torch.autograd.Function):
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


@computed_in_float32
class GATEdgeScores(torch.autograd.Function):
    """scores[e, h] = LeakyReLU(source[j, h] + target[i, h]) for every edge e = (j -> i): GAT's score.

    The backward pass sums each edge's gradient into its source and its target as segment sums
    (edges grouped by target as they come, by source through TargetSortedEdges.source_order)
    instead of autograd's two zero-filled index_add_ scatters.
    """

    @staticmethod
    def forward(ctx, source, target, edges, negative_slope, edge_terms=None):
        # One [E, H] tensor, updated in place (on a large graph every fresh one costs page faults).
        scores = index_rows(source, edges.source)
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
        grad_source = edges.by_source.sum(grad_pre)
        grad_target = edges.by_target.sum(grad_pre)
        # (edge_terms enter the pre-activation as they are: their gradient is grad_pre itself)
        return grad_source, grad_target, None, None, grad_pre if _needs_grad(ctx, 4) else None


@computed_in_float32
class GATv2EdgeScores(torch.autograd.Function):
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
                grad_source = edges.by_source.sum(flat).view_as(source)
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
    sums = segment_sum(per_edge.reshape(per_edge.shape[0], -1), order, offsets)
    out[nodes] += sums.view((-1,) + out.shape[1:])


@computed_in_float32
class SortedEdgeSoftmax(torch.autograd.Function):
    """edge_softmax for edges sorted by target (`segments`: their models.layouts.TargetSegments).

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


@computed_in_float32
class NeighbourhoodSum(torch.autograd.Function):
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


@computed_in_float32
class SparseDenseProduct(torch.autograd.Function):
    """out = A @ D per head, A sparse (values at pattern.indices), D dense.

    Backward: dA = (grad_out @ D^T) at A's stored entries only, which is exactly what torch.sparse.sampled_addmm
    computes (a sampled dense-dense product, O(P * F) per head); autograd's own backward of torch.bmm forms all
    N x N entries first. dD = A^T @ grad_out, another sparse @ dense product, with A^T's index sorted once per
    graph (pattern.transposed_*), so no coalescing per step.
    """

    @staticmethod
    def forward(ctx, values, dense, pattern):
        ctx.save_for_backward(values, dense)
        ctx.pattern = pattern
        matrix = torch.sparse_coo_tensor(pattern.indices, values, pattern.shape, is_coalesced=True,
                                         check_invariants=False)
        return torch.bmm(matrix, dense)

    @staticmethod
    def backward(ctx, grad_out):
        values, dense = ctx.saved_tensors
        pattern = ctx.pattern
        grad_values = grad_dense = None
        if ctx.needs_input_grad[0]:
            # [H, P]: <grad_out[k, i], dense[k, j]> for each stored (k, i, j); beta=0 ignores the pattern's values
            with warnings.catch_warnings():  # "sparse CSR support is in beta": sampled_addmm takes only CSR
                warnings.simplefilter("ignore", UserWarning)
                where = torch.sparse_csr_tensor(pattern.csr_offsets, pattern.csr_columns,
                                                values.new_zeros(pattern.csr_columns.shape), pattern.shape,
                                                check_invariants=False)
            grad_values = torch.sparse.sampled_addmm(where, grad_out.contiguous(), dense.transpose(1, 2),
                                                     beta=0.0).values().reshape(-1)
        if ctx.needs_input_grad[1]:
            transposed = torch.sparse_coo_tensor(pattern.transposed_indices,
                                                 values.index_select(0, pattern.transposed_order), pattern.shape,
                                                 is_coalesced=True, check_invariants=False)
            grad_dense = torch.bmm(transposed, grad_out)
        return grad_values, grad_dense, None
