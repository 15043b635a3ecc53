"""Neighbour-sampled mini-batches and layer-wise inference, for graphs whose full-batch training does not fit.

    sampler = NeighbourSampler(edge_index, num_nodes, fanouts=[10, 10], seed=0)
    batch = sampler.sample(target_nodes)        # a SampledSubgraph
    logits = model(features[batch.nodes], batch.graph())[:batch.num_targets]

`sample` starts from the target nodes and, hop by hop, draws up to `fanout` incoming neighbours (without
replacement) of each node that the previous hop added; a node with fewer neighbours keeps them all.
The union of the sampled edges, relabelled to local ids with the targets first and a self loop on every
node, is an ordinary small graph that the unchanged GAT layers run on. The first fanout belongs to the hop
next to the targets (PyG's NeighborLoader convention); give one fanout per GAT layer.

Everything is vectorised tensor code on an index sorted by target and built once (no Python loop over
nodes), and the draws come from the sampler's own torch.Generator: the same seed gives the same batches. It all
runs on the CPU: `batch.graph()` checks the subgraph and lays it out there too (models.Graph), so that a GPU step
only receives it (utils/training/one_graph.py: SampledEpochs).
"""

import contextlib
import ctypes
import ctypes.util
import tempfile

import numpy as np
import torch
from numpy.lib.format import open_memmap

from models import Graph, RestrictedGraph
from models.graph import as_graph
from models.layouts import csr_offsets, sort_by_target


class SampledSubgraph:
    """nodes [n] (global ids, targets first), edge_index [2, e] in local ids 0..n-1 with self loops,
    num_targets: the first num_targets local nodes are the targets the loss is taken on.
    hop_offsets: local nodes hop_offsets[h]:hop_offsets[h + 1] were added by hop h (hop 0: the targets)."""

    def __init__(self, nodes, edge_index, num_targets, hop_offsets):
        self.nodes, self.edge_index, self.num_targets, self.hop_offsets = nodes, edge_index, num_targets, hop_offsets

    @property
    def num_nodes(self):
        return self.nodes.numel()

    def graph(self):
        """The subgraph as a models.Graph, checked (on the CPU, where reading it back costs nothing)."""
        return Graph(self.edge_index, self.num_nodes, copy=False)


class InNeighbours:
    """Every node's incoming neighbours, self loops left out, laid out by target once (CSR):
    the sources of node i are sources[offsets[i]:offsets[i + 1]]."""

    def __init__(self, edge_index, num_nodes):
        source, target = edge_index.cpu()
        keep = source != target
        self.sources, target, _ = sort_by_target(source[keep], target[keep])
        self.offsets = csr_offsets(target, num_nodes)
        self.num_nodes = num_nodes

    @classmethod
    def from_csr(cls, offsets, sources):
        """The same from a CSR index by target without self loops (a disk graph's indptr and indices, memory-mapped:
        sampling reads only the nodes it visits)."""
        neighbours = cls.__new__(cls)
        neighbours.offsets, neighbours.sources, neighbours.num_nodes = offsets, sources, offsets.numel() - 1
        return neighbours

    def degree(self, nodes):
        return self.offsets[nodes + 1] - self.offsets[nodes]


class NeighbourSampler:
    """Draws the subgraph of up to fanouts[h] in-neighbours per node at hop h around a set of targets.

    Its own torch.Generator (seeded by `seed`, or reseeded by the caller per step) makes it repeatable;
    the global torch random state is left alone."""

    def __init__(self, edge_index, num_nodes, fanouts, seed=0, neighbours=None):
        """neighbours: an InNeighbours to draw from (InNeighbours.from_csr for a disk graph) instead of edge_index."""
        if not fanouts or any(int(f) < 1 for f in fanouts):
            raise ValueError(f"fanouts must be one or more positive integers (one per layer), got {fanouts}")
        self.fanouts = [int(f) for f in fanouts]
        self.neighbours = neighbours if neighbours is not None else InNeighbours(edge_index, num_nodes)
        self.generator = torch.Generator().manual_seed(seed)
        self._local_id = torch.full((num_nodes,), -1, dtype=torch.long)  # global -> local, reset after use

    def sample_neighbours(self, nodes, fanout):
        """Up to `fanout` distinct in-neighbours of each node: returns (sources, targets) of the edges drawn."""
        degree = self.neighbours.degree(nodes)
        # One row per candidate edge: its target's position in `nodes` and its index into sources.
        owner = torch.repeat_interleave(torch.arange(nodes.numel()), degree)
        starts = torch.cumsum(degree, 0) - degree
        edge = self.neighbours.offsets[nodes][owner] + torch.arange(owner.numel()) - starts[owner]
        # Without replacement: a random key per candidate; each node keeps its `fanout` smallest keys.
        # Sorting by owner + key (key in [0, 1)) groups each node's candidates in random order.
        keys = torch.rand(owner.numel(), generator=self.generator, dtype=torch.float64)
        order = torch.argsort(owner.double() + keys)
        rank = torch.arange(owner.numel()) - starts[owner[order]]
        chosen = order[rank < fanout]
        return self.neighbours.sources[edge[chosen]].long(), nodes[owner[chosen]]

    def sample(self, targets):
        """The sampled subgraph around `targets` (distinct global node ids)."""
        targets = torch.as_tensor(targets, dtype=torch.long).cpu()
        if torch.unique(targets).numel() != targets.numel():
            raise ValueError("sample() needs distinct target nodes")
        local_id = self._local_id
        added, edge_sources, edge_targets = [targets], [], []
        local_id[targets] = torch.arange(targets.numel())
        count, frontier = targets.numel(), targets
        try:
            for fanout in self.fanouts:
                sources, dests = self.sample_neighbours(frontier, fanout)
                edge_sources.append(sources)
                edge_targets.append(dests)
                frontier = torch.unique(sources)
                frontier = frontier[local_id[frontier] < 0]   # only nodes not in the subgraph yet
                local_id[frontier] = torch.arange(count, count + frontier.numel())
                count += frontier.numel()
                added.append(frontier)
            sources, dests = local_id[torch.cat(edge_sources)], local_id[torch.cat(edge_targets)]
        finally:
            local_id[torch.cat(added)] = -1
        loops = torch.arange(count)
        edge_index = torch.stack([torch.cat([sources, loops]), torch.cat([dests, loops])])
        hop_offsets = [0] + torch.cumsum(torch.tensor([a.numel() for a in added]), 0).tolist()
        return SampledSubgraph(torch.cat(added), edge_index, targets.numel(), hop_offsets)


