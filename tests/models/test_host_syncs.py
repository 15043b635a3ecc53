"""A warm training step waits for the device nowhere: counted on the CPU with utils.profiling.HostSyncCounter."""

import pytest
import torch

from models import GAT, fast_ops
from tests.helpers import random_graph
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.profiling import HostSyncCounter
from utils.training.one_graph import CITATION_ARCHITECTURE, FullBatchEpochs, LabelledGraph
from utils.training.precision import Precision
from utils.training.setup import build_model, make_optimizer


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
    features, edge_index = sparsify_if_mostly_zero(cora.node_features), cora.edge_index
    model = build_model(CITATION_ARCHITECTURE, features.shape[1], cora.num_classes, "IMP3",
                        attention_type=attention_type)
    optimizer = make_optimizer(model, 0.005, 5e-4)

    def step_and_evaluate():
        model.train()
        optimizer.zero_grad()
        logits = model(features, edge_index, output_nodes=cora.train_indices)
        torch.nn.functional.cross_entropy(logits, cora.labels[cora.train_indices]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            model(features, edge_index, output_nodes=cora.val_indices)

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


def test_a_new_graph_per_step_is_laid_out_once_for_the_layers_with_the_same_heads(monkeypatch):
    features, edge_index = random_graph(num_nodes=50, num_edges=200, num_features=8)
    built = []
    original = fast_ops.TargetSortedEdges.__init__
    monkeypatch.setattr(fast_ops.TargetSortedEdges, "__init__",
                        lambda self, *args, **kwargs: built.append(args[2]) or original(self, *args, **kwargs))
    model = GAT(3, [4, 4, 6], [8, 16, 16, 5], dropout=0.0)
    model(features, edge_index)
    assert sorted(built) == [4, 6]  # one layout for both 4-head layers, one for the 6-head layer


def test_the_gpu_ways_of_laying_out_edges_give_the_cpu_ways_integers():
    _, edge_index = random_graph(num_nodes=30, num_edges=90, undirected=False, shuffle=True)
    source, target, order = fast_ops.sort_by_target(edge_index[0], edge_index[1])
    always_source, always_target, always_order = fast_ops.sort_by_target(edge_index[0], edge_index[1], always=True)
    assert torch.equal(source, always_source) and torch.equal(target, always_target)
    assert torch.equal(order, always_order)
    assert torch.equal(fast_ops.csr_offsets(target, 30), fast_ops.csr_offsets(target, 30, by_search=True))
    sorted_graph = fast_ops.sort_by_target(*random_graph(num_nodes=30, num_edges=90)[1])
    assert sorted_graph[2] is None  # already sorted: the CPU leaves it, a GPU sorts anyway (the same result)
