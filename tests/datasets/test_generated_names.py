"""Generated data is named as generated wherever a user reads it, and is never written where real data goes."""

import json

import pytest

import training_script_cora
import training_script_ppi
from utils.cli import run_list
from utils.datasets import ppi_synthetic
from utils.datasets.download import DatasetError
from utils.datasets.ppi import GENERATED_MARKER, dataset_name_of, load_ppi
from utils.datasets.sbm_graph import write_sbm_graph
from utils.runs import checkpoints

QUIET = ["--console_log_freq", "0", "--checkpoint_freq", "0"]


def test_generated_ppi_is_named_so_in_the_run_its_results_and_the_run_list(tmp_path, capsys):
    ppi_synthetic.main(["--output", str(tmp_path / "data" / "ppi"), "--graphs", "2", "1", "1", "--nodes", "20", "30"])
    assert "not PPI: runs on it are named ppi-generated" in capsys.readouterr().out
    marker = json.loads((tmp_path / "data" / "ppi" / GENERATED_MARKER).read_text())
    assert marker["generator"] == "utils.datasets.ppi_synthetic" and marker["graphs_per_split"] == [2, 1, 1]
    splits = load_ppi(tmp_path / "data", download=False)
    assert dataset_name_of(splits) == "ppi-generated" and splits["test"][0].name.startswith("ppi-generated_test_")

    results = tmp_path / "results.json"
    training_script_ppi.main(["--data_dir", str(tmp_path / "data"), "--num_of_epochs", "1", "--hidden_features", "8",
                              "--no_progress_bar", "--results_json", str(results), *QUIET])
    assert "on generated PPI-format data (ppi-generated)" in capsys.readouterr().out
    assert json.loads(results.read_text())["dataset"] == "ppi-generated"
    [row] = run_list.list_runs()
    assert row["dataset"] == "ppi-generated" and row["name"].startswith("ppi-generated_gat_seed0_")
    assert checkpoints.resolve_resume_path("last", "ppi").parent.name == row["name"]  # --resume last finds it


def test_an_sbm_run_is_named_as_generated(tmp_path):
    write_sbm_graph(tmp_path / "sbm", num_nodes=200, avg_degree=4, num_classes=3, num_features=8)
    results = tmp_path / "results.json"
    training_script_cora.main(["--dataset_name", "sbm", "--data_dir", str(tmp_path / "sbm"), "--num_of_epochs", "1",
                               "--results_json", str(results), *QUIET])
    assert json.loads(results.read_text())["dataset"] == "sbm-generated"
    [row] = run_list.list_runs()
    assert row["dataset"] == "sbm-generated" and row["name"].startswith("sbm-generated_gat_seed0_")


def test_generated_ppi_is_never_written_where_real_ppi_goes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GAT_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as exit_info:
        ppi_synthetic.main(["--output", str(tmp_path / "data" / "ppi")])
    assert str(exit_info.value.code) == (f"error: {tmp_path / 'data' / 'ppi'} is where the real PPI goes; write "
                                         f"generated data elsewhere, e.g. --output "
                                         f"{tmp_path / 'data' / 'ppi-generated' / 'ppi'}")
    real = tmp_path / "elsewhere" / "ppi"
    real.mkdir(parents=True)
    (real / "train_graph.json").write_text("{}")  # real PPI files: no generator's marker beside them
    with pytest.raises(DatasetError, match="holds PPI data that was not generated"):
        ppi_synthetic.write_synthetic_ppi(real)
    assert sorted(p.name for p in real.iterdir()) == ["train_graph.json"]
