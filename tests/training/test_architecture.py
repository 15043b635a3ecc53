"""The architecture flags: the paper's per dataset unless given, recorded with the run, fixed on resume."""

import json

import pytest

import training_script_cora
import training_script_ppi
from utils import paths
from utils.cli import run_list
from utils.datasets.ppi_synthetic import write_synthetic_ppi
from utils.plumbing.arguments import SettingsError
from utils.runs import checkpoints
from utils.training.architecture import from_checkpoint_model, resolve_architecture
from utils.training.many_graphs import PPI_ARCHITECTURE
from utils.training.one_graph import CITATION_ARCHITECTURE, PUBMED_ARCHITECTURE, with_dataset_defaults


@pytest.fixture(scope="module")
def ppi_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("ppi_architecture")
    write_synthetic_ppi(data_dir / "ppi", graphs_per_split=(2, 1, 1), nodes_per_graph=(20, 30), seed=1)
    return data_dir


QUIET = ["--console_log_freq", "0", "--checkpoint_freq", "0", "--no_save_binary"]


def test_left_out_settings_are_the_papers_per_dataset():
    cora, architecture = with_dataset_defaults(dict(dataset_name="cora", lr=None, weight_decay=None))
    assert architecture == CITATION_ARCHITECTURE and (cora["lr"], cora["weight_decay"]) == (5e-3, 5e-4)
    pubmed, architecture = with_dataset_defaults(dict(dataset_name="pubmed", lr=None, weight_decay=None))
    assert architecture == PUBMED_ARCHITECTURE and architecture["num_heads_per_layer"] == [8, 8]
    assert (pubmed["lr"], pubmed["weight_decay"]) == (1e-2, 1e-3)
    typed, _ = with_dataset_defaults(dict(dataset_name="pubmed", lr=0.1, weight_decay=0.0))
    assert (typed["lr"], typed["weight_decay"]) == (0.1, 0.0)
    assert resolve_architecture(dict(hidden_features=256), PPI_ARCHITECTURE) == PPI_ARCHITECTURE


def test_another_number_of_layers_extends_the_papers_pattern():
    three = resolve_architecture(dict(num_of_layers=3), CITATION_ARCHITECTURE)
    assert three["num_heads_per_layer"] == [8, 8, 1] and three["hidden_features"] == [8, 8]
    assert resolve_architecture(dict(num_heads_per_layer=[4, 2, 3]), CITATION_ARCHITECTURE)["num_of_layers"] == 3
    two = resolve_architecture(dict(num_of_layers=2, hidden_features=[32]), PPI_ARCHITECTURE)
    assert two["num_heads_per_layer"] == [4, 6] and two["hidden_features"] == [32]
    with pytest.raises(SettingsError, match="--num_heads_per_layer needs one number per layer"):
        resolve_architecture(dict(num_of_layers=3, num_heads_per_layer=[8, 1]), CITATION_ARCHITECTURE)
    with pytest.raises(SettingsError, match="--hidden_features needs one number per hidden layer"):
        resolve_architecture(dict(num_of_layers=3, hidden_features=[8, 8, 8]), CITATION_ARCHITECTURE)


