"""The graph the GAT layers attend over: an edge_index checked once, and every layout the layers need, built once
and kept with it.

    graph = Graph(edge_index, num_nodes)          # checks the edge_index contract (models/edge_index.py)
    logits = model(features, graph)               # each layer asks the graph for its layout, built on first use
    train = graph.restricted_to(train_nodes, num_layers=2)
    logits = model(features, train)               # == model(features, graph)[train_nodes], computing less

Building the graph once is the fast path: a warm step then reads nothing back from the device and compiles into
one graph. A layer or model given a plain edge_index tensor wraps it in a new Graph on every call, which is
correct and never stale but pays the check and the layouts each time (on a GPU they read values back to the host),
as PyG's layers do with a plain edge_index.

A Graph owns its edge_index (a copy made when it is built): editing the tensor it was built from afterwards changes
nothing in it. To change the graph, build a new one. (copy=False hands the tensor over instead of copying it, for
a caller that made it for the graph and never touches it again, as the loaders and the sampler do.) edge_attr,
features of the edges rather than structure, is kept as given.

Layouts (models/layouts.py), each built on first use and kept:
    edges_by_target(num_heads)   IMP3's TargetSortedEdges (one per head count: layers with the same heads share it)
    attention_mask(dtype)        IMP1's and IMP2's dense [N, N] mask
    sparse_pattern(num_heads)    IMP4's SparseAttentionPattern
`.to(device)` moves the graph with every layout built so far; `.pin_memory()` pins them for a copy that does not
make the host wait. `model.build_layouts(graph)` builds what a model will ask for in advance: where host syncs are
free, e.g. on the CPU before a batch moves to the GPU.
"""

import torch

from .edge_index import check_edge_index
from .layouts import SparseAttentionPattern, TargetSortedEdges, attention_mask, receptive_field


class Graph:
    """edge_index [2, E] (row 0 the source j, row 1 the target i of each edge j -> i) over num_nodes nodes, checked
    when built (check=False skips it, for a graph known to satisfy the contract), with the optional edge_attr [E, D].
    The Graph keeps a copy of edge_index (copy=False: the tensor itself, which the caller then leaves alone).

    A Graph made by `restricted_to` for one layer also has needed_rows, a bool mask [N] of the rows that layer
    must compute (None: every row); its IMP3 layout then keeps only the edges into those rows."""

    def __init__(self, edge_index, num_nodes, edge_attr=None, *, check=True, copy=True):
        if not isinstance(edge_index, torch.Tensor):
            raise TypeError(f"edge_index must be a tensor [2, E], got {type(edge_index).__name__}")
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
        if edge_attr is not None and (edge_attr.dim() != 2 or edge_attr.shape[0] != edge_index.shape[1]):
            raise ValueError(f"edge_attr must be [E, D], one row per column of edge_index (E = {edge_index.shape[1]}),"
                             f" got {tuple(edge_attr.shape)}")
        if check:
            check_edge_index(edge_index, num_nodes)
        self.edge_index = edge_index.clone() if copy else edge_index
        self.num_nodes = int(num_nodes)
        self.edge_attr = edge_attr
        self.needed_rows = None
        self._whole = None  # (a graph restricted to some rows: the graph it restricts; None: itself)
        self._layouts = {}

    @property
    def whole(self):
        """The graph itself, or for one restricted to some rows the graph it restricts. (Not a reference to itself:
        a Graph must not sit in a reference cycle, or its layouts would wait for the garbage collector.)"""
        return self if self._whole is None else self._whole

    @property
    def num_edges(self):
        return self.edge_index.shape[1]

    @property
    def device(self):
        return self.edge_index.device

    def __repr__(self):
        rows = "" if self.needed_rows is None else ", some rows"
        return (f"Graph(num_nodes={self.num_nodes}, num_edges={self.num_edges}, device={self.device}{rows}, "
                f"layouts={sorted(str(key) for key in self._layouts)})")

    # ------------------------------------------------------------------------- the layouts

    def edges_by_target(self, num_heads):
        """IMP3's edges sorted by target, for layers of num_heads heads (only those into needed_rows, if set)."""
        return self._layout(("edges by target", num_heads),
                            lambda: TargetSortedEdges(self.edge_index, self.num_nodes, num_heads, self.needed_rows))

    def attention_mask(self, dtype):
        """IMP1's and IMP2's [N, N] additive mask: 0 at every edge (row: target, column: source), -inf elsewhere."""
        return self.whole._layout(("attention mask", dtype),
                                  lambda: attention_mask(self.edge_index, self.num_nodes, dtype))

    def sparse_pattern(self, num_heads):
        """IMP4's index of the sparse [H, N, N] attention."""
        return self.whole._layout(("sparse pattern", num_heads),
                                  lambda: SparseAttentionPattern(self.edge_index, self.num_nodes, num_heads))

    def _layout(self, key, build):
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layouts[key] = build()
        return layout

    # ------------------------------------------------------------------------- the rows that are read

    def restricted_to(self, output_nodes, num_layers):
        """What a stack of num_layers layers needs to compute the last layer's rows at output_nodes (an index or a
        bool mask) and nothing else: a RestrictedGraph, to give a GAT in place of this graph."""
        return RestrictedGraph(self, output_nodes, num_layers)

    def with_needed_rows(self, needed_rows):
        """This graph for a layer that must compute only the rows in the bool mask needed_rows [N]: its IMP3 layout
        keeps the edges into those rows; the other layouts are the whole graph's."""
        view = object.__new__(Graph)
        view.__dict__.update(self.whole.__dict__)
        view.needed_rows, view._whole, view._layouts = needed_rows, self.whole, {}
        return view

    # ------------------------------------------------------------------------- devices

    def to(self, device, non_blocking=False):
        """The same graph on `device`, with every layout built so far."""
        return self._moved(lambda tensor: tensor.to(device, non_blocking=non_blocking), {})

    def pin_memory(self):
        """The same graph in pinned host memory (for .to(cuda, non_blocking=True)), with its layouts."""
        return self._moved(lambda tensor: tensor.pin_memory(), {})

    def _moved(self, move, moved_wholes):
        """(moved_wholes: what each whole graph became, so that the views of one graph stay views of one graph)"""
        whole = moved_wholes.get(id(self.whole))
        if whole is None:
            whole = object.__new__(Graph)
            whole.__dict__.update(self.whole.__dict__)
            whole.edge_index = move(self.whole.edge_index)
            whole.edge_attr = None if self.whole.edge_attr is None else move(self.whole.edge_attr)
            whole._whole, whole._layouts = None, _moved_layouts(self.whole._layouts, move)
            moved_wholes[id(self.whole)] = whole
        if self.whole is self:
            return whole
        view = whole.with_needed_rows(move(self.needed_rows))
        view._layouts = _moved_layouts(self._layouts, move)
        return view


