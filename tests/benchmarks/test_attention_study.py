"""The attention study's pieces: the dictionary-lookup task, the matching-neighbour PPI data, the
zero-attention analysis and the side-by-side entropy figure."""

import re

import pytest
import torch

import playground
from benchmarks import dictionary_lookup, zero_attention
from models import GAT
from tests.helpers import assert_png
from utils.datasets.ppi import load_ppi
from utils.datasets.ppi_synthetic import NUM_CODES, write_synthetic_ppi
from utils.runs.checkpoints import make_checkpoint, save_binary


def test_dictionary_lookup_graphs_ask_each_query_for_its_own_key():
    k, num_graphs = 4, 3
    features, edge_index, labels, query_index = dictionary_lookup.make_graphs(k, num_graphs, torch.Generator().manual_seed(1))
    assert features.shape == (num_graphs * 2 * k, 2 * k + 1) and edge_index.shape == (2, num_graphs * (k * k + k))
    source, target = edge_index
    is_query = features[:, -1] == 1
    loops = source == target
    assert loops.sum() == num_graphs * k and not is_query[target[loops]].any()  # a self loop on every key
    source, target = source[~loops], target[~loops]
    assert is_query[target].all() and not is_query[source].any()            # otherwise keys -> queries only
    assert torch.equal(torch.bincount(target, minlength=features.shape[0])[query_index], torch.full((num_graphs * k,), k))
    assert torch.equal(source // (2 * k), target // (2 * k))                 # never across graphs
    attribute = features[:, :k].argmax(1)
    value = features[:, k:2 * k].argmax(1)
    for query, label in zip(query_index.tolist(), labels.tolist()):
        keys = source[target == query]
        matching = keys[attribute[keys] == attribute[query]]
        assert len(matching) == 1 and value[matching].item() == label


@pytest.mark.slow
def test_dynamic_attention_solves_dictionary_lookup_and_static_cannot():
    gatv2 = dictionary_lookup.train_and_evaluate(4, "gatv2", seed=0, steps=300, num_train_graphs=256,
                                                 num_test_graphs=64)
    gat = dictionary_lookup.train_and_evaluate(4, "gat", seed=0, steps=300, num_train_graphs=256,
                                               num_test_graphs=64)
    assert gatv2["train_acc"] > 0.95 and gatv2["test_acc"] > 0.95, gatv2
    # Every query ranks the keys alike: at best a little above chance (1/4).
    assert gat["train_acc"] < 0.6 and gat["test_acc"] < 0.6, gat


def test_matching_neighbour_codes_point_at_a_neighbour(tmp_path):
    write_synthetic_ppi(tmp_path / "ppi", graphs_per_split=(3, 1, 1), nodes_per_graph=(30, 40),
                        label_rule="matching_neighbour")
    for graph in load_ppi(tmp_path, download=False, standardize=False)["train"]:
        x = graph.node_features.numpy()
        identity, query = x[:, :NUM_CODES].argmax(1), x[:, NUM_CODES:2 * NUM_CODES].argmax(1)
        assert (x[:, :2 * NUM_CODES].sum(1) == 2).all()
        source, target = graph.edge_index.numpy()
        neighbour = source != target
        for node in range(graph.num_nodes):
            neighbours = source[neighbour & (target == node)]
            if len(neighbours) == 0:
                continue
            assert (identity[neighbours] == query[node]).any()  # some neighbour holds the key asked for
    with pytest.raises(ValueError, match="label_rule"):
        write_synthetic_ppi(tmp_path / "other", label_rule="average")


def test_matching_neighbour_nodes_with_the_same_source_share_labels(tmp_path):
    write_synthetic_ppi(tmp_path / "ppi", graphs_per_split=(2, 1, 1), nodes_per_graph=(60, 60),
                        label_rule="matching_neighbour")
    graph = load_ppi(tmp_path, download=False, standardize=False)["train"][0]
    x, labels = graph.node_features.numpy(), graph.labels.numpy()
    identity, query = x[:, :NUM_CODES].argmax(1), x[:, NUM_CODES:2 * NUM_CODES].argmax(1)
    source, target = graph.edge_index.numpy()
    sources = {}
    for node in range(graph.num_nodes):
        neighbours = source[(target == node) & (source != node)]
        matches = neighbours[identity[neighbours] == query[node]]
        if len(matches) == 1:
            sources.setdefault(int(matches[0]), []).append(node)
    shared = [nodes for nodes in sources.values() if len(nodes) > 1]
    assert shared, "expected some neighbours to be the single source of two nodes"
    for nodes in shared:
        assert (labels[nodes] == labels[nodes[0]]).all()


def _small_ppi_model(attention_type="gat"):
    torch.manual_seed(0)
    return GAT(3, [2, 2, 3], [50, 8, 8, 121], dropout=0.0, log_attention_weights=True,
               attention_type=attention_type).eval()


@pytest.mark.parametrize("attention_type", ["gat", "gatv2"])
def test_zero_attention_analysis_recomputes_the_layers_attention(tmp_path, attention_type):
    write_synthetic_ppi(tmp_path / "ppi", graphs_per_split=(1, 1, 1), nodes_per_graph=(40, 50))
    graph = load_ppi(tmp_path, download=False)["test"][0]
    model = _small_ppi_model(attention_type)
    layer = model.layers[0]
    with torch.no_grad():
        layer(graph.node_features, graph.edge_index)
    result = zero_attention.analyse_layer(layer, graph.node_features, graph.edge_index)
    assert result["checked_difference"] < 1e-5
    assert result["zero_global_max"] == 0 and result["zero_per_target"] == 0
    assert 0 < result["skip_share"] < 1

    # Spread the scores far apart: one global maximum now underflows neighbourhoods, the per-target one never.
    with torch.no_grad():
        for name in ("scoring_fn_source", "scoring_fn_target", "scoring_fn"):
            if hasattr(layer, name):
                getattr(layer, name).mul_(2000)
        layer(graph.node_features, graph.edge_index)
    result = zero_attention.analyse_layer(layer, graph.node_features, graph.edge_index)
    assert result["zero_global_max"] > 0 and result["lost_original"] >= result["zero_global_max"]
    assert result["zero_per_target"] == 0 and result["gap_max"] > 87


def test_zero_attention_variants_leave_the_model_as_it_was(tmp_path):
    write_synthetic_ppi(tmp_path / "ppi", graphs_per_split=(1, 1, 2), nodes_per_graph=(40, 50))
    test_graphs = load_ppi(tmp_path, download=False)["test"]
    model = _small_ppi_model()
    before = zero_attention.test_micro_f1(model, test_graphs)
    original = zero_attention.test_micro_f1(model, test_graphs, {i: zero_attention.original_normalisation
                                                                 for i in range(3)})
    zeroed = zero_attention.test_micro_f1(model, test_graphs, {1: zero_attention.zero_attention,
                                                               2: zero_attention.zero_attention})
    # Small scores: the original normalisation loses nothing, so it is the same model.
    assert original == pytest.approx(before, abs=1e-6)
    assert zeroed != before
    assert zero_attention.test_micro_f1(model, test_graphs) == before
    assert "_attend" not in vars(model.layers[1])


@pytest.mark.slow
def test_entropy_side_by_side_of_two_models(cora, cora_data_dir, tmp_path, capsys):
    binaries = []
    for attention_type in ("gat", "gatv2"):
        torch.manual_seed(0)
        model = GAT(2, [8, 1], [cora.node_features.shape[1], 8, cora.num_classes], attention_type=attention_type)
        binaries.append(save_binary(make_checkpoint(model, training_state={"dataset": "cora"}), "cora", tmp_path))
    playground.main(["visualize_gat", "--visualization_type", "entropy", "--model_name", str(binaries[0]),
                     "--compare_with", str(binaries[1]), "--output_dir", str(tmp_path / "figures"),
                     "--data_dir", str(cora_data_dir)])
    output = capsys.readouterr().out
    assert "(gat): mean entropy" in output and "(gatv2): mean entropy" in output
    figure = next((tmp_path / "figures").glob("*_vs_*_attention_entropy.png"))
    assert_png(figure)
    with pytest.raises(SystemExit, match="entropy only"):
        playground.main(["visualize_gat", "--model_name", str(binaries[0]), "--compare_with", str(binaries[1])])


def test_a_saved_dictionary_lookup_run_opens_in_the_explorer(tmp_path, capsys):

    result = dictionary_lookup.train_and_evaluate(4, "gatv2", seed=0, steps=20, num_train_graphs=64,
                                                  num_test_graphs=8)
    path = tmp_path / "lookup.pth"
    dictionary_lookup.save_run(path, result, 4, "gatv2", 0, hidden=64, num_heads=1)
    assert path.stat().st_size < 100_000  # the model and one graph, not the whole test set
    playground.main(["explore", "--model_name", str(path), "--output", str(tmp_path / "lookup.html")])
    assert "lookup.html" in capsys.readouterr().out
    page = (tmp_path / "lookup.html").read_text()
    assert "Dictionary lookup, k = 4: attention of GATV2" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:|fetch\(|XMLHttpRequest""", page)  # nothing from a network
    features, edge_index, _, _ = result["test_graph"]
    with torch.no_grad():
        _, attention = result["model"].attention(features, edge_index, return_attention_weights=True)
    data = dictionary_lookup.explorer_data(torch.load(path, weights_only=True), path)
    assert torch.equal(data.attention[0], attention) and data.labels.tolist()[:4] == [-1] * 4
