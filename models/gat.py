"""The GAT model: a stack of GAT layers of one implementation, described by one config."""

import dataclasses

import torch
import torch.nn as nn

from .gat_layers import ATTENTION_TYPES, LAYER_CLASSES, LayerType
from .graph import RestrictedGraph, as_graph


@dataclasses.dataclass
class GATConfig:
    """Everything that fixes a model's shape. Saved in every checkpoint next to the weights.

    num_features_per_layer has num_of_layers + 1 entries (input width first); hidden layers
    concatenate their heads and apply ELU, the last layer averages its heads.
    """
    num_of_layers: int
    num_heads_per_layer: list
    num_features_per_layer: list
    add_skip_connection: bool = True
    bias: bool = True
    dropout: float = 0.6
    layer_type: str = LayerType.IMP3.name
    attention_type: str = "gat"   # "gat" (the paper) or "gatv2" (dynamic attention, Brody et al. 2022)
    edge_dim: int = None          # edge features per edge in the attention (None: none, as in the paper)

    def __post_init__(self):
        self.num_heads_per_layer = [int(h) for h in self.num_heads_per_layer]
        self.num_features_per_layer = [int(f) for f in self.num_features_per_layer]
        self.layer_type = LayerType.parse(self.layer_type).name
        if self.num_of_layers < 1:
            raise ValueError(f"num_of_layers must be >= 1, got {self.num_of_layers}")
        if len(self.num_heads_per_layer) != self.num_of_layers:
            raise ValueError(f"num_heads_per_layer needs {self.num_of_layers} entries (one per layer), "
                             f"got {self.num_heads_per_layer}")
        if len(self.num_features_per_layer) != self.num_of_layers + 1:
            raise ValueError(f"num_features_per_layer needs {self.num_of_layers + 1} entries (input "
                             f"width, then one per layer), got {self.num_features_per_layer}")
        if self.attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type must be one of {', '.join(ATTENTION_TYPES)}, got {self.attention_type!r}")
        if self.edge_dim is not None and (isinstance(self.edge_dim, bool) or not isinstance(self.edge_dim, int)
                                          or self.edge_dim < 1):
            raise ValueError(f"edge_dim must be a positive number of edge features (or None), got {self.edge_dim!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class GAT(nn.Module):
    """model(node_features [N, F_in], graph) -> logits [N, num_features_per_layer[-1]].

    graph: a models.Graph, built once from edge_index [2, E] (row 0 source, row 1 target, self loops included,
    no duplicate edges: the loaders in utils/ return it that way; models.gat_edge_index makes any edge list so),
    which checks it once and keeps the layouts the layers need: the fast path. A plain edge_index tensor works
    too, wrapped in a new Graph (checked, laid out) on every call. `model.layers` is the sequence of GAT layers.

    With edge_dim=D every layer puts edge features into its attention: model(x, edge_index, edge_attr [E, D]).
    model(..., return_attention_weights=True) returns (logits, attention): one [E, H] tensor per layer, each
    edge's attention (before dropout) aligned with edge_index's columns.

    model(node_features, graph.restricted_to(idx, num_layers)) returns model(node_features, graph)[idx], bit
    for bit, and its gradients are the same too, but the layers skip the per-edge work that those rows do not
    depend on (models.RestrictedGraph): a transductive training step needs only the training nodes' logits, a
    validation pass only the validation nodes'. model(node_features, graph, output_nodes=idx) is the same,
    with the restriction worked out anew on every call.
    """

    def __init__(self, num_of_layers, num_heads_per_layer, num_features_per_layer, add_skip_connection=True,
                 bias=True, dropout=0.6, layer_type=LayerType.IMP3, log_attention_weights=False,
                 attention_type="gat", edge_dim=None):
        super().__init__()
        self.config = GATConfig(num_of_layers, list(num_heads_per_layer), list(num_features_per_layer),
                                add_skip_connection, bias, dropout, LayerType.parse(layer_type).name, attention_type,
                                edge_dim)
        layer_class = LAYER_CLASSES[LayerType.parse(layer_type)]
        heads = [1] + self.config.num_heads_per_layer  # the input counts as one "head"
        features = self.config.num_features_per_layer

        layers = []
        for i in range(num_of_layers):
            is_last = i == num_of_layers - 1
            layers.append(layer_class(
                num_in_features=features[i] * heads[i],
                num_out_features=features[i + 1],
                num_heads=heads[i + 1],
                concat=not is_last,
                activation=None if is_last else nn.ELU(),
                dropout_prob=dropout,
                add_skip_connection=add_skip_connection,
                bias=bias,
                log_attention_weights=log_attention_weights,
                attention_type=attention_type,
                edge_dim=edge_dim,
            ))
        self.layers = nn.ModuleList(layers)

    @classmethod
    def from_config(cls, config, **overrides):
        """Build a model from a GATConfig or its dict; overrides such as layer_type=... win."""
        fields = dataclasses.asdict(config) if isinstance(config, GATConfig) else dict(config)
        fields.update(overrides)
        return cls(**fields)

    @property
    def layer_type(self):
        return LayerType[self.config.layer_type]

    def forward(self, node_features, edge_index, edge_attr=None, *, output_nodes=None, return_attention_weights=False):
        """node_features [N, F_in], edge_index (a models.Graph, a RestrictedGraph, or an edge_index [2, E]),
        edge_attr [E, edge_dim] (only with edge_dim; a Graph built with edge_attr gives its own) -> logits.

        A RestrictedGraph (graph.restricted_to(idx, num_layers)): returns exactly logits[idx], computing less.
        output_nodes: an index (or bool mask) of rows, the same with the restriction worked out on this call.
        return_attention_weights=True: returns (logits, [attention [E, H] of each layer])."""
        graph = as_graph(edge_index, node_features.shape[0])
        if output_nodes is not None:
            if isinstance(graph, RestrictedGraph):
                raise ValueError("give output_nodes or a RestrictedGraph, not both")
            graph = graph.restricted_to(output_nodes, len(self.layers))
        layer_graphs = self._layer_graphs(graph)
        x, attention = node_features, []
        for layer, layer_graph in zip(self.layers, layer_graphs):
            if return_attention_weights:
                x, layer_attention = layer(x, layer_graph, edge_attr, return_attention_weights=True)
                attention.append(layer_attention)
            else:
                x = layer(x, layer_graph, edge_attr)
        logits = x[graph.output_nodes] if isinstance(graph, RestrictedGraph) else x
        return (logits, attention) if return_attention_weights else logits

    def build_layouts(self, graph):
        """Build now every layout the layers will ask `graph` (a Graph or RestrictedGraph) for: where reading values
        back costs nothing, e.g. on the CPU before a batch's graph moves to the GPU. Returns the graph."""
        for layer, layer_graph in zip(self.layers, self._layer_graphs(graph)):
            layer.build_layouts(layer_graph)
        return graph

    def _layer_graphs(self, graph):
        if not isinstance(graph, RestrictedGraph):
            return [graph] * len(self.layers)
        if graph.num_layers != len(self.layers):
            raise ValueError(f"the RestrictedGraph was made for {graph.num_layers} layers, the model has "
                             f"{len(self.layers)}; make it with graph.restricted_to(nodes, {len(self.layers)})")
        return graph.layers

    def forward_with_hidden(self, node_features, edge_index, edge_attr=None, return_attention_weights=False):
        """Like forward, but also returns every layer's output (for embeddings plots): (logits, hidden), or with
        return_attention_weights=True (logits, hidden, attention)."""
        outputs, attention = [], []
        x, graph = node_features, as_graph(edge_index, node_features.shape[0])
        if isinstance(graph, RestrictedGraph):
            graph = graph.graph  # (every row of every layer: hidden outputs are wanted whole)
        for layer in self.layers:
            x = layer(x, graph, edge_attr, return_attention_weights=return_attention_weights)
            if return_attention_weights:
                x, layer_attention = x
                attention.append(layer_attention)
            outputs.append(x)
        return (x, outputs, attention) if return_attention_weights else (x, outputs)

