"""Every figure renders headless on real Cora and on PPI-format data, and says what it should."""

import pytest
import torch
from matplotlib.image import imread

import playground
from models import LayerType
from utils import visualizations
from utils.ppi_synthetic import write_synthetic_ppi
from utils.checkpoints import CheckpointError, make_checkpoint, model_from_checkpoint, save_binary
from utils.train_inductive import train_gat_ppi
from utils.train_transductive import train_gat_cora


def assert_png(path, min_side=300):
    image = imread(path)
    assert image.shape[0] >= min_side and image.shape[1] >= min_side, image.shape
    assert image[..., :3].std() > 0.01  # not a blank canvas


@pytest.fixture(scope="module")
def cora_binary(cora, tmp_path_factory):
    """A briefly trained Cora model saved as a binary, as the training script would."""
    binaries = tmp_path_factory.mktemp("binaries")
    result = train_gat_cora(dict(num_of_epochs=30, console_log_freq=0, checkpoint_freq=0, save_binary=False),
                            log=lambda *_: None, data=cora)
    checkpoint = make_checkpoint(result["model"], training_state={"dataset": "cora"})
    return save_binary(checkpoint, "cora", binaries)


def test_degree_statistics_of_cora(cora, tmp_path):
    path, stats = visualizations.plot_degree_statistics(cora.edge_index, cora.num_nodes, tmp_path / "deg.png", "cora")
    assert stats["max_degree_node"] == 1358 and stats["max_neighbours"] == 168 and stats["max_in_degree"] == 169
    assert torch.equal(stats["in_degree"], stats["out_degree"])  # Cora is undirected
    assert_png(path)


def test_graph_drawing_of_cora(cora, tmp_path):
    path = visualizations.plot_graph(cora.edge_index, cora.labels.numpy(), cora.num_nodes, tmp_path / "cora.png",
                                     layout="fr", class_names=visualizations.CORA_CLASS_NAMES)
    assert_png(path, min_side=800)


@pytest.mark.parametrize("layout", ["tree", "kk"])
def test_neighbourhood_attention_for_any_layer_type(cora_binary, cora, tmp_path, layout):
    for layer_type in LayerType:
        model, _ = model_from_checkpoint(cora_binary, layer_type=layer_type, log_attention_weights=True)
        with torch.no_grad():
            model.eval()(cora.node_features, cora.edge_index)
        path = visualizations.plot_neighbourhood_attention(cora.edge_index, model.layers[0].attention_weights,
                                                           cora.labels.numpy(), 1358,
                                                           tmp_path / f"att_{layer_type.name}.png", head=3,
                                                           layout=layout)
        assert_png(path)


def test_entropy_of_uniform_attention_equals_log_degree(cora):
    degree = torch.bincount(cora.edge_index[1], minlength=cora.num_nodes).double()
    uniform = (1.0 / degree[cora.edge_index[1]]).unsqueeze(1)
    entropy, uniform_entropy = visualizations.attention_entropies(cora.edge_index, uniform, cora.num_nodes)
    torch.testing.assert_close(entropy[:, 0], uniform_entropy)
    assert visualizations.entropy_summary(cora.edge_index, [uniform], cora.num_nodes) == pytest.approx([1.0])


def test_playground_visualize_gat_all_types(cora_binary, cora_data_dir, tmp_path, capsys):
    for kind in ("attention", "entropy", "embeddings"):
        playground.main(["visualize_gat", "--visualization_type", kind, "--model_name", str(cora_binary),
                         "--data_dir", str(cora_data_dir), "--output_dir", str(tmp_path)])
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == 3 and any("attention_node1358_layer0_head0" in p for p in pngs), pngs
    for png in tmp_path.glob("*.png"):
        assert_png(png)
    assert "mean entropy, learned / uniform" in capsys.readouterr().out