@torch.no_grad()
def layerwise_inference(model, node_features, graph, chunk_size=None):
    """The model's output in evaluation mode, computed one layer at a time over chunks of target nodes.

    Each step runs one layer on one chunk of targets and the sources they need, so the per-edge work
    and memory at any moment are bounded by the chunk, not by the graph (what stays whole is one
    layer's output, [N, width]). chunk_size=None, or a graph of at most chunk_size nodes: one ordinary
    forward pass. Same result as the full pass up to float rounding.
    graph: a models.Graph (or an edge_index), or a RestrictedGraph for the rows of its output nodes only (the
    one-pass forward then computes only what they depend on).
    """
    was_training = model.training
    model.eval()
    try:
        num_nodes = node_features.shape[0]
        graph = as_graph(graph, num_nodes)
        if chunk_size is None or num_nodes <= chunk_size:
            return model(node_features, graph)
        output_nodes = graph.output_nodes if isinstance(graph, RestrictedGraph) else None
        edge_index = graph.graph.edge_index if isinstance(graph, RestrictedGraph) else graph.edge_index
        device = edge_index.device
        source, target, _ = sort_by_target(edge_index[0], edge_index[1])
        offsets = csr_offsets(target, num_nodes)
        local = torch.full((num_nodes,), -1, dtype=torch.long, device=device)  # global -> chunk-local id
        x = node_features
        for layer in model.layers:
            if x.layout == torch.sparse_csr:
                x = x.to_sparse_coo()  # COO supports picking rows (index_select); CSR does not
            outputs = []
            for first in range(0, num_nodes, chunk_size):
                last = min(first + chunk_size, num_nodes)
                edges = slice(int(offsets[first]), int(offsets[last]))
                # The chunk's targets first, then the other sources their edges come from.
                others = torch.unique(source[edges])
                others = others[(others < first) | (others >= last)]
                nodes = torch.cat([torch.arange(first, last, device=device), others])
                local[nodes] = torch.arange(nodes.numel(), device=device)
                sub_edge_index = torch.stack([local[source[edges]], local[target[edges]]])
                local[nodes] = -1
                # The other sources get self loops: every node of a layer's input needs an incoming edge (their
                # rows are dropped below; the chunk's targets keep exactly their own edges, sorted as they were).
                other_ids = torch.arange(last - first, nodes.numel(), device=device)
                sub_edge_index = torch.cat([sub_edge_index, torch.stack([other_ids, other_ids])], dim=1)
                # (valid by construction, from a checked graph: no check again)
                sub_graph = Graph(sub_edge_index, nodes.numel(), check=False, copy=False)
                outputs.append(layer(x.index_select(0, nodes), sub_graph)[:last - first])
            x = torch.cat(outputs)
        return x if output_nodes is None else x[output_nodes]
    finally:
        model.train(was_training)


# Layer outputs of a disk graph larger than this go to a temporary memory-mapped file ($TMPDIR), not to memory.
LAYER_OUTPUT_IN_MEMORY_BYTES = 1 << 26


