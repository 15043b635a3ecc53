"""A warm training step waits for the device nowhere: counted on the CPU with utils.profiling.HostSyncCounter.

The guarantee holds for a models.Graph built once (for a batch: built and laid out on the CPU before it moves),
which is what the trainers do; a plain edge_index is checked and laid out on every call."""

import pytest
import torch

from models import GAT, Graph, layouts
from tests.helpers import random_graph
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.datasets.ppi_synthetic import write_synthetic_ppi
from utils.profiling import HostSyncCounter
from utils.training.many_graphs import PPI_ARCHITECTURE
from utils.training.one_graph import CITATION_ARCHITECTURE, FullBatchEpochs, LabelledGraph
from utils.training.precision import Precision
from utils.training.sampling import NeighbourSampler
from utils.training.setup import build_model, make_optimizer, to_device


def test_the_counter_sees_what_waits_for_the_device():
    values = torch.arange(6.0)
    with HostSyncCounter() as syncs:
        values.sum().item()
        values.nonzero()
        torch.segment_reduce(values, "max", lengths=torch.tensor([2, 4]))
        torch.segment_reduce(values, "max", lengths=torch.tensor([2, 4]), unsafe=True)
    assert syncs.counts == {"_local_scalar_dense": 1, "nonzero": 1, "segment_reduce (checked)": 1}


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_a_warm_step_and_evaluation_on_cora_make_no_host_sync(cora, attention_type):
    features, graph = sparsify_if_mostly_zero(cora.node_features), Graph(cora.edge_index, cora.num_nodes)
    model = build_model(CITATION_ARCHITECTURE, features.shape[1], cora.num_classes, "IMP3",
                        attention_type=attention_type)
    optimizer = make_optimizer(model, 0.005, 5e-4)
    train, val = graph.restricted_to(cora.train_indices, 2), graph.restricted_to(cora.val_indices, 2)

    def step_and_evaluate():
        model.train()
        optimizer.zero_grad()
        logits = model(features, train)
        torch.nn.functional.cross_entropy(logits, cora.labels[cora.train_indices]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            model(features, val)

    step_and_evaluate()  # the first step builds the edge layouts (once per graph)
    with HostSyncCounter() as syncs:
        step_and_evaluate()
    assert not syncs.counts, syncs.counts


def test_the_trainer_reads_the_device_once_per_epoch_and_once_per_evaluation(cora, monkeypatch):
    graph = LabelledGraph(cora)
    model = build_model(CITATION_ARCHITECTURE, cora.node_features.shape[1], cora.num_classes, "IMP3")
    epochs = FullBatchEpochs(model, make_optimizer(model, 0.005), graph, Precision("fp32", "cpu"))
    epochs.train(1, None)
    graph.evaluate(model, "val")  # (the first epoch and evaluation build the edge layouts)
    reads = []
    for method in ("item", "tolist"):
        original = getattr(torch.Tensor, method)
        monkeypatch.setattr(torch.Tensor, method, lambda self, _o=original, _m=method: reads.append(_m) or _o(self))
    with HostSyncCounter() as syncs:
        train_loss, train_accuracy = epochs.train(2, None)
        val_loss, val_accuracy = graph.evaluate(model, "val")
    assert reads == ["tolist", "tolist"] and not syncs.counts, (reads, syncs.counts)
    assert isinstance(train_loss, float) and 0 <= val_accuracy <= 1


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_a_warm_sampled_step_on_a_new_batch_makes_no_host_sync(cora, attention_type):
    # As SampledEpochs does it: the batch is sampled, checked and laid out on the CPU, then moved; what runs on the
    # device (forward, backward, the optimizer's step) never waits for it.
    model = build_model(CITATION_ARCHITECTURE, cora.node_features.shape[1], cora.num_classes, "IMP3",
                        attention_type=attention_type)
    optimizer = make_optimizer(model, 0.005, 5e-4)
    sampler = NeighbourSampler(cora.edge_index, cora.num_nodes, [10, 10], seed=0)
    device = torch.device("cpu")

    def step(first):
        batch = sampler.sample(cora.train_indices[first:first + 64])
        graph = to_device(model.build_layouts(batch.graph()), device)
        nodes = to_device(batch.nodes, device)
        with HostSyncCounter() as syncs:
            optimizer.zero_grad()
            logits = model(cora.node_features.index_select(0, nodes), graph)[:batch.num_targets]
            torch.nn.functional.cross_entropy(logits, cora.labels[nodes[:batch.num_targets]]).backward()
            optimizer.step()
        return syncs.counts
    step(0)  # (the first step: the optimizer's state)
    assert not step(64), "a new batch's step waited for the device"


def test_a_warm_ppi_step_on_a_new_batch_makes_no_host_sync(tmp_path):
    from utils.datasets.graph import merge_graphs
    from utils.datasets.ppi import load_ppi
    write_synthetic_ppi(tmp_path / "ppi", graphs_per_split=(4, 1, 1), nodes_per_graph=(30, 40))
    graphs = load_ppi(tmp_path)["train"]
    model = build_model(dict(PPI_ARCHITECTURE, hidden_features=[16, 16]), graphs[0].node_features.shape[1],
                        graphs[0].num_classes, "IMP3")
    optimizer = make_optimizer(model, 0.005)
    device = torch.device("cpu")

    def step(batch):
        graph = to_device(model.build_layouts(Graph(batch.edge_index, batch.num_nodes, copy=False)), device)
        with HostSyncCounter() as syncs:
            optimizer.zero_grad()
            logits = model(batch.node_features, graph)
            torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.labels).backward()
            optimizer.step()
        return syncs.counts
    step(merge_graphs(graphs[:2]))
    assert not step(merge_graphs(graphs[2:])), "a new batch's step waited for the device"


def test_a_graph_lays_out_its_edges_once_for_the_layers_with_the_same_heads(monkeypatch):
    features, edge_index = random_graph(num_nodes=50, num_edges=200, num_features=8)
    built = []
    original = layouts.TargetSortedEdges.__init__
    monkeypatch.setattr(layouts.TargetSortedEdges, "__init__",
                        lambda self, *args, **kwargs: built.append(args[2]) or original(self, *args, **kwargs))
    model = GAT(3, [4, 4, 6], [8, 16, 16, 5], dropout=0.0)
    graph = Graph(edge_index, 50)
    model(features, graph)
    model(features, graph)
    assert sorted(built) == [4, 6]  # one layout for both 4-head layers, one for the 6-head layer, once


def test_the_gpu_ways_of_laying_out_edges_give_the_cpu_ways_integers():
    _, edge_index = random_graph(num_nodes=30, num_edges=90, undirected=False, shuffle=True)
    source, target, order = layouts.sort_by_target(edge_index[0], edge_index[1])
    always_source, always_target, always_order = layouts.sort_by_target(edge_index[0], edge_index[1], always=True)
    assert torch.equal(source, always_source) and torch.equal(target, always_target)
    assert torch.equal(order, always_order)
    assert torch.equal(layouts.csr_offsets(target, 30), layouts.csr_offsets(target, 30, by_search=True))
    sorted_graph = layouts.sort_by_target(*random_graph(num_nodes=30, num_edges=90)[1])
    assert sorted_graph[2] is None  # already sorted: the CPU leaves it, a GPU sorts anyway (the same result)
