"""How a graph's edges are laid out for the layers, each layout built once per graph (models/graph.py keeps them):

    TargetSortedEdges        IMP3: the edges sorted by target, CSR offsets, and the bags of the weighted sums
    SparseAttentionPattern   IMP4: the coalesced index of the sparse [H, N, N] attention, and its transpose
    attention_mask           IMP1, IMP2: the dense [N, N] additive mask
    receptive_field          which rows each layer must compute for the last layer's rows at some nodes

Each is a pure function of the edge_index (and the number of heads, or the rows needed): building one reads the
graph and may read values back to the host; using one never does. A layout moves between devices whole
(`Layout.to`, `Layout.pin_memory`).
"""

import copy

import torch
import torch.nn.functional as F

from .gathers import gathered_in_chunks, index_rows, segment_sum

# The longest segment (a target's edges, a (node, head) bag of the weighted sums) one reduction walks alone. On CUDA,
# embedding_bag and segment_reduce give each segment one thread, so a hub with 10^4 in-edges would cost every kernel
# 10^4 dependent loads: a longer segment is cut into pieces of at most this many rows, reduced piece by piece and then
# over its pieces, always in the same order (deterministic). On the CPU, where each thread takes a range of whole
# segments, the bound lies far above the largest in-degree of every graph in the results (Cora: 169; the generated
# PPI data: under 40), whose numbers it therefore leaves unchanged to the bit.
MAX_SEGMENT = {"cpu": 4096, "cuda": 256}


def max_segment(device):
    return MAX_SEGMENT["cpu" if device.type == "cpu" else "cuda"]


class Layout:
    """A bundle of tensors (and nested layouts) describing one graph, moved between devices together."""

    def to(self, device, non_blocking=False):
        return self._apply(lambda tensor: tensor.to(device, non_blocking=non_blocking))

    def pin_memory(self):
        """The same layout in pinned host memory, so that .to(cuda, non_blocking=True) does not wait."""
        return self._apply(lambda tensor: tensor.pin_memory())

    def _apply(self, function):
        applied = copy.copy(self)
        applied.__dict__ = {name: _applied(value, function) for name, value in self.__dict__.items()}
        return applied


def _applied(value, function):
    if isinstance(value, torch.Tensor):
        return function(value)
    if isinstance(value, Layout):
        return value._apply(function)
    if isinstance(value, (tuple, list)):
        return type(value)(_applied(item, function) for item in value)
    if isinstance(value, dict):
        return {key: _applied(item, function) for key, item in value.items()}
    return value


# ----------------------------------------------------------------------------- IMP3: the edges sorted by target

class TargetSortedEdges(Layout):
    """An edge_index laid out for IMP3, built once per graph (models.Graph.edges_by_target).

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
        self.by_target = TargetSegments(target, self.target_offsets)
        # The same edges grouped by source (a stable order, so each group keeps the edges' order).
        self.source_order = torch.argsort(source, stable=True)
        self.source_offsets = csr_offsets(source.index_select(0, self.source_order), num_nodes)
        self.by_source = SourceGroups(self.source_order, self.source_offsets)
        self.forward_bags = Bags(*_bags(None, self.target_offsets, source, num_heads))
        self.backward_bags = Bags(*_bags(self.source_order, self.source_offsets, target, num_heads))
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


class Pieces(Layout):
    """Segments of rows (offsets [S + 1]) cut into pieces of at most `bound` rows: piece_offsets [P + 1], and
    segment_pieces [S + 1] (segment s is pieces segment_pieces[s] to segment_pieces[s + 1]; an empty segment keeps one
    empty piece). `Pieces.of` gives None where no segment is longer than the bound: the segments are the pieces."""

    def __init__(self, piece_offsets, segment_pieces):
        self.piece_offsets, self.segment_pieces = piece_offsets, segment_pieces
        self.piece_ids = torch.arange(piece_offsets.numel() - 1, device=piece_offsets.device)

    @staticmethod
    def of(offsets, bound=None):
        bound = bound or max_segment(offsets.device)
        lengths = offsets.diff()
        if lengths.numel() == 0 or int(lengths.max()) <= bound:  # (reads one number back: once, when laid out)
            return None
        counts = ((lengths + bound - 1) // bound).clamp_(min=1)
        segment_pieces = torch.zeros(lengths.numel() + 1, dtype=torch.long, device=offsets.device)
        segment_pieces[1:] = torch.cumsum(counts, 0)
        num_pieces = int(segment_pieces[-1])
        segment = torch.repeat_interleave(torch.arange(lengths.numel(), device=offsets.device), counts,
                                          output_size=num_pieces)
        rank = torch.arange(num_pieces, device=offsets.device) - segment_pieces.index_select(0, segment)
        starts = offsets.index_select(0, segment).long() + rank * bound
        return Pieces(torch.cat([starts, offsets[-1:].long()]).to(offsets.dtype), segment_pieces)

    def sum(self, per_piece):
        """[P, ...] partial sums -> [S, ...]: each segment's pieces added in order."""
        return F.embedding_bag(self.piece_ids, per_piece, self.segment_pieces[:-1], mode="sum")

    def max(self, per_piece):
        return torch.segment_reduce(per_piece, "max", offsets=self.segment_pieces, axis=0, unsafe=True)