def _moved_layouts(layouts, move):
    return {key: (move(layout) if isinstance(layout, torch.Tensor) else layout._apply(move))
            for key, layout in layouts.items()}


class RestrictedGraph:
    """A graph as a stack of num_layers layers needs it to compute the last layer's rows at output_nodes only.

    layers[i]: the graph for layer i, restricted to the rows the following layers read (its receptive field, see
    models.layouts.receptive_field), or the whole graph where that is every row. A GAT given it returns the logits
    of output_nodes only, in their order: bit for bit model(features, graph)[output_nodes], gradients included.
    Layers that cannot leave out edges (GATv2, edge features, attention returned, the dense layers, IMP4) use the
    whole graph, so the result is the same for every model. Build it once per set of nodes (a training split, the
    validation nodes) and reuse it: building it reads values back to the host."""

    def __init__(self, graph, output_nodes, num_layers):
        self.graph, self.output_nodes, self.num_layers = graph, output_nodes, num_layers
        needed = receptive_field(graph.edge_index, output_nodes, graph.num_nodes, num_layers)
        self.layers = [graph if rows is None else graph.with_needed_rows(rows) for rows in needed]

    @property
    def num_nodes(self):
        return self.graph.num_nodes

    def __repr__(self):
        return f"RestrictedGraph({self.graph}, {self.num_layers} layers)"

    def to(self, device, non_blocking=False):
        return self._moved(lambda tensor: tensor.to(device, non_blocking=non_blocking))

    def pin_memory(self):
        return self._moved(lambda tensor: tensor.pin_memory())

    def _moved(self, move):
        moved = object.__new__(RestrictedGraph)
        moved_wholes = {}
        moved.graph = self.graph._moved(move, moved_wholes)
        moved.num_layers = self.num_layers
        moved.output_nodes = (move(self.output_nodes) if isinstance(self.output_nodes, torch.Tensor)
                              else self.output_nodes)
        moved.layers = [layer._moved(move, moved_wholes) for layer in self.layers]
        return moved


def as_graph(edge_index, num_nodes):
    """A layer's or model's graph argument as a Graph (or a RestrictedGraph, passed through): a plain edge_index
    tensor is wrapped, and so checked, anew. A graph built for another number of nodes is refused in one line."""
    if isinstance(edge_index, (Graph, RestrictedGraph)):
        if edge_index.num_nodes != num_nodes:
            raise ValueError(f"the graph has {edge_index.num_nodes} nodes, but node_features has {num_nodes} rows; "
                             "give one row of features per node of the graph")
        return edge_index
    return Graph(edge_index, num_nodes)
