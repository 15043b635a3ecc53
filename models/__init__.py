"""GAT models. Attention is computed in models/gat_layers.py (its fast ops in models/fast_ops.py); the model
stack is in models/gat.py; the edge_index the layers expect, and a helper that makes any edge list fit, in
models/edge_index.py."""

from models.edge_index import check_edge_index, gat_edge_index
from models.fast_ops import edge_softmax
from models.gat import GAT, GATConfig
from models.gat_layers import GATLayer, GATLayerImp1, GATLayerImp2, GATLayerImp3, GATLayerImp4, LayerType

__all__ = ["GAT", "GATConfig", "GATLayer", "GATLayerImp1", "GATLayerImp2", "GATLayerImp3", "GATLayerImp4", "LayerType",
           "check_edge_index", "edge_softmax", "gat_edge_index"]
