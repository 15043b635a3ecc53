"""What a GAT layer is given, checked before any work (one line each: what is wrong, what to do), and the graph it
works on. Shapes and dtypes are metadata: checking them reads nothing back from the device."""

import torch

from .graph import RestrictedGraph, as_graph


def graph_for_layer(edge_index, num_nodes, needed_rows, skips_unneeded_rows):
    """The models.Graph a layer works on: edge_index as a Graph (a plain tensor wrapped anew), restricted to
    needed_rows if given; the whole graph where the layer computes every row anyway (skips_unneeded_rows False)."""
    graph = as_graph(edge_index, num_nodes)
    if isinstance(graph, RestrictedGraph):
        raise ValueError("a RestrictedGraph is for a whole GAT; give a layer one of its .layers")
    if needed_rows is not None:
        graph = graph.with_needed_rows(needed_rows)
    return graph if graph.needed_rows is None or skips_unneeded_rows else graph.whole


def check_node_features(node_features, num_in_features, weight_dtype):
    if node_features.dim() != 2 or node_features.shape[1] != num_in_features:
        raise ValueError(f"node_features must be [N, {num_in_features}] for this layer (built with "
                         f"num_in_features={num_in_features}), got {tuple(node_features.shape)}")
    _check_dtype("node_features are", node_features, weight_dtype, "features")


def check_edge_attr(edge_attr, num_edges, edge_dim, weight_dtype, given=True):
    """edge_attr [E, edge_dim] for a layer with edge features (edge_dim), None for one without. given: passed to
    forward, not carried by the Graph (whose edge_attr a layer without edge features ignores)."""
    if edge_dim is None:
        if edge_attr is not None and given:
            raise ValueError("edge_attr was given, but the layer has no edge features: build it with edge_dim=D")
        return
    if edge_attr is None:
        raise ValueError(f"the layer was built with edge_dim={edge_dim}: pass edge_attr [E, {edge_dim}]")
    if edge_attr.dim() != 2 or tuple(edge_attr.shape) != (num_edges, edge_dim):
        raise ValueError(f"edge_attr must be [E, edge_dim] = [{num_edges}, {edge_dim}] (one row per column "
                         f"of edge_index), got {tuple(edge_attr.shape)}")
    _check_dtype("edge_attr is", edge_attr, weight_dtype, "edge_attr")


def _check_dtype(what, tensor, weight_dtype, name):
    if tensor.dtype != weight_dtype and not torch.is_autocast_enabled(tensor.device.type):
        raise ValueError(f"{what} {tensor.dtype} but the layer's weights are {weight_dtype}; convert one to the "
                         f"other ({name}.to({weight_dtype}), or model.to({tensor.dtype}))")
