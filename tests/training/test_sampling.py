"""Neighbour sampling, layer-wise inference, and sampled training on real Cora."""

import pytest
import torch

import training_script_cora
from models import GAT
from utils.datasets.graph import sparsify_if_mostly_zero
from utils.training.one_graph import train_one_graph
from utils.training.sampling import InNeighbours, NeighbourSampler, layerwise_inference


def _edge_set(edge_index):
    return set(map(tuple, edge_index.t().tolist()))


@pytest.mark.parametrize("fanouts", [[10, 10], [3, 2, 1], [1000]])
def test_sampled_subgraph_properties(cora, fanouts):
    sampler = NeighbourSampler(cora.edge_index, cora.num_nodes, fanouts, seed=0)
    targets = torch.randperm(cora.num_nodes, generator=torch.Generator().manual_seed(0))[:256]
    batch = sampler.sample(targets)
    assert torch.equal(batch.nodes[:batch.num_targets], targets)                   # targets first, in order
    assert batch.nodes.unique().numel() == batch.num_nodes                         # each node once
    source, target = batch.edge_index
    assert int(batch.edge_index.max()) < batch.num_nodes
    assert _edge_set(batch.nodes[batch.edge_index]) <= _edge_set(cora.edge_index)  # every edge exists
    assert torch.equal(torch.sort(source[source == target]).values, torch.arange(batch.num_nodes))  # self loops
    assert batch.edge_index.t().unique(dim=0).shape[0] == batch.edge_index.shape[1]                  # no duplicates
    # Hop by hop: the nodes a hop added have at most that hop's fanout sampled in-neighbours; a node
    # with fewer neighbours keeps them all; the last hop's nodes get no in-edges.
    in_degree = torch.bincount(target[source != target], minlength=batch.num_nodes)
    full_degree = InNeighbours(cora.edge_index, cora.num_nodes).degree(batch.nodes)
    for hop, fanout in enumerate(fanouts):
        nodes = slice(batch.hop_offsets[hop], batch.hop_offsets[hop + 1])
        assert (in_degree[nodes] <= fanout).all()
        assert torch.equal(in_degree[nodes], full_degree[nodes].clamp(max=fanout))
    assert (in_degree[batch.hop_offsets[-2]:] == 0).all()


def test_sampling_is_repeatable_per_seed(cora):
    targets = torch.arange(0, 2708, 7)
    first = NeighbourSampler(cora.edge_index, cora.num_nodes, [5, 5], seed=3).sample(targets)
    again = NeighbourSampler(cora.edge_index, cora.num_nodes, [5, 5], seed=3).sample(targets)
    other = NeighbourSampler(cora.edge_index, cora.num_nodes, [5, 5], seed=4).sample(targets)
    assert torch.equal(first.nodes, again.nodes) and torch.equal(first.edge_index, again.edge_index)
    assert not torch.equal(first.edge_index, other.edge_index)


def test_sampler_refuses_bad_input(cora):
    with pytest.raises(ValueError, match="fanouts"):
        NeighbourSampler(cora.edge_index, cora.num_nodes, [10, 0])
    with pytest.raises(ValueError, match="distinct"):
        NeighbourSampler(cora.edge_index, cora.num_nodes, [10]).sample(torch.tensor([1, 1]))


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
@pytest.mark.slow
def test_layerwise_inference_equals_the_full_pass(cora, attention_type):
    torch.manual_seed(0)
    model = GAT(2, [8, 1], [cora.node_features.shape[1], 8, cora.num_classes], attention_type=attention_type)
    features = sparsify_if_mostly_zero(cora.node_features)
    with torch.no_grad():
        full = model.eval()(features, cora.edge_index)
    model.train()
    chunked = layerwise_inference(model, features, cora.edge_index, chunk_size=700)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-5)
    assert model.training  # left as it was


@pytest.mark.slow
def test_sampled_training_learns_cora_and_resumes_exactly(cora, isolated_outputs):
    settings = dict(fanouts=[10, 10], batch_size=64, console_log_freq=0, checkpoint_freq=0, save_binary=False,
                    last_checkpoint_seconds=0, seed=1)
    full = train_one_graph(dict(settings, num_of_epochs=40), log=lambda *_: None, data=cora)
    assert full["test_acc"] > 0.65, full["test_acc"]  # chance is ~0.3 (the largest class)
    # 20 epochs, then --resume to 40: the same weights as the uninterrupted run.
    train_one_graph(dict(settings, num_of_epochs=20), log=lambda *_: None, data=cora)
    resumed = train_one_graph(dict(num_of_epochs=40, resume="last"), log=lambda *_: None, data=cora)
    for name, value in full["model"].state_dict().items():
        assert torch.equal(value, resumed["model"].state_dict()[name]), name
    assert resumed["history"] == full["history"]


def test_cora_script_checks_fanouts(cora_data_dir):
    with pytest.raises(SystemExit) as exit_info:  # the interpreter prints this message to stderr
        training_script_cora.main(["--fanouts", "10", "10", "10", "--data_dir", str(cora_data_dir)])
    assert "error: --fanouts needs one number per GAT layer (2 for cora)" in str(exit_info.value.code)


@pytest.mark.slow
def test_large_graphs_are_evaluated_in_chunks_by_default(cora, monkeypatch):
    from utils.training import one_graph as train_transductive
    from utils.training import sampling
    settings = dict(num_of_epochs=3, console_log_freq=0, checkpoint_freq=0, save_binary=False,
                    last_checkpoint_seconds=None)
    one_pass = train_one_graph(dict(settings), log=lambda *_: None, data=cora)
    chunk_sizes = []
    original = sampling.layerwise_inference
    monkeypatch.setattr(sampling, "layerwise_inference",
                        lambda *args, **kwargs: chunk_sizes.append(args[3]) or original(*args, **kwargs))
    monkeypatch.setattr(train_transductive, "EVAL_ONE_PASS_NODES", 1000)  # Cora's 2708 nodes now count as large
    monkeypatch.setattr(train_transductive, "EVAL_CHUNK_SIZE", 700)
    chunked = train_one_graph(dict(settings), log=lambda *_: None, data=cora)
    assert set(chunk_sizes) == {700}
    for ours, theirs in zip(chunked["history"], one_pass["history"]):
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)