def test_the_flags_are_recorded_listed_and_fixed_on_resume(cora_data_dir, isolated_outputs, tmp_path, capsys):
    results = tmp_path / "results.json"
    flags = ["--data_dir", str(cora_data_dir), "--num_of_epochs", "2", *QUIET, "--run_name", "wide"]
    training_script_cora.main([*flags, "--num_of_layers", "3", "--num_heads_per_layer", "4", "4", "2",
                               "--hidden_features", "16", "--dropout", "0.5", "--add_skip_connection",
                               "--results_json", str(results)])
    recorded = dict(num_of_layers=3, num_heads_per_layer=[4, 4, 2], hidden_features=[16], dropout=0.5,
                    add_skip_connection=True)
    saved = checkpoints.load_checkpoint(checkpoints.last_checkpoint_path("wide"))
    assert recorded.items() <= saved["training_state"]["settings"].items()
    assert recorded.items() <= json.loads(results.read_text()).items()
    assert saved["config"]["num_features_per_layer"] == [1433, 16, 16, 7]
    assert run_list.list_runs()[0]["model"] == "4x16 4x16 2, dropout 0.5, skip"
    assert "Model: heads x features per hidden layer, then output heads: 4x16 4x16 2" in capsys.readouterr().out

    for contradiction, message in ((["--dropout", "0.6"], "--dropout 0.6 (checkpoint: 0.5)"),
                                   (["--no_add_skip_connection"], "--add_skip_connection off (checkpoint: on)"),
                                   (["--num_heads_per_layer", "8", "8", "1"],
                                    "--num_heads_per_layer 8 8 1 (checkpoint: 4 4 2)")):
        with pytest.raises(SystemExit) as exit_info:
            training_script_cora.main([*QUIET, "--data_dir", str(cora_data_dir), "--resume", "wide",
                                       "--num_of_epochs", "3", *contradiction])
        assert str(exit_info.value.code).startswith("error: cannot resume") and message in str(exit_info.value.code)
    training_script_cora.main([*QUIET, "--data_dir", str(cora_data_dir), "--resume", "wide", "--num_of_epochs", "3",
                               "--dropout", "0.5"])  # the same value is no contradiction
    assert checkpoints.load_checkpoint(checkpoints.last_checkpoint_path("wide"))["training_state"]["epoch"] == 3


def test_a_checkpoint_older_than_the_flags_resumes_with_the_shape_it_holds(cora_data_dir, isolated_outputs):
    flags = ["--data_dir", str(cora_data_dir), "--num_of_epochs", "2", *QUIET, "--run_name", "old"]
    training_script_cora.main(flags)
    path = checkpoints.last_checkpoint_path("old")
    checkpoint = checkpoints.load_checkpoint(path)
    for key in ("num_of_layers", "num_heads_per_layer", "hidden_features", "dropout", "add_skip_connection"):
        del checkpoint["training_state"]["settings"][key]
    checkpoints.save(checkpoint, path)
    assert from_checkpoint_model({}, checkpoint)["num_heads_per_layer"] == [8, 1]
    training_script_cora.main([*QUIET, "--data_dir", str(cora_data_dir), "--resume", "old", "--num_of_epochs", "3"])
    resumed = checkpoints.load_checkpoint(path)["training_state"]
    assert resumed["epoch"] == 3 and resumed["settings"]["dropout"] == 0.6


def test_ppi_takes_hidden_features_as_before(ppi_dir, isolated_outputs):
    flags = ["--data_dir", str(ppi_dir), "--num_of_epochs", "1", *QUIET, "--no_progress_bar"]
    training_script_ppi.main([*flags, "--hidden_features", "8", "--num_of_layers", "2", "--run_name", "small"])
    saved = checkpoints.load_checkpoint(checkpoints.last_checkpoint_path("small"))
    assert saved["config"]["num_heads_per_layer"] == [4, 6] and saved["config"]["num_features_per_layer"][1] == 8
    with pytest.raises(SystemExit) as exit_info:
        training_script_ppi.main([*flags, "--resume", "small", "--hidden_features", "16"])
    assert "--hidden_features 16 (checkpoint: 8)" in str(exit_info.value.code)


def test_random_split_and_sampling_flags_that_would_do_nothing_are_refused(cora_data_dir, isolated_outputs):
    """Flags that only shape a random split (without --split random) or sampled batches (without --fanouts) say so
    in one line instead of being ignored; nothing is created."""
    for flags, expected in ((["--split_seed", "3"], "add --split random"),
                            (["--train_per_class", "5"], "--train_per_class 5 shapes a random split"),
                            (["--val_per_class", "10"], "add --split random"),
                            (["--no_largest_component"], "--no_largest_component shapes a random split"),
                            (["--batch_size", "16"], "add --fanouts")):
        with pytest.raises(SystemExit) as exit_info:
            training_script_cora.main(["--data_dir", str(cora_data_dir), *flags, *QUIET])
        message = str(exit_info.value.code)
        assert expected in message and "\n" not in message, (flags, message)
    assert not paths.CHECKPOINTS_DIR.exists() or not any(paths.CHECKPOINTS_DIR.iterdir())