def test_playground_missing_or_mismatched_binary_is_a_clear_error(cora_binary, cora_data_dir, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        playground.main(["visualize_gat", "--model_name", "no_such_run", "--data_dir", str(cora_data_dir)])
    assert "no checkpoint" in str(exit_info.value.code)
    with pytest.raises(SystemExit) as exit_info:
        playground.main(["visualize_gat", "--model_name", str(cora_binary), "--layer", "5",
                         "--data_dir", str(cora_data_dir), "--output_dir", str(tmp_path)])
    assert "layers" in str(exit_info.value.code)
    with pytest.raises(CheckpointError):
        visualizations.visualize_gat(tmp_path / "nothing.pth")


def test_playground_visualize_dataset_and_profiling(cora_data_dir, tmp_path, capsys):
    playground.main(["visualize_dataset", "--dataset_name", "cora", "--layout", "fr", "--data_dir",
                     str(cora_data_dir), "--output_dir", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["cora_degrees.png", "cora_graph_fr.png"]
    playground.main(["profile_sparse", "--data_dir", str(cora_data_dir)])
    out = capsys.readouterr().out
    for fmt in ("coo", "csr", "csc", "lil", "dense"):
        assert f"| {fmt} |" in out
    assert "168 (+ self loop)" in out


def test_profile_gat_measures_time_and_real_memory(cora_data_dir, tmp_path, monkeypatch):
    from utils import profiling
    monkeypatch.setattr(profiling, "PROFILING_CACHE_DIR", tmp_path)
    results = profiling.profile_gat(["IMP3"], num_of_epochs=2, data_dir=cora_data_dir, device="cpu",
                                    store_cache=True, log=lambda *_: None)
    assert results["IMP3"]["ms_per_epoch"] > 0 and results["IMP3"]["peak_bytes"] > 0
    cached = profiling.profile_gat(["IMP3"], num_of_epochs=2, device="cpu", skip_if_profiling_info_cached=True,
                                   log=lambda *_: None)
    assert cached == results


def test_playground_profile_gat_command(cora_data_dir, capsys):
    assert playground.get_parser().parse_args(["profile_gat"]).layer_types == list(LayerType)
    playground.main(["profile_gat", "--num_of_epochs", "1", "--layer_types", "imp3", "--data_dir", str(cora_data_dir)])
    assert "| IMP3 |" in capsys.readouterr().out


def test_playground_help_and_default_function():
    assert playground.playground_fn in playground.PlaygroundFn
    with pytest.raises(SystemExit) as exit_info:
        playground.main(["--help"])
    assert exit_info.value.code == 0


def test_ppi_figures(tmp_path):
    write_synthetic_ppi(tmp_path / "ppi", graphs_per_split=(4, 1, 1), nodes_per_graph=(40, 50))
    paths = visualizations.visualize_dataset("ppi", tmp_path, tmp_path / "figures", layout="fr", log=lambda *_: None)
    for path in paths:
        assert_png(path)
    result = train_gat_ppi(dict(num_of_epochs=2, hidden_features=8, console_log_freq=0, checkpoint_freq=0,
                                save_binary=True, data_dir=str(tmp_path), progress_bar=False), log=lambda *_: None)
    binary = next((tmp_path / "binaries").glob("ppi_*.pth"))  # conftest points BINARIES_DIR here
    for kind in ("attention", "entropy", "embeddings"):
        path = visualizations.visualize_gat(binary, kind, data_dir=tmp_path, output_dir=tmp_path / "figures",
                                            layer=2, head=5, label=3, log=lambda *_: None)
        assert_png(path)
    assert result["model"].layers[2].num_heads == 6


def test_visualize_gat_without_a_name_uses_the_newest_binary(cora_binary, cora_data_dir, isolated_outputs, capsys):
    from utils.checkpoints import load_checkpoint
    with pytest.raises(SystemExit) as exit_info:
        playground.main(["visualize_gat", "--data_dir", str(cora_data_dir)])
    assert "no trained model in" in str(exit_info.value.code)
    older = save_binary(load_checkpoint(cora_binary), "cora")
    newer = save_binary(load_checkpoint(cora_binary), "cora")
    playground.main(["visualize_gat", "--dataset_name", "cora", "--visualization_type", "entropy",
                     "--data_dir", str(cora_data_dir), "--output_dir", str(isolated_outputs)])
    output = capsys.readouterr().out
    assert f"Using the newest cora model: {newer}" in output and older.name not in output
