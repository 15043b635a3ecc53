"""Every figure renders headless on real Cora and on PPI-format data, and says what it should."""

import pytest
import torch

import playground
from models import LayerType
from tests.helpers import assert_png
from utils import paths
from utils.datasets.ppi_synthetic import write_synthetic_ppi
from utils.figures import commands, plots, trained_model
from utils.figures.plots import figure_titles
from utils.plumbing.files import display_path
from utils.runs.checkpoints import CheckpointError, make_checkpoint, model_from_checkpoint, save_binary
from utils.training.many_graphs import train_many_graphs
from utils.training.one_graph import train_one_graph


@pytest.fixture(scope="module")
def cora_binary(cora, tmp_path_factory):
    """A briefly trained Cora model saved as a binary, as the training script would."""
    binaries = tmp_path_factory.mktemp("binaries")
    result = train_one_graph(dict(num_of_epochs=30, console_log_freq=0, checkpoint_freq=0, save_binary=False),
                            log=lambda *_: None, data=cora)
    checkpoint = make_checkpoint(result["model"], training_state={"dataset": "cora"})
    return save_binary(checkpoint, "cora", binaries)


def test_degree_statistics_of_cora(cora, tmp_path):
    path, stats = plots.plot_degree_statistics(cora.edge_index, cora.num_nodes, tmp_path / "deg.png", "cora")
    assert stats["max_degree_node"] == 1358 and stats["max_neighbours"] == 168 and stats["max_in_degree"] == 169
    assert torch.equal(stats["in_degree"], stats["out_degree"])  # Cora is undirected
    assert_png(path)


@pytest.mark.slow
def test_graph_drawing_of_cora(cora, tmp_path):
    path = plots.plot_graph(cora.edge_index, cora.labels.numpy(), cora.num_nodes, tmp_path / "cora.png",
                                     layout="fr", class_names=plots.CORA_CLASS_NAMES)
    assert_png(path, min_side=800)


@pytest.mark.parametrize("layout", ["tree", "kk"])
@pytest.mark.slow
def test_neighbourhood_attention_for_any_layer_type(cora_binary, cora, tmp_path, layout):
    for layer_type in LayerType:
        model, _ = model_from_checkpoint(cora_binary, layer_type=layer_type, log_attention_weights=True)
        with torch.no_grad():
            model.eval()(cora.node_features, cora.edge_index)
        path = plots.plot_neighbourhood_attention(cora.edge_index, model.layers[0].attention_weights,
                                                           cora.labels.numpy(), 1358,
                                                           tmp_path / f"att_{layer_type.name}.png", head=3,
                                                           layout=layout)
        assert_png(path)


def test_entropy_of_uniform_attention_equals_log_degree(cora):
    degree = torch.bincount(cora.edge_index[1], minlength=cora.num_nodes).double()
    uniform = (1.0 / degree[cora.edge_index[1]]).unsqueeze(1)
    entropy, uniform_entropy = plots.attention_entropies(cora.edge_index, uniform, cora.num_nodes)
    torch.testing.assert_close(entropy[:, 0], uniform_entropy)
    assert plots.entropy_summary(cora.edge_index, [uniform], cora.num_nodes) == pytest.approx([1.0])


@pytest.mark.slow
def test_playground_visualize_gat_all_types(cora_binary, cora_data_dir, tmp_path, capsys):
    for kind in ("attention", "entropy", "embeddings"):
        playground.main(["visualize_gat", "--visualization_type", kind, "--model_name", str(cora_binary),
                         "--data_dir", str(cora_data_dir), "--output_dir", str(tmp_path)])
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    # Layers counted from 1: the default --layer 1 is the first layer; the t-SNE shows the output layer, 2 of 2.
    assert len(pngs) == 3 and any("attention_node1358_layer1_head0" in p for p in pngs), pngs
    assert any(p.endswith("_tsne_layer2.png") for p in pngs), pngs
    for png in tmp_path.glob("*.png"):
        assert_png(png)
    attention_title, _ = figure_titles(next(tmp_path.glob("*_attention_node*.png")))
    assert attention_title.startswith("cora: attention of node 1358")
    assert "layer 1 of 2 (gat), head 0" in attention_title
    tsne_title, _ = figure_titles(next(tmp_path.glob("*_tsne_*.png")))
    assert "output layer" in tsne_title and "layer 2 of 2" in tsne_title
    _, entropy_panels = figure_titles(next(tmp_path.glob("*_attention_entropy.png")))
    assert entropy_panels and all(title.startswith(("layer 1,", "layer 2,")) for title in entropy_panels)
    assert "mean entropy, learned / uniform" in capsys.readouterr().out


