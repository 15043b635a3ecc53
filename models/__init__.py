"""GAT models. Attention is computed in models/gat_layers.py (its fast ops in models/fast_ops.py, each equal to the
plain expression of the same name in models/plain_ops.py); the model stack is in models/gat.py; the graph the
layers attend over, checked once and laid out once, in models/graph.py (its layouts in models/layouts.py); the
edge_index contract, and a helper that makes any edge list fit, in models/edge_index.py."""

from .edge_index import check_edge_index, gat_edge_index
from .gat import GAT, GATConfig
from .gat_layers import GATLayer, GATLayerImp1, GATLayerImp2, GATLayerImp3, GATLayerImp4, LayerType
from .graph import Graph, RestrictedGraph
from .plain_ops import edge_softmax

__all__ = ["GAT", "GATConfig", "GATLayer", "GATLayerImp1", "GATLayerImp2", "GATLayerImp3", "GATLayerImp4", "Graph",
           "LayerType", "RestrictedGraph", "check_edge_index", "edge_softmax", "gat_edge_index"]
