"""benchmarks/stats.py against hand-computed values, and benchmarks/pyg_accuracy.py as a peer of our GAT."""

import math

import pytest
import torch

from benchmarks.stats import format_summary, summarize

T_975_DF3 = 3.1824463052837078  # Student's t, 97.5 % quantile, 3 degrees of freedom (tables: 3.182)


def test_summarize_matches_hand_computed_values():
    summary = summarize([1, 2, 3, 4])
    std = math.sqrt(5 / 3)  # squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n - 1 = 3
    half_width = T_975_DF3 * std / 2
    assert summary["n"] == 4
    assert summary["mean"] == pytest.approx(2.5)
    assert summary["std"] == pytest.approx(1.2909944487358056)
    assert summary["ci95_low"] == pytest.approx(2.5 - half_width)
    assert summary["ci95_high"] == pytest.approx(2.5 + half_width)
    assert summary["ci95_low"] == pytest.approx(0.4458, abs=1e-4)


def test_summarize_of_one_value_has_no_spread():
    assert summarize([0.83]) == dict(mean=0.83, std=0.0, ci95_low=0.83, ci95_high=0.83, n=1)


def test_summarize_refuses_no_values():
    with pytest.raises(ValueError):
        summarize([])


def test_format_summary_scales_to_percent():
    summary = dict(mean=0.83214, std=0.011634, ci95_low=0.82382, ci95_high=0.84046, n=10)
    assert format_summary(summary) == "83.21 ± 1.16 (95 % CI 82.38-84.05, n=10)"
    assert format_summary(summarize([2.0]), scale=1) == "2.00 ± 0.00 (95 % CI 2.00-2.00, n=1)"


@pytest.mark.slow
def test_pyg_model_with_our_weights_computes_our_logits(cora):
    """Same neighbourhoods, same maths: GATConv without its own self loops, given our layers' weights, returns
    our eval-mode logits on Cora."""
    pytest.importorskip("torch_geometric")
    from benchmarks.pyg_accuracy import PygGAT, check_edge_index
    from utils.training.one_graph import CITATION_ARCHITECTURE
    from utils.training.setup import build_model

    check_edge_index(cora.edge_index, cora.num_nodes)
    ours = build_model(CITATION_ARCHITECTURE, cora.node_features.shape[1], cora.num_classes, "IMP3").eval()
    peer = PygGAT(cora.node_features.shape[1], cora.num_classes).eval()
    with torch.no_grad():
        for layer, conv in zip(ours.layers, (peer.conv1, peer.conv2)):
            conv.lin.weight.copy_(layer.linear_proj.weight)
            conv.att_src.copy_(layer.scoring_fn_source)
            conv.att_dst.copy_(layer.scoring_fn_target)
            conv.bias.copy_(torch.randn_like(conv.bias))  # zero at init: make it count
            layer.bias.copy_(conv.bias)
        expected = ours(cora.node_features, cora.edge_index)
        actual = peer(cora.node_features, cora.edge_index)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_check_edge_index_refuses_a_graph_without_self_loops():
    pytest.importorskip("torch_geometric")
    from benchmarks.pyg_accuracy import check_edge_index
    with pytest.raises(ValueError, match="self loop"):
        check_edge_index(torch.tensor([[0, 1], [1, 0]]), 2)


@pytest.mark.slow
def test_train_pyg_gat_smoke(cora):
    pytest.importorskip("torch_geometric")
    from benchmarks.pyg_accuracy import train_pyg_gat

    result = train_pyg_gat(cora, cora.train_indices, cora.val_indices, cora.test_indices, seed=0,
                           patience=5, max_epochs=30)
    assert set(result) == {"test_acc", "best_val_acc", "best_epoch", "epochs"}
    assert 0 < result["test_acc"] <= 1
    assert 1 <= result["best_epoch"] <= result["epochs"] <= 30


@pytest.mark.parametrize("module", ["accuracy", "pyg_accuracy", "bench_speed", "dictionary_lookup"])
def test_benchmarks_refuse_an_unwritable_output_before_running(module, tmp_path, capsys):
    """A JSON that cannot be written is said at once, not after the runs it was to hold."""
    import importlib
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"benchmarks.{module}").main(["--output", str(blocker / "results.json")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--output" in error and "is a file, not a folder" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