@pytest.mark.slow
def test_layers_count_from_1_in_the_attention_figure(cora_binary, cora_data_dir, tmp_path, capsys):
    """--layer 2 draws the second (output) layer's attention, not the first's."""
    run = trained_model.run_on_its_graph(cora_binary, cora_data_dir)
    assert not torch.equal(run["attention"][0][:, :1], run["attention"][1])
    drawn = []
    original = plots.plot_neighbourhood_attention

    def spy(edge_index, attention, *args, **kwargs):
        drawn.append(attention)
        return original(edge_index, attention, *args, **kwargs)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(plots, "plot_neighbourhood_attention", spy)
        path = commands.visualize_gat(cora_binary, "attention", data_dir=cora_data_dir, output_dir=tmp_path,
                                      layer=2, log=lambda *_: None)
    assert torch.equal(drawn[0], run["attention"][1]) and path.name.endswith("_layer2_head0.png")
    assert "layer 2 of 2" in figure_titles(path)[0]
    assert playground.get_parser().parse_args(["visualize_gat"]).layer == 1
    with pytest.raises(SystemExit) as exit_info:
        playground.main(["visualize_gat", "--layer", "0", "--model_name", str(cora_binary)])
    assert exit_info.value.code == 2
    assert "layers are counted from 1 (1 = the first layer), got 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="1 = the first layer"):
        commands.visualize_gat(cora_binary, "attention", data_dir=cora_data_dir, output_dir=tmp_path, layer=0,
                                     log=lambda *_: None)


def test_identical_entropy_panels_are_drawn_once(cora, tmp_path):
    """Heads whose histograms are identical share one panel that names them; a repeated model panel says so."""
    degree = torch.bincount(cora.edge_index[1], minlength=cora.num_nodes).double()
    uniform = (1.0 / degree[cora.edge_index[1]]).unsqueeze(1)
    on_self_loop = (cora.edge_index[0] == cora.edge_index[1]).double().unsqueeze(1)  # entropy 0 everywhere
    layers = [torch.cat([uniform, uniform, on_self_loop], dim=1), torch.cat([on_self_loop, uniform], dim=1)]
    bins, _, panels = plots.entropy_panels(cora.edge_index, layers, cora.num_nodes)
    assert [panel["members"] for panel in panels] == [[(0, 0), (0, 1), (1, 1)], [(0, 2), (1, 0)]]
    assert [panel["equals_uniform"] for panel in panels] == [True, False]
    path = plots.plot_attention_entropy(cora.edge_index, layers, cora.num_nodes, tmp_path / "entropy.png")
    assert_png(path, min_side=200)
    title, panel_titles = figure_titles(path)
    assert "share one panel" in title
    assert panel_titles == ["layer 1, heads 0-1; layer 2, head 1\n(identical histograms; learned = uniform, "
                            "bin for bin)",
                            "layer 1, head 2; layer 2, head 0\n(identical histograms)"]

    distinct = [torch.cat([uniform, on_self_loop], dim=1)]
    path = plots.plot_attention_entropy(cora.edge_index, distinct, cora.num_nodes, tmp_path / "distinct.png")
    title, panel_titles = figure_titles(path)
    assert "share one panel" not in title
    assert panel_titles == ["layer 1, head 0\n(learned = uniform, bin for bin)", "layer 1, head 1"]

    path = plots.plot_attention_entropy_comparison(
        cora.edge_index, {"A": [on_self_loop, uniform], "B": [on_self_loop, on_self_loop]}, cora.num_nodes,
        tmp_path / "comparison.png")
    _, panel_titles = figure_titles(path)
    assert panel_titles[0].startswith("A, layer 1 (1 head pooled)\n") and "identical" not in panel_titles[0]
    # (row by row: A and B's layer 1, then their layer 2)
    assert all(panel_titles[i].endswith("; identical to A, layer 1") for i in (1, 3))
    assert panel_titles[2].startswith("A, layer 2") and panel_titles[2].endswith("; learned = uniform, bin for bin")


