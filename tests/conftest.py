"""Shared fixtures. Real Cora comes from $GAT_DATA_DIR (CI points it at ../shared/datasets);
nothing a test writes lands in the repository: checkpoints, binaries and runs go to tmp_path."""

import os

import pytest
import torch

from utils import training
from utils.data_loading import DatasetError, resolve_data_dir
from utils.planetoid import load_planetoid


@pytest.fixture(autouse=True)
def isolated_outputs(tmp_path, monkeypatch):
    """Point models/checkpoints, models/binaries and runs/ at a temp folder for every test."""
    monkeypatch.setattr(training, "CHECKPOINTS_DIR", tmp_path / "checkpoints")
    monkeypatch.setattr(training, "BINARIES_DIR", tmp_path / "binaries")
    monkeypatch.setattr(training, "RUNS_DIR", tmp_path / "runs")
    torch.manual_seed(0)
    return tmp_path


@pytest.fixture(scope="session")
def cora_data_dir():
    data_dir = resolve_data_dir()
    if not (data_dir / "planetoid" / "ind.cora.graph").exists():
        message = (f"real Cora not found under {data_dir}/planetoid; set GAT_DATA_DIR to a folder with "
                   f"planetoid/ind.cora.* (CI uses ../shared/datasets)")
        if os.environ.get("CI"):
            pytest.fail(message)
        try:  # a user's machine with network: the loader downloads into data/
            load_planetoid("cora", data_dir)
        except DatasetError:
            pytest.skip(message)
    return data_dir


@pytest.fixture(scope="session")
def cora(cora_data_dir):
    return load_planetoid("cora", cora_data_dir, download=False)
