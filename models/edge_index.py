"""The edge_index every GAT layer expects, how it is checked, and a helper that turns any edge list into it.

The contract: a LongTensor [2, E], row 0 the source j and row 1 the target i of each edge j -> i, every index in
0..N-1, every node with at least one incoming edge (a self loop will do: attention is a softmax over a node's
incoming edges, undefined over none), and no edge twice. A models.Graph checks it once, when it is built
(`check_edge_index`), so it costs nothing per step; a plain edge_index given to a layer or a model is wrapped in a
Graph, and so checked, on every call. A node without an incoming edge or an index out of range is refused; a
duplicate edge gets a warning, because the implementations count it differently (IMP3 every copy, the dense
layers and IMP4 once), so results would depend on the implementation.

`gat_edge_index` makes any edge list fit: self loops added, duplicates removed, optionally both directions.
"""

import sys
import warnings
from pathlib import Path

import torch


def check_edge_index(edge_index, num_nodes):
    """Raise ValueError (one line: what is wrong, what to do) unless edge_index is [2, E] integers in 0..N-1 with an
    incoming edge into every node; warn if it holds duplicate edges. Reads its values: call it once per graph."""
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"edge_index must hold integer node ids (torch.long), got {edge_index.dtype}")
    if edge_index.numel() == 0:
        raise ValueError(f"edge_index has no edges, so none of the {num_nodes} nodes has an incoming edge; "
                         "add self loops with models.gat_edge_index")
    smallest, largest = int(edge_index.min()), int(edge_index.max())
    if smallest < 0 or largest >= num_nodes:
        wrong = smallest if smallest < 0 else largest
        raise ValueError(f"edge_index holds node id {wrong}, outside 0..{num_nodes - 1} for the {num_nodes} nodes of "
                         "node_features; fix the ids or pass all the nodes' features")
    in_degree = torch.bincount(edge_index[1], minlength=num_nodes)
    without_incoming = (in_degree == 0).nonzero().flatten()
    if without_incoming.numel() > 0:
        shown = without_incoming[:5].tolist()
        more = f" and {without_incoming.numel() - 5} more" if without_incoming.numel() > 5 else ""
        raise ValueError(f"nodes {shown}{more} have no incoming edge, so their attention is undefined; "
                         "add self loops with models.gat_edge_index(edge_index, num_nodes)")
    num_distinct = torch.unique(edge_index[1].long() * num_nodes + edge_index[0].long()).numel()
    num_duplicates = edge_index.shape[1] - num_distinct
    if num_duplicates:
        edges = "a duplicate edge" if num_duplicates == 1 else f"{num_duplicates} duplicate edges"
        warnings.warn(f"edge_index holds {edges}, which IMP3 counts every time and IMP1/IMP2/IMP4 once; remove "
                      "duplicates with models.gat_edge_index", stacklevel=_callers_stacklevel())


def _callers_stacklevel():
    """The stacklevel, for a warning raised in check_edge_index, of the first line outside models/ and torch: the
    line of the caller's own code that passed the graph, whichever layer or model checked it."""
    inside = (str(Path(__file__).resolve().parent), str(Path(torch.__file__).resolve().parent))
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


def gat_edge_index(edge_index, num_nodes, undirected=False, edge_attr=None):
    """Any edge list [2, E] -> the edge_index the layers expect: duplicates removed, one self loop per node added,
    columns sorted by (target, source); with undirected=True every edge also the other way. Existing self loops are
    kept (once), not doubled.

    edge_attr [E, D] (optional) follows its edges: a reversed edge gets its edge's features, duplicate edges (the
    two directions of an undirected edge included) the mean of theirs, and a node's added self loop the mean of the
    features of its other incoming edges (zeros when it has none), as PyG's add_self_loops(fill_value="mean").
    Returns edge_index, or (edge_index, edge_attr) when edge_attr is given.
    """
    edge_index = torch.as_tensor(edge_index)
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
    edge_index = edge_index.long()
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"edge_index holds node ids outside 0..{num_nodes - 1}; fix them or raise num_nodes")
    if edge_attr is not None and (edge_attr.dim() != 2 or edge_attr.shape[0] != edge_index.shape[1]):
        raise ValueError(f"edge_attr must be [E, D] with E = {edge_index.shape[1]} edges, got {tuple(edge_attr.shape)}")
    device = edge_index.device
    source, target = edge_index[0], edge_index[1]
    if undirected:
        source, target = torch.cat([source, target]), torch.cat([target, source])
        if edge_attr is not None:
            edge_attr = torch.cat([edge_attr, edge_attr])
    is_loop = source == target
    # Each distinct (target, source) pair once, sorted by target: pair = target * N + source.
    pairs, which_pair = torch.unique(target * num_nodes + source, return_inverse=True)
    loops = torch.arange(num_nodes, device=device)
    loop_pairs = loops * num_nodes + loops
    all_pairs, order = torch.sort(torch.cat([pairs, loop_pairs[~torch.isin(loop_pairs, pairs)]]))
    result = torch.stack([all_pairs % num_nodes, all_pairs // num_nodes])
    if edge_attr is None:
        return result
    # [P, D]: the mean of each distinct pair's features
    copies = torch.zeros(pairs.numel(), dtype=edge_attr.dtype, device=device).index_add_(
        0, which_pair, torch.ones_like(which_pair, dtype=edge_attr.dtype))
    pair_attr = edge_attr.new_zeros(pairs.numel(), edge_attr.shape[1]).index_add_(0, which_pair, edge_attr)
    pair_attr = pair_attr / copies.unsqueeze(1)
    # [N, D]: the mean of the features of each node's incoming edges other than self loops, for its new self loop
    pair_is_loop = torch.zeros(pairs.numel(), dtype=torch.bool, device=device).index_fill_(0, which_pair[is_loop], True)
    pair_target = pairs // num_nodes
    incoming = torch.zeros(num_nodes, dtype=edge_attr.dtype, device=device).index_add_(
        0, pair_target[~pair_is_loop], torch.ones_like(pair_target[~pair_is_loop], dtype=edge_attr.dtype))
    loop_attr = edge_attr.new_zeros(num_nodes, edge_attr.shape[1]).index_add_(
        0, pair_target[~pair_is_loop], pair_attr[~pair_is_loop])
    loop_attr = loop_attr / incoming.clamp(min=1).unsqueeze(1)
    added = ~torch.isin(loop_pairs, pairs)
    all_attr = torch.cat([pair_attr, loop_attr[added]]).index_select(0, order)
    return result, all_attr
