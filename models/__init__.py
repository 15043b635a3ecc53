"""GAT models. Attention is computed in models/gat_layers.py (its fast ops in models/fast_ops.py); the model
stack is in models/gat.py."""

from models.fast_ops import edge_softmax
from models.gat import GAT, GATConfig
from models.gat_layers import GATLayer, GATLayerImp1, GATLayerImp2, GATLayerImp3, LayerType

__all__ = ["GAT", "GATConfig", "GATLayer", "GATLayerImp1", "GATLayerImp2", "GATLayerImp3", "LayerType",
           "edge_softmax"]