@torch.no_grad()
def layerwise_inference_on_disk(model, disk, chunk_size, output_nodes, device=torch.device("cpu"), autocast=None):
    """The model's output at output_nodes for a graph on disk (utils/datasets/disk_graph.py), one layer at a time
    over chunks of chunk_size target nodes. Each layer computes only the rows the next layers read (the receptive
    field of output_nodes: few for a validation split, every node for a large one); each chunk reads its targets'
    in-edges from the CSR index and the rows of the nodes they come from. A layer's output goes to a temporary
    memory-mapped file when it is large (LAYER_OUTPUT_IN_MEMORY_BYTES), so memory stays bounded by the chunk. The same
    as the full pass up to float rounding. autocast: a context for the layers' forward passes."""
    was_training = model.training
    model.eval()
    num_nodes, indptr, indices = disk.num_nodes, disk.indptr, disk.indices
    selected = np.asarray(output_nodes.cpu() if isinstance(output_nodes, torch.Tensor) else output_nodes)
    # The rows each layer must compute, from the last layer back (sorted node ids; None: every node). Where they
    # would be most of the graph anyway (a large test split), every node, without reading the index to find out.
    needed, reach = [np.unique(selected)], 1 + disk.num_edges / max(1, num_nodes)
    for _ in range(len(model.layers) - 1):
        if needed[0] is None or needed[0].size * reach > num_nodes / 2:
            needed.insert(0, None)
            continue
        needed.insert(0, np.union1d(needed[0], _in_sources(indptr, indices, needed[0])))
    needed = [None if rows is None or rows.size == num_nodes else rows for rows in needed]
    try:
        with tempfile.TemporaryDirectory(prefix="gat-layers-") as folder:
            previous = None
            for index, (layer, rows_needed) in enumerate(zip(model.layers, needed)):
                width = layer.num_heads * layer.num_out_features if layer.concat else layer.num_out_features
                if num_nodes * width * 4 > LAYER_OUTPUT_IN_MEMORY_BYTES:
                    output = open_memmap(f"{folder}/layer{index}.npy", mode="w+", dtype=np.float32,
                                         shape=(num_nodes, width))
                else:
                    output = np.empty((num_nodes, width), dtype=np.float32)
                count = num_nodes if rows_needed is None else rows_needed.size
                for first in range(0, count, chunk_size):
                    last = min(first + chunk_size, count)
                    if rows_needed is None:  # (consecutive targets: one contiguous slice of the CSR index)
                        chunk = np.arange(first, last)
                        start, end = int(indptr[first]), int(indptr[last])
                        sources = np.asarray(indices[start:end], dtype=np.int64)
                        degrees = np.diff(np.asarray(indptr[first:last + 1]))
                    else:
                        chunk = rows_needed[first:last]
                        sources = _in_sources(indptr, indices, chunk)
                        degrees = np.asarray(indptr[chunk + 1]) - np.asarray(indptr[chunk])
                    out = _layer_on_chunk(layer, disk, previous, chunk, sources, degrees, device, autocast)
                    output[chunk] = out
                    del out
                    _return_freed_memory()
                previous = output
            return torch.from_numpy(np.ascontiguousarray(previous[selected])).to(device)
    finally:
        model.train(was_training)


def _in_sources(indptr, indices, targets):
    """The sources of the in-edges of `targets` (sorted node ids), target by target: read from the CSR index."""
    starts, ends = np.asarray(indptr[targets]), np.asarray(indptr[targets + 1])
    lengths = ends - starts
    positions = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
    return np.asarray(indices[positions], dtype=np.int64)


def _layer_on_chunk(layer, disk, previous, chunk, sources, degrees, device, autocast):
    """One layer's output rows for the targets `chunk` (their in-edges: `sources`, degrees[k] of them for chunk[k]):
    the layer runs on the subgraph of the targets and their sources, a self loop on every node."""
    targets = np.repeat(np.arange(chunk.size), degrees)  # (local ids: the targets come first, in chunk's order)
    others = np.setdiff1d(np.unique(sources), chunk, assume_unique=True)
    nodes = np.concatenate([chunk, others])
    position = np.searchsorted(chunk, sources)
    inside = (position < chunk.size) & (chunk[np.minimum(position, chunk.size - 1)] == sources)
    local_sources = np.where(inside, position, chunk.size + np.searchsorted(others, sources))
    loops = np.arange(nodes.size)  # (the disk graph implies a self loop on every node)
    edge_index = torch.from_numpy(np.stack([np.concatenate([local_sources, loops]), np.concatenate([targets, loops])]))
    rows = disk.rows(nodes) if previous is None else torch.from_numpy(np.ascontiguousarray(previous[nodes]))
    graph = Graph(edge_index, nodes.size, check=False, copy=False).to(device)
    with autocast() if autocast is not None else contextlib.nullcontext():
        return layer(rows.to(device), graph)[:chunk.size].float().cpu().numpy()


def _return_freed_memory():
    """Give the memory freed by a chunk back to the system (glibc's malloc_trim), where the C library has it: the
    chunks' temporaries differ in size, and the heap would otherwise keep growing with the holes between them."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None