def segment_sum_in_pieces(per_row, row_ids, offsets, pieces):
    """segment_sum(per_row, row_ids, offsets), through `pieces` (Pieces.of(offsets)) where some segments are long."""
    if pieces is None:
        return segment_sum(per_row, row_ids, offsets)
    return pieces.sum(segment_sum(per_row, row_ids, pieces.piece_offsets))


class SourceGroups(Layout):
    """The edges grouped by source (order: the edge ids in group order, offsets [N + 1]): sums over each node's
    outgoing edges, a hub's in pieces."""

    def __init__(self, order, offsets):
        self.order, self.offsets, self.pieces = order, offsets, Pieces.of(offsets)

    def sum(self, per_edge):
        return segment_sum_in_pieces(per_edge, self.order, self.offsets, self.pieces)


class Bags(Layout):
    """What _bags built (rows, weight positions, bag starts), and where a long list of bags is cut into runs of
    whole bags of about one chunk each: worked out once per graph and chunk size, since it reads the starts
    back to the host. pieces: the bags cut at MAX_SEGMENT rows (None: none is longer), for the one-run sums."""

    def __init__(self, rows, weight_positions, starts):
        self.rows, self.weight_positions, self.starts = rows, weight_positions, starts
        self.pieces = Pieces.of(torch.cat([starts, starts.new_tensor([rows.numel()])]))
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


class TargetSegments(Layout):
    """Edges sorted by target as contiguous segments: sums and maxima of per-edge values per target."""

    def __init__(self, target, offsets):
        self.target, self.offsets = target, offsets
        self.edge_ids = torch.arange(target.numel(), device=target.device)
        self.pieces = Pieces.of(offsets)  # (a hub's edges in pieces; None: no target has that many)

    def max(self, per_edge):
        # The segments by their offsets, as the layout keeps them (lengths would be turned into offsets on every call);
        # unsafe: no validity checks (valid by construction), which would read them back to the host.
        if self.pieces is None:
            return torch.segment_reduce(per_edge, "max", offsets=self.offsets, axis=0, unsafe=True)
        partial = torch.segment_reduce(per_edge, "max", offsets=self.pieces.piece_offsets, axis=0, unsafe=True)
        return self.pieces.max(partial)

    def sum(self, per_edge):
        return segment_sum_in_pieces(per_edge, self.edge_ids, self.offsets, self.pieces)

    def expand(self, per_target):
        """[N, ...] -> [E, ...]: each edge gets its target's value."""
        return index_rows(per_target, self.target)

    def expanded_in_chunks(self, per_target):
        """expand(per_target), one chunk of edges at a time: (edge slice, its rows), see gathered_in_chunks."""
        return gathered_in_chunks(per_target, self.target)


