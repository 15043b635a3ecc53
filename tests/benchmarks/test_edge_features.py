"""The marked-edge task: only the edge features say which neighbour holds the answer."""

import torch

from benchmarks import edge_features
from models import check_edge_index


def test_marked_edge_graphs_hide_the_answer_in_the_edge_features_only():
    k, num_graphs = 4, 5
    features, edge_index, edge_attr, labels, query_index = edge_features.make_graphs(
        k, num_graphs, torch.Generator().manual_seed(0), noise_features=2)
    num_nodes = num_graphs * (k + 1)
    assert features.shape == (num_nodes, k + 1) and edge_index.shape == (2, num_graphs * (2 * k + 1))
    assert edge_attr.shape == (edge_index.shape[1], 3)
    check_edge_index(edge_index, num_nodes)  # self loops added, nothing twice
    source, target = edge_index
    is_query = features[:, -1] == 1
    assert torch.equal(is_query.nonzero().flatten(), query_index)
    for graph, (query, label) in enumerate(zip(query_index.tolist(), labels.tolist())):
        into_query = (target == query) & (source != query)
        marked = source[into_query & (edge_attr[:, 0] == 1)]
        assert into_query.sum() == k and len(marked) == 1  # k candidates, one marked edge
        assert features[marked, :k].argmax().item() == label
        # the query's self loop: the mean of its incoming edges' features (one mark among k edges)
        loop = (target == query) & (source == query)
        torch.testing.assert_close(edge_attr[loop][0], edge_attr[into_query].mean(0))
        # every graph's block of 2k + 1 edges is contiguous, as the training loop's batching assumes
        block = slice(graph * (2 * k + 1), (graph + 1) * (2 * k + 1))
        assert (source[block] // (k + 1) == graph).all() and (target[block] // (k + 1) == graph).all()


def test_edge_features_solve_the_marked_edge_task_and_nothing_else_can():
    with_edges = edge_features.train_and_evaluate(3, True, seed=0, steps=150, num_train_graphs=256,
                                                  num_test_graphs=128)
    without = edge_features.train_and_evaluate(3, False, seed=0, steps=150, num_train_graphs=256,
                                               num_test_graphs=128)
    assert with_edges["test_acc"] > 0.95, with_edges
    assert without["test_acc"] < 0.5, without  # chance is 1/3