@pytest.mark.slow
def test_playground_missing_or_mismatched_binary_is_a_clear_error(cora_binary, cora_data_dir, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        playground.main(["visualize_gat", "--model_name", "no_such_run", "--data_dir", str(cora_data_dir)])
    assert "no checkpoint" in str(exit_info.value.code)
    with pytest.raises(SystemExit) as exit_info:
        playground.main(["visualize_gat", "--model_name", str(cora_binary), "--layer", "5",
                         "--data_dir", str(cora_data_dir), "--output_dir", str(tmp_path)])
    assert "layers" in str(exit_info.value.code)
    with pytest.raises(CheckpointError):
        commands.visualize_gat(tmp_path / "nothing.pth")


@pytest.mark.slow
def test_playground_visualize_dataset_and_profiling(cora_data_dir, tmp_path, capsys):
    playground.main(["visualize_dataset", "--dataset_name", "cora", "--layout", "fr", "--data_dir",
                     str(cora_data_dir), "--output_dir", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["cora_degrees.png", "cora_graph_fr.png"]
    playground.main(["profile_sparse", "--data_dir", str(cora_data_dir)])
    out = capsys.readouterr().out
    for fmt in ("coo", "csr", "csc", "lil", "dense"):
        assert f"| {fmt} |" in out
    assert "168 (+ self loop)" in out


@pytest.mark.slow
def test_profile_gat_measures_time_and_real_memory(cora_data_dir, tmp_path, monkeypatch):
    from utils import profiling
    monkeypatch.setattr(paths, "PROFILING_CACHE_DIR", tmp_path)
    results = profiling.profile_gat(["IMP3"], num_of_epochs=2, data_dir=cora_data_dir, device="cpu",
                                    store_cache=True, log=lambda *_: None)
    assert results["IMP3"]["ms_per_epoch"] > 0 and results["IMP3"]["peak_bytes"] > 0
    cached = profiling.profile_gat(["IMP3"], num_of_epochs=2, device="cpu", skip_if_profiling_info_cached=True,
                                   log=lambda *_: None)
    assert cached == results


@pytest.mark.slow
def test_playground_profile_gat_command(cora_data_dir, capsys):
    assert playground.get_parser().parse_args(["profile_gat"]).layer_types == list(LayerType)
    playground.main(["profile_gat", "--num_of_epochs", "1", "--layer_types", "imp3", "--data_dir", str(cora_data_dir)])
    assert "| IMP3 |" in capsys.readouterr().out


def test_playground_help_and_default_function():
    assert playground.playground_fn in playground.PlaygroundFn
    with pytest.raises(SystemExit) as exit_info:
        playground.main(["--help"])
    assert exit_info.value.code == 0


@pytest.mark.slow
def test_ppi_figures(tmp_path, monkeypatch):
    """Every PPI figure names the graph it draws; the t-SNE embeds the output layer (121 label logits)."""
    write_synthetic_ppi(tmp_path / "ppi", graphs_per_split=(4, 1, 1), nodes_per_graph=(40, 50))
    figure_paths = commands.visualize_dataset("ppi", tmp_path, tmp_path / "figures", layout="fr", log=lambda *_: None)
    for path in figure_paths:
        assert_png(path)
        assert figure_titles(path)[0].startswith("ppi-generated train graph 1: ")
    result = train_many_graphs(dict(num_of_epochs=2, hidden_features=8, console_log_freq=0, checkpoint_freq=0,
                                save_binary=True, data_dir=str(tmp_path), progress_bar=False), log=lambda *_: None)
    binary = next((tmp_path / "binaries").glob("ppi*.pth"))  # conftest points BINARIES_DIR here
    embedded = []
    original_tsne = plots.plot_embeddings_tsne
    monkeypatch.setattr(plots, "plot_embeddings_tsne",
                        lambda embeddings, *args, **kwargs: embedded.append(embeddings) or original_tsne(
                            embeddings, *args, **kwargs))
    legends, original_attention = [], plots.plot_neighbourhood_attention
    monkeypatch.setattr(plots, "plot_neighbourhood_attention", lambda *args, **kwargs: legends.append(
        (kwargs["legend_title"], kwargs["class_names"])) or original_attention(*args, **kwargs))
    titles = {}
    for kind in ("attention", "entropy", "embeddings"):
        path = commands.visualize_gat(binary, kind, data_dir=tmp_path, output_dir=tmp_path / "figures",
                                            layer=3, head=5, label=3, log=lambda *_: None)
        assert_png(path)
        titles[kind] = figure_titles(path)[0]
    assert all(title.startswith("ppi-generated test graph 1") for title in titles.values()), titles
    assert "layer 3 of 3 (gat), head 5" in titles["attention"]
    assert legends == [("PPI label 3", ["absent (0)", "present (1)"])]  # what the node colours are
    assert "output layer" in titles["embeddings"] and "layer 3 of 3" in titles["embeddings"]
    assert result["model"].layers[2].num_heads == 6 and embedded[0].shape[1] == 121, embedded[0].shape


@pytest.mark.slow
def test_visualize_gat_without_a_name_uses_the_newest_binary(cora_binary, cora_data_dir, isolated_outputs, capsys):
    from utils.runs.checkpoints import load_checkpoint

    # Nothing trained yet: the committed Cora model, and the line says so.
    playground.main(["visualize_gat", "--data_dir", str(cora_data_dir), "--output_dir", str(isolated_outputs)])
    output = capsys.readouterr().out
    assert f"using the committed one, {display_path(paths.PRETRAINED_CORA)} (" in output
    assert "test accuracy 0.834" in output
    assert (isolated_outputs / "cora_gat_seed0_IMP3_attention_node1358_layer1_head0.png").is_file()
    with pytest.raises(SystemExit) as exit_info:  # it is a Cora model: no stand-in for PPI
        playground.main(["visualize_gat", "--dataset_name", "ppi", "--data_dir", str(cora_data_dir)])
    assert "no trained ppi model in" in str(exit_info.value.code)
    older = save_binary(load_checkpoint(cora_binary), "cora")
    newer = save_binary(load_checkpoint(cora_binary), "cora")
    playground.main(["visualize_gat", "--dataset_name", "cora", "--visualization_type", "entropy",
                     "--data_dir", str(cora_data_dir), "--output_dir", str(isolated_outputs)])
    output = capsys.readouterr().out
    assert f"Using the newest cora model: {newer}" in output and older.name not in output


def test_an_npz_run_is_drawn_on_its_own_graph_and_missing_data_is_one_line(tmp_path, isolated_outputs, capsys):
    from helpers import write_own_graph

    import training_script_cora
    graph = write_own_graph(tmp_path / "my_graph.npz")
    training_script_cora.main(["--dataset_name", str(graph), "--split", "random", "--train_per_class", "5",
                               "--val_per_class", "5", "--num_of_epochs", "3", "--run_name", "mine",
                               "--console_log_freq", "0", "--checkpoint_freq", "0"])
    figures = tmp_path / "figures"
    playground.main(["visualize_gat", "--output_dir", str(figures)])  # the newest binary: this run's
    playground.main(["visualize_gat", "--model_name", "mine", "--visualization_type", "entropy",
                     "--output_dir", str(figures)])
    playground.main(["visualize_dataset", "--dataset_name", str(graph), "--output_dir", str(figures), "--layout", "fr"])
    for path in sorted(figures.glob("*.png")):
        assert_png(path)
    attention = next(figures.glob("mine_IMP3_attention_node*.png"))
    assert figure_titles(attention)[0].startswith("my_graph: attention of node")
    assert (figures / "my_graph_graph_fr.png").is_file() and (figures / "my_graph_degrees.png").is_file()

    graph.rename(tmp_path / "moved.npz")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        playground.main(["visualize_gat", "--model_name", "mine", "--output_dir", str(figures)])
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "my_graph.npz" in message and "\n" not in message



def test_an_output_dir_that_cannot_be_written_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    monkeypatch.setattr(commands, "find_model", lambda *_: pytest.fail("the model was looked for first"))
    for argv in (["visualize_dataset", "--dataset_name", "cora"], ["visualize_gat"]):
        with pytest.raises(SystemExit) as exit_info:
            playground.main([*argv, "--output_dir", str(a_file / "figures")])
        message = str(exit_info.value.code)
        assert message.startswith("error: cannot write into ") and "is a file, not a folder" in message
        assert "\n" not in message