# ----------------------------------------------------------------------------- IMP4: the sparse pattern

class SparseAttentionPattern(Layout):
    """IMP4's per-graph index: the distinct edges (target i, source j) sorted by (i, j), repeated for every head.

    indices [3, H * P]: (head, target, source) of each stored entry, lexicographically sorted, so the sparse
    tensor is coalesced as built (no sort per step). first_edge [P]: for each distinct edge, the first column of
    edge_index that holds it (its score is the entry's value); pair_of_edge [E]: each column's distinct edge.
    A duplicated edge is stored once, as in the dense layers.

    For the product's backward pass: csr_offsets, csr_columns, the same entries as a batched CSR pattern ([H, N + 1]
    row offsets, [H, P] columns); transposed_indices [3, H * P] and transposed_order [H * P], the entries of the
    transposed matrices [H, N, N] (entry (k, j, i)) in their coalesced order, and where each one's value is.
    """

    def __init__(self, edge_index, num_nodes, num_heads):
        source, target = edge_index[0].long(), edge_index[1].long()
        num_edges, device = source.numel(), source.device
        self.shape = (num_heads, num_nodes, num_nodes)
        # pair = i * N + j orders the entries by target, then source: the coalesced order of each head's rows
        pairs, self.pair_of_edge = torch.unique(target * num_nodes + source, return_inverse=True)
        num_pairs = pairs.numel()
        self.first_edge = torch.full((num_pairs,), num_edges, dtype=torch.long, device=device).scatter_reduce(
            0, self.pair_of_edge, torch.arange(num_edges, device=device), reduce="amin")
        heads = torch.arange(num_heads, device=device).repeat_interleave(num_pairs)
        targets, sources = pairs // num_nodes, pairs % num_nodes
        self.indices = torch.stack([heads, targets.repeat(num_heads), sources.repeat(num_heads)])

        row_offsets = torch.zeros(num_nodes + 1, dtype=torch.long, device=device)
        row_offsets[1:] = torch.cumsum(torch.bincount(targets, minlength=num_nodes), 0)
        self.csr_offsets = row_offsets.repeat(num_heads, 1)
        self.csr_columns = sources.repeat(num_heads, 1)
        by_source = torch.argsort(sources * num_nodes + targets)  # the transposed matrix's coalesced order
        self.transposed_order = (heads.view(num_heads, num_pairs) * num_pairs + by_source).reshape(-1)
        self.transposed_indices = torch.stack([heads, sources[by_source].repeat(num_heads),
                                               targets[by_source].repeat(num_heads)])


# ----------------------------------------------------------------------------- IMP1, IMP2: the dense mask

def attention_mask(edge_index, num_nodes, dtype):
    """[N, N] additive mask on edge_index's device: 0 where edge j -> i exists (row i = target, column j = source),
    -inf elsewhere. (Every node has an incoming edge, so no row is all -inf: the graph was checked.)"""
    mask = torch.full((num_nodes, num_nodes), float("-inf"), device=edge_index.device, dtype=dtype)
    mask[edge_index[1], edge_index[0]] = 0.0
    return mask


# ----------------------------------------------------------------------------- which rows each layer needs

def receptive_field(edge_index, output_nodes, num_nodes, num_layers):
    """For each layer, a bool mask [N] of the nodes whose output rows the last layer's rows at output_nodes
    depend on (None where that is every node). Going back from the last layer: a layer needs its own targets'
    rows and those of their sources (the score's target half and a skip connection read the target's row)."""
    needed = torch.zeros(num_nodes, dtype=torch.bool, device=edge_index.device)
    needed[output_nodes] = True
    per_layer = [needed]
    source, target = edge_index[0], edge_index[1]
    for _ in range(num_layers - 1):
        needed = needed.clone()
        needed[source[needed[target]]] = True
        per_layer.insert(0, needed)
    return [None if bool(mask.all()) else mask for mask in per_layer]
